"""Logging: structured JSON lines under ``<warehouse>/logs/`` and short human lines on stderr.

Every record carries the command's ``run_id`` and, where it applies, ``command``, ``stage``,
``symbol`` and ``ingest_id`` (pass them with ``extra={...}``, or bind them for a block with
:func:`bind`; :func:`alphatwin.lake.stages.stage` binds ``stage``). On stderr ``-q`` shows only
errors, the default warnings, ``-v`` info lines and ``-vv`` debug lines; the JSON file receives
INFO and above (DEBUG too at ``-vv``).

Both handlers pass every record through :class:`RedactingFilter`: secret values registered with
:func:`register_secret` (every value :func:`alphatwin.secrets.get_secret` hands out) and
``api_key=``/``apikey=``/``token=``-style query parameters become ``***``. A handler that cannot
write (disk full, permission denied) says so once, in one line on stderr, and turns itself off:
the command goes on.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["get_logger", "configure", "attach_file", "detach", "RUN_ID", "run_id", "new_run", "new_id", "bind",
           "set_context",
           "register_secret", "redact", "RedactingFilter", "file_logging"]

_CONTEXT_KEYS = ("command", "stage", "symbol", "source", "ingest_id", "rows", "rows_in", "rows_out", "files",
                 "status", "error_type", "wall_s", "peak_rss_mb", "exit_code")
_STR_CONTEXT = ("command", "symbol", "source")


def new_id(prefix: str = "") -> str:
    """A sortable, unique id: UTC timestamp plus 6 random hex digits (``20261125T031500Z-1a2b3c``)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{uuid.uuid4().hex[:6]}"


RUN_ID = new_id()  # this process's; the CLI starts a new one per command (see new_run)


def run_id() -> str:
    """The current run id (read it through this, not a ``from ... import RUN_ID`` copy)."""
    return RUN_ID


_RUNS = 0


def new_run() -> str:
    """The run id of a command starting: the process's for its first command, a new one for
    each later command of the same process (CliRunner, notebooks), so each gets its own."""
    global RUN_ID, _RUNS
    if _RUNS:
        RUN_ID = new_id()
    _RUNS += 1
    return RUN_ID

# ---------------------------------------------------------------------------------------------
# Context: keys every record of a block (or of the whole command) carries

_GLOBAL: dict[str, Any] = {}
_BOUND: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("alphatwin_log_context", default={})


def set_context(**values: Any) -> None:
    """Keys every later record of this process carries (``command``); ``None`` removes one."""
    for key, value in values.items():
        if value is None:
            _GLOBAL.pop(key, None)
        else:
            _GLOBAL[key] = value


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[None]:
    """Keys every record logged inside the block carries (``stage``, ``ingest_id``)."""
    token = _BOUND.set({**_BOUND.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _BOUND.reset(token)


def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    out = {**_GLOBAL, **_BOUND.get()}
    for key in _CONTEXT_KEYS:
        if hasattr(record, key):
            out[key] = getattr(record, key)
    return out


# ---------------------------------------------------------------------------------------------
# Redaction

_SECRETS: set[str] = set()
_PARAM = re.compile(
    r"(?i)\b((?:x[_-]?)?api[_-]?key|apikey|api[_-]?token|access[_-]?token|auth[_-]?token|token|"
    r"secret|client[_-]?secret|password|passwd)(=|%3D)([^&\s\"'<>;,)]+)"
)
_MIN_SECRET = 4  # shorter values would redact ordinary words


def register_secret(value: str | None) -> None:
    """Redact ``value`` (and its URL-encoded form) from every log line and error message."""
    if not value or len(value) < _MIN_SECRET:
        return
    _SECRETS.add(value)
    encoded = quote(value, safe="")
    if encoded != value:
        _SECRETS.add(encoded)


def redact(text: str) -> str:
    """``text`` with registered secrets and ``api_key=...``-style parameters replaced by ``***``.

    >>> redact("GET https://x.test/q?s=aapl&apikey=abc123&i=d")
    'GET https://x.test/q?s=aapl&apikey=***&i=d'
    """
    if not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and text context through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: keep the raw template
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key in _STR_CONTEXT:
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True


_REDACTOR = RedactingFilter()

# ---------------------------------------------------------------------------------------------
# Formatters and handlers


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
        doc.update(_context_of(record))
        if record.exc_info or record.exc_text:
            doc["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return redact(json.dumps(doc, default=str))


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{prefix}{record.getMessage()}"


class _QuietFailing:
    """Mixin: the first write error says so in one stderr line and removes the handler."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if self.failed:
            return
        self.failed = True
        exc = sys.exc_info()[1]
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        root = logging.getLogger("alphatwin")
        root.removeHandler(self)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            self.close()  # type: ignore[attr-defined]
        where = getattr(self, "baseFilename", None) or "stderr"
        _FAILED.add(where)
        if where == "stderr":
            return  # nowhere left to say it
        try:
            sys.stderr.write(f"warning: cannot write the JSON log {where}: {reason}; "
                             "file logging is off for this command\n")
            sys.stderr.flush()
        except Exception:
            pass


class _JsonFileHandler(_QuietFailing, logging.FileHandler):
    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the final flush of a full disk
            if self.stream is not None:
                with contextlib.suppress(Exception):
                    self.stream.close()
            self.stream = None  # type: ignore[assignment]


class _StderrHandler(_QuietFailing, logging.StreamHandler):  # type: ignore[type-arg]
    pass


_LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
_FAILED: set[str] = set()  # log files that failed during this command: not reopened


def get_logger(name: str) -> logging.Logger:
    """The ``alphatwin.<name>`` logger."""
    return logging.getLogger(f"alphatwin.{name}")


def _root() -> logging.Logger:
    return logging.getLogger("alphatwin")


def detach() -> None:
    """Remove and close every AlphaTwin log handler (the end of a command)."""
    root = _root()
    for h in list(root.handlers):
        root.removeHandler(h)
        with contextlib.suppress(Exception):
            h.close()


def configure(log_dir: Path | None, *, verbosity: int = 0) -> None:
    """Attach the stderr and (when ``log_dir`` is given and writable) JSON-file handlers."""
    detach()
    _FAILED.clear()
    root = _root()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    err = _StderrHandler(sys.stderr)
    err.setLevel(_LEVELS.get(verbosity, logging.DEBUG))
    err.setFormatter(HumanFormatter())
    err.addFilter(_REDACTOR)
    err.addFilter(lambda record: not getattr(record, "file_only", False))
    root.addHandler(err)
    if logging.lastResort is not None and _REDACTOR not in logging.lastResort.filters:
        logging.lastResort.addFilter(_REDACTOR)  # other libraries' warnings reach stderr redacted too
    if log_dir is not None:
        attach_file(log_dir, verbosity=verbosity)


def file_logging() -> Path | None:
    """The JSON log file records go to now (None when there is none)."""
    for h in _root().handlers:
        if isinstance(h, _JsonFileHandler):
            return Path(h.baseFilename)
    return None


def attach_file(log_dir: Path, *, verbosity: int = 0) -> bool:
    """Add the JSON-file handler under ``log_dir`` (once); False when it cannot be opened, after
    one warning line on stderr (unless ``-q``)."""
    if file_logging() is not None:
        return False
    path = log_dir / f"alphatwin-{dt.datetime.now(dt.UTC):%Y%m%d}.jsonl"
    if str(path.absolute()) in _FAILED:
        return False
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        fh = _JsonFileHandler(path, encoding="utf-8")
    except OSError as exc:
        _FAILED.add(str(path.absolute()))
        if verbosity >= 0:
            sys.stderr.write(f"warning: cannot write the JSON log {path}: {exc.strerror or exc}; "
                             "file logging is off for this command\n")
        return False
    fh.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    fh.setFormatter(JsonFormatter())
    fh.addFilter(_REDACTOR)
    _root().addHandler(fh)
    return True
