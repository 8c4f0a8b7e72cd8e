"""The warehouse's locks: the single-writer lock and the read-snapshot guard.

* ``<warehouse>/.write.lock``: an advisory ``flock`` held by the one process that writes the
  warehouse (an ingest, a build, a re-validation). A second writer fails at once with
  :class:`WarehouseBusyError`, or waits up to ``--wait SECONDS`` (:func:`set_default_wait`).
* ``<warehouse>/state/snapshot.lock``: held exclusively by a writer while it opens the catalog
  read-write and publishes the read snapshot, shared by a reader while it picks the snapshot,
  so a reader never picks a snapshot older than the write that blocks it (see
  :mod:`alphatwin.lake.catalog`).

Both locks die with their process, so a killed writer never leaves the warehouse locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alphatwin.errors import LakeError, WarehouseBusyError
from alphatwin.paths import WarehousePaths

__all__ = ["write_lock", "set_default_wait", "default_wait", "holds_write_lock", "snapshot_guard"]

_default_wait = 0.0
_held: set[str] = set()  # warehouse roots whose write lock this process holds


def set_default_wait(seconds: float) -> None:
    """Let every writer of this process wait up to ``seconds`` for the warehouse (``--wait``)."""
    global _default_wait
    _default_wait = max(0.0, float(seconds))


def default_wait() -> float:
    """The process-wide minimum wait for the write lock and the catalog (``--wait``; default 0)."""
    return _default_wait


def holds_write_lock(paths: WarehousePaths) -> bool:
    """Whether this process holds the write lock of ``paths`` (its reads must see the live catalog)."""
    return str(paths.root) in _held


def _holder(paths: WarehousePaths) -> str:
    try:
        pid = paths.write_lock.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextmanager
def write_lock(paths: WarehousePaths, *, timeout: float = 0.0) -> Iterator[None]:
    """Hold the warehouse write lock; wait up to ``timeout`` seconds (at least the ``--wait``
    default), then raise :class:`WarehouseBusyError`."""
    timeout = max(timeout, _default_wait)
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.write_lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LakeError(f"cannot open {paths.write_lock}: {exc.strerror}") from None
    deadline = time.monotonic() + timeout
    key = str(paths.root)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    waited = f"; waited {timeout:g} s" if timeout > 0 else ""
                    raise WarehouseBusyError(
                        f"warehouse busy: another AlphaTwin process{_holder(paths)} is writing {paths.root}"
                        f"{waited}; retry when it finishes (or pass --wait SECONDS)"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held.add(key)
        yield
    finally:
        _held.discard(key)
        os.close(fd)


@contextmanager
def snapshot_guard(paths: WarehousePaths, *, exclusive: bool, timeout: float = 120.0) -> Iterator[None]:
    """Hold ``state/snapshot.lock`` (exclusive for a writer publishing, shared for a reader picking).

    A writer holds it only while it attaches the catalog and copies it, so waits are short; past
    ``timeout`` seconds a :class:`WarehouseBusyError` says so.
    """
    lock_file = paths.state / "snapshot.lock"
    fd = _open_guard(lock_file, exclusive)
    if fd is None:  # a reader of a read-only (or someone else's) warehouse: nobody writes it
        yield
        return
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"warehouse busy: a writer has been publishing the read snapshot of {paths.root} "
                        f"for over {timeout:g} s"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def _open_guard(lock_file: os.PathLike[str], exclusive: bool) -> int | None:
    import errno

    try:
        os.makedirs(os.path.dirname(lock_file), exist_ok=True)
        return os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if not exclusive and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return None
        raise LakeError(f"cannot write {lock_file}: {(exc.strerror or str(exc)).lower()} "
                        "(the previous state is intact)") from None
