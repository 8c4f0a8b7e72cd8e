"""Where things live inside a warehouse directory.

::

    <warehouse>/
      alphatwin.duckdb            the catalog: meta.*, raw.bars (a view over the lake), later clean.*, features.*
      lake/bars/interval=<i>/year=<yyyy>/<ingest_id>-<n>.parquet   the immutable raw lake
      logs/alphatwin-<date>.jsonl structured JSON logs, one line per event
      state/                      small persisted state (the network rate limiter's bucket)
      tmp/<ingest_id>/            an ingest's files before they are published (removed on success)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["WarehousePaths"]


@dataclass(frozen=True)
class WarehousePaths:
    """The layout of one warehouse directory (see the module docstring)."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "alphatwin.duckdb"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def bars(self) -> Path:
        return self.lake / "bars"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def write_lock(self) -> Path:
        return self.root / ".write.lock"

    def relative(self, path: Path) -> str:
        """``path`` relative to the warehouse root, with forward slashes (as stored in the catalog)."""
        return path.relative_to(self.root).as_posix()
