"""``meta.audit``: an append-only trail of every change to the warehouse's data.

One row per change (an ingest committed, failed or aborted, a re-validation's quarantine
decisions, a model built or failed, a lake file deleted by recovery, a verification), written by
:func:`record` through the connection and **inside the transaction** of the change it describes,
so a change and its audit row become durable together or not at all. Rows are only ever
inserted: nothing in AlphaTwin updates or deletes ``meta.audit`` (a test greps the code).

Columns: ``seq`` (strictly increasing), ``at``, ``run_id`` (the command's log run id),
``user``, ``host``, ``pid``, ``command``, ``action``, ``object`` (ingest id, model or lake
path), ``rows_in``, ``rows_out``, ``rows_quarantined``, ``files``, ``bytes``, ``status`` and
``detail`` (JSON). The table is created with the catalog (:data:`alphatwin.lake.catalog.DDL`).

Example::

    alphatwin sql "select seq, at, action, object, rows_in, rows_out, status from meta.audit order by seq"
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
import sys
from typing import Any

from alphatwin.log import redact, run_id

__all__ = ["record", "ACTIONS", "user", "command_line"]

#: The actions recorded (``action`` column).
ACTIONS = (
    "ingest",           # an ingest committed (status committed | partial | fallback), with the gate's counts
    "ingest_failed",    # an ingest failed or was rejected: nothing reached the lake
    "ingest_aborted",   # an ingest killed midway, found 'running' by the next writer
    "quarantine",       # a re-validation replaced an ingest's quarantine decisions
    "build",            # a model built (status ok)
    "build_failed",     # a model failed to build (its previous table kept)
    "build_aborted",    # a model build killed midway, found 'running' by the next build
    "recover_delete",   # recovery deleted an uncommitted lake file of a failed or killed ingest
    "verify",           # `alphatwin verify` checked the lake (status ok | failed)
)


def user() -> str:
    """The OS user running this process (its uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def command_line() -> str:
    """This process's command line, program name shortened (``alphatwin ingest csv data/``)."""
    argv = list(sys.argv) or [""]
    return " ".join([os.path.basename(argv[0]), *argv[1:]]).strip()


def record(
    con: Any,
    action: str,
    *,
    object: str | None = None,  # noqa: A002 - the column's name
    rows_in: int | None = None,
    rows_out: int | None = None,
    rows_quarantined: int | None = None,
    files: int | None = None,
    bytes: int | None = None,  # noqa: A002 - the column's name
    status: str = "ok",
    detail: dict[str, Any] | None = None,
    command: str | None = None,
) -> None:
    """Append one row to ``meta.audit`` through ``con`` (call it inside the change's transaction).

    Examples
    --------
    >>> record(con, "build", object="clean.bars", rows_out=900, detail={"mode": "full"})  # doctest: +SKIP
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    con.execute(
        'INSERT INTO meta.audit (seq, "at", run_id, "user", host, pid, command, action, object, rows_in, rows_out, '
        "rows_quarantined, files, bytes, status, detail) "
        "VALUES (nextval('meta.audit_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [dt.datetime.now(dt.UTC), run_id(), user(), socket.gethostname(), os.getpid(),
         redact(command if command else command_line()), action, object, rows_in, rows_out, rows_quarantined,
         files, bytes, status, json.dumps(detail or {}, default=str)],
    )
