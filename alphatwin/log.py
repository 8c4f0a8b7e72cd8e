"""Logging: structured JSON lines under ``<warehouse>/logs/`` and short human lines on stderr.

Every record carries the command's ``run_id`` and, where it applies, ``stage`` and ``symbol``
(pass them with ``extra={...}``). ``-v`` shows debug lines on stderr, ``-q`` only errors; the
JSON file always receives INFO and above.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import uuid
from pathlib import Path

__all__ = ["get_logger", "configure", "RUN_ID", "new_id"]

_CONTEXT_KEYS = ("stage", "symbol", "source", "ingest_id", "rows", "files", "status")


def new_id(prefix: str = "") -> str:
    """A sortable, unique id: UTC timestamp plus 6 random hex digits (``20261125T031500Z-1a2b3c``)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{uuid.uuid4().hex[:6]}"


RUN_ID = new_id()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, run_id and any context keys."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": RUN_ID,
        }
        for key in _CONTEXT_KEYS:
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{prefix}{record.getMessage()}"


def get_logger(name: str) -> logging.Logger:
    """The ``alphatwin.<name>`` logger."""
    return logging.getLogger(f"alphatwin.{name}")


def configure(log_dir: Path | None, *, verbosity: int = 0) -> None:
    """Attach the stderr and (when ``log_dir`` is given and writable) JSON-file handlers."""
    root = logging.getLogger("alphatwin")
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    err = logging.StreamHandler(sys.stderr)
    err.setLevel({-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))
    err.setFormatter(HumanFormatter())
    err.addFilter(lambda record: not getattr(record, "file_only", False))
    root.addHandler(err)
    if log_dir is None:
        return
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"alphatwin-{dt.datetime.now(dt.UTC):%Y%m%d}.jsonl"
        fh = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        root.warning("cannot write logs under %s; logging to stderr only", log_dir)
        return
    fh.setLevel(logging.INFO)
    fh.setFormatter(JsonFormatter())
    root.addHandler(fh)
