"""One error hierarchy for AlphaTwin.

Every error a user can cause or meet derives from :class:`AlphaTwinError`. The CLI turns any
of them into a single ``Error: ...`` line on stderr and exit code 1 (``--debug`` shows the
traceback). Subclasses carry the context a caller needs (file, line, symbol, source, table).
"""

from __future__ import annotations

__all__ = [
    "AlphaTwinError",
    "ConfigError",
    "InputError",
    "SourceError",
    "TransientSourceError",
    "RateLimitedError",
    "EmptyDataError",
    "SymbolNotFoundError",
    "CircuitOpenError",
    "LakeError",
    "CatalogError",
    "WarehouseBusyError",
    "SqlSandboxError",
    "BatchRejectedError",
    "QualityError",
    "ModelError",
]


class AlphaTwinError(Exception):
    """Base class of every error AlphaTwin raises on purpose."""


class ConfigError(AlphaTwinError):
    """A bad configuration file, environment variable or CLI flag."""


class InputError(AlphaTwinError):
    """Bad user input: a malformed file, a bad date, an unknown interval.

    ``path`` and ``line`` (1-based, counting the header as line 1) locate the problem when it
    comes from a file.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class SourceError(AlphaTwinError):
    """A data source could not deliver what was asked; ``source`` and ``symbol`` say where."""

    def __init__(self, message: str, *, source: str | None = None, symbol: str | None = None) -> None:
        self.source = source
        self.symbol = symbol
        super().__init__(message)


class TransientSourceError(SourceError):
    """A failure worth retrying: timeout, connection reset, HTTP 5xx, empty or partial answer."""


class RateLimitedError(TransientSourceError):
    """The provider answered 429 / 'Too Many Requests'."""


class EmptyDataError(TransientSourceError):
    """The provider returned no rows for a range that should have some.

    yfinance swallows network errors and hands back an empty frame, so an empty answer is
    treated as a failure (and retried), never as "there is no data".
    """


class SymbolNotFoundError(SourceError):
    """The provider says the symbol does not exist (not retried, no fail-over)."""


class CircuitOpenError(SourceError):
    """The source's circuit breaker is open after repeated failures; calls fail fast."""


class LakeError(AlphaTwinError):
    """Reading or writing the raw Parquet lake failed (disk full, permissions, corruption)."""


class CatalogError(AlphaTwinError):
    """The DuckDB warehouse catalog is missing, inconsistent or cannot be opened."""


class WarehouseBusyError(CatalogError):
    """Another process holds the warehouse's write lock."""


class SqlSandboxError(AlphaTwinError):
    """An ad-hoc SQL statement was refused by the read-only sandbox."""


class BatchRejectedError(AlphaTwinError):
    """A whole batch failed validation (wrong schema, empty): the ingest is marked rejected."""


class QualityError(AlphaTwinError):
    """A data-quality suite is missing or invalid, or a batch cannot be validated.

    ``suite`` names the suite (and ``path`` its file) when the problem is in one.
    """

    def __init__(self, message: str, *, suite: str | None = None, path: str | None = None) -> None:
        self.suite = suite
        self.path = path
        super().__init__(message)


class ModelError(AlphaTwinError):
    """A SQL or Python model is invalid, cannot be placed in the DAG, or failed to build.

    ``path`` (and ``line``, 1-based) locate the model's file; ``table`` names the table the
    model builds or the unknown table it reads.
    """

    def __init__(self, message: str, *, path: str | None = None, table: str | None = None,
                 line: int | None = None) -> None:
        self.path = path
        self.table = table
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
