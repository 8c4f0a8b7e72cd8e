"""SIGKILL an ingest midway: no partial file is visible, the catalog stays consistent, and a
re-run completes. Kill times are spread over the length of an undisturbed run, so trials land
in staging, publishing and committing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from alphatwin.lake import catalog
from alphatwin.lake.ingest import ingest
from alphatwin.paths import WarehousePaths
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from tests.conftest import make_bars

SCRIPT = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from alphatwin.lake import ingest as ing, writer
    from alphatwin.paths import WarehousePaths
    from alphatwin.sources.base import FetchRequest
    from tests.conftest import make_bars

    writer.FLUSH_ROWS = 15_000            # many files, so kills also land while publishing

    class Slow:
        name, network = "slow", False
        def fetch(self, request):
            for i in range(12):
                time.sleep(0.03)
                yield make_bars([f"S{i:02d}"], 2_000, start=dt.datetime(1990, 1, 1), seed=i)

    print("start", flush=True)
    ing.ingest(Slow(), FetchRequest(), WarehousePaths(Path(sys.argv[1])))
    print("done", flush=True)
    """
)


def _run(root, kill_after: float | None) -> int:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=120)


def _check_consistent(paths: WarehousePaths) -> int:
    with catalog.connect(paths, read_only=True) as con:
        committed = con.execute(
            "SELECT coalesce(sum(rows), 0) FROM meta.ingest_runs WHERE status = 'committed'").fetchall()[0][0]
        in_files = con.execute("SELECT coalesce(sum(rows), 0) FROM meta.lake_files").fetchall()[0][0]
        visible = con.execute("SELECT count(*) FROM raw.bars").fetchall()[0][0]
        dup = con.execute("SELECT count(*) FROM (SELECT ingest_id, symbol, ts FROM raw.bars "
                          "GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        listed = {r[0] for r in con.execute("SELECT path FROM meta.lake_files").fetchall()}
    assert committed == in_files == visible and dup == 0
    for rel in listed:
        assert (paths.root / rel).is_file()
    return visible


@pytest.fixture(scope="module")
def full_run_seconds(tmp_path_factory) -> float:
    """How long an undisturbed ingest takes after its 'start' line (the kill window)."""
    t0 = time.perf_counter()
    assert _run(tmp_path_factory.mktemp("ref") / "wh", None) == 0
    return time.perf_counter() - t0


@pytest.mark.parametrize("trial", range(6))
def test_sigkill_midway_then_rerun(tmp_path, trial, full_run_seconds):
    paths = WarehousePaths(tmp_path / "wh")
    # Seed with one committed ingest so a kill must also leave earlier data intact.
    ingest(FrameSource(make_bars(["BASE"], 100)), FetchRequest(), paths)
    rc = _run(paths.root, kill_after=full_run_seconds * (0.1 + 0.8 * trial / 5))
    visible = _check_consistent(paths)  # a reader right after the kill, before any recovery
    assert visible in (100, 100 + 24_000)
    if rc == 0:
        return  # the ingest won the race; it is complete and consistent
    assert rc == -signal.SIGKILL
    assert _run(paths.root, None) == 0  # the next writer recovers and completes
    assert _check_consistent(paths) in (100 + 24_000, 100 + 48_000)
    with catalog.connect(paths, read_only=True) as con:
        statuses = {r[0] for r in con.execute("SELECT status FROM meta.ingest_runs").fetchall()}
    assert "running" not in statuses
    on_disk = {paths.relative(p) for p in paths.bars.rglob("*.parquet")}
    with catalog.connect(paths, read_only=True) as con:
        listed = {r[0] for r in con.execute("SELECT path FROM meta.lake_files").fetchall()}
    assert on_disk == listed  # recovery removed every uncommitted file
