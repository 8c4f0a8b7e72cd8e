"""Named fault points: where a test may SIGKILL a writer to prove that a crash there is harmless.

``point(name)`` does nothing unless the environment variable ``ALPHATWIN_FAULT`` equals
``name``; then the process kills itself with SIGKILL on the spot (no cleanup handler, no
``finally`` runs: exactly what a power cut or the OOM killer does). The points mark every window
in which a writer holds state that is not yet, or no longer, consistent with the catalog
(``tests/lake/test_faults.py`` kills a real ``alphatwin`` process at each of them).

Example: ``ALPHATWIN_FAULT=ingest:before_commit alphatwin ingest csv data/``
"""

from __future__ import annotations

import os
import signal

__all__ = ["point", "POINTS", "ENV"]

ENV = "ALPHATWIN_FAULT"

#: Every fault point, in the order a writer passes them.
POINTS = (
    "ingest:staged",          # files written and fsynced under tmp/, nothing published
    "ingest:published",       # files renamed into lake/, not yet in the catalog
    "ingest:gate_persisted",  # inside the commit transaction: quality verdicts written
    "ingest:before_commit",   # inside the commit transaction: everything written, no COMMIT yet
    "ingest:after_commit",    # committed, connection (checkpoint) not closed yet
    "validate:before_commit",  # re-validation: verdicts written, no COMMIT yet
    "build:started",          # a model's 'running' row is recorded, nothing built
    "build:staged",           # a Python model computed into its staging table
    "build:before_commit",    # a model's table and its run rows written, no COMMIT yet
    "build:after_commit",     # a model committed, the next one not started
)


def point(name: str) -> None:
    """Kill this process with SIGKILL when ``$ALPHATWIN_FAULT`` is ``name``; else do nothing."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
