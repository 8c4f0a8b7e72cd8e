"""The warehouse's single-writer lock (an advisory ``flock`` on ``<warehouse>/.write.lock``)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alphatwin.errors import LakeError, WarehouseBusyError
from alphatwin.paths import WarehousePaths

__all__ = ["write_lock"]


@contextmanager
def write_lock(paths: WarehousePaths, *, timeout: float = 0.0) -> Iterator[None]:
    """Hold the warehouse write lock; wait up to ``timeout`` seconds, then raise
    :class:`WarehouseBusyError`. The lock dies with the process, so a killed writer never
    leaves the warehouse locked."""
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.write_lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LakeError(f"cannot open {paths.write_lock}: {exc.strerror}") from None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"warehouse busy: another AlphaTwin process is writing {paths.root}; "
                        "retry when it finishes"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
