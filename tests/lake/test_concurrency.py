"""Concurrency with real processes: readers during a build, two writers, ``--wait``, the read snapshot.

Every writer here is a real ``alphatwin`` subprocess; readers are ``alphatwin sql`` subprocesses
and in-process ``catalog.connect(read_only=True)`` / ``alphatwin.open(...)`` handles.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import alphatwin
from alphatwin.errors import LakeError, WarehouseBusyError
from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths

STATUS = ("SELECT (SELECT count(*) FROM meta.model_runs) AS model_runs, (SELECT count(*) FROM meta.ingest_runs) "
          "AS ingests, (SELECT count(*) FROM raw.bars) AS bars, (SELECT count(*) FROM clean.bars) AS clean")


def _cli(wh: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "alphatwin", "--warehouse", str(wh), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _run(wh: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = _cli(wh, *args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _status(paths: WarehousePaths) -> tuple:
    with catalog.connect(paths, read_only=True) as con:
        return con.execute(STATUS).fetchall()[0]


def _wait_for_new_snapshot(paths: WarehousePaths, before: float, proc: subprocess.Popen) -> None:
    snap = catalog.snapshot_path(paths)
    deadline = time.monotonic() + 120
    while not (snap.exists() and snap.stat().st_mtime_ns > before):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> WarehousePaths:
    """A medium synthetic warehouse (250 symbols x 4,000 bars), built once."""
    paths = WarehousePaths(tmp_path_factory.mktemp("conc") / "wh")
    for args in (["ingest", "synthetic", "--symbols", "250", "--bars", "4000", "--no-validate"], ["build"]):
        done = _run(paths.root, *args)
        assert done.returncode == 0, done.stderr
    return paths


def test_readers_keep_working_during_a_build(built):
    paths = built
    pre = _status(paths)
    snap = catalog.snapshot_path(paths)
    before = snap.stat().st_mtime_ns if snap.exists() else 0
    build = _cli(paths.root, "build", "--full-refresh")
    _wait_for_new_snapshot(paths, before, build)  # the build holds the catalog read-write from here on
    count_sql = "select count(*) as n from raw.bars"
    clis = [_cli(paths.root, "sql", count_sql if i % 2 else STATUS, "--format", "csv") for i in range(8)]
    in_process: list[tuple] = []
    while build.poll() is None:
        in_process.append(("catalog", _status(paths)))
        frame = alphatwin.open(paths.root).sql(STATUS)
        in_process.append(("api", frame.row(0)))
    assert build.wait() == 0, build.stderr.read()
    post = _status(paths)
    assert post[0] == pre[0] + 4 and post[1:] == pre[1:]  # the build added its 4 model runs
    during = [r for _, r in in_process]
    assert set(during) <= {pre, post}, "a reader saw a state that is neither before nor after the build"
    assert during.count(pre) >= 20, f"only {during.count(pre)} reads during the build"
    noted = 0
    for i, proc in enumerate(clis):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines = out.splitlines()
        expected = f"{pre[2]}" if i % 2 else ",".join(map(str, pre))
        if "note: another process is writing the warehouse" in err:
            noted += 1
            assert len(err.strip().splitlines()) == 1
            assert lines[1] == expected, (out, err)  # the catalog as of the build's start
        else:
            assert lines[1] in {expected, ",".join(map(str, post))}
    assert noted >= 4, "the CLI readers did not run during the build"


def test_two_concurrent_ingests_exactly_one_commits(built):
    paths = built
    pre = _status(paths)
    files_before = len(list(paths.bars.rglob("*.parquet")))
    args = ["ingest", "synthetic", "--symbols", "100", "--bars", "3000", "--start", "2030-01-01", "--no-validate"]
    first, second = _cli(paths.root, *args, "--seed", "1"), _cli(paths.root, *args, "--seed", "2")
    results = [p.communicate(timeout=300) + (p.returncode,) for p in (first, second)]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[2] == 1)
    assert loser[1].strip().splitlines()[-1].startswith("Error: warehouse busy: another AlphaTwin process")
    assert "Traceback" not in loser[1]
    post = _status(paths)
    assert post[1] == pre[1] + 1 and post[2] == pre[2] + 300_000
    with catalog.connect(paths, read_only=True) as con:
        (lake_rows, lake_files), = con.execute("SELECT sum(rows), count(*) FROM meta.lake_files").fetchall()
        committed, = con.execute("SELECT sum(rows) FROM meta.ingest_runs WHERE status = 'committed'").fetchall()[0]
    assert lake_rows == committed == post[2]
    assert lake_files == len(list(paths.bars.rglob("*.parquet"))) > files_before


def test_wait_lets_a_second_writer_through_or_times_out(built):
    """A writer process holds the lock until told to stop: ``--wait 0.3`` times out with a clear
    line, ``--wait 120`` gets through once the first writer ends."""
    paths = built
    pre = _status(paths)
    first = subprocess.Popen([sys.executable, "-c", (
        "import sys\nfrom pathlib import Path\nfrom alphatwin.lake.lock import write_lock\n"
        "from alphatwin.paths import WarehousePaths\n"
        f"with write_lock(WarehousePaths(Path({str(paths.root)!r}))):\n"
        "    print('holding', flush=True); sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "holding"
    args = ["ingest", "synthetic", "--symbols", "100", "--bars", "3000", "--start", "2040-01-01", "--no-validate"]
    try:
        short = _run(paths.root, "--wait", "0.3", *args, "--seed", "4")
        assert short.returncode == 1
        assert short.stderr.strip().splitlines() == [
            f"Error: warehouse busy: another AlphaTwin process (pid {first.pid}) is writing {paths.root}; "
            "waited 0.3 s; retry when it finishes (or pass --wait SECONDS)"]
        immediate = _run(paths.root, *args, "--seed", "4")  # the default: fail at once
        assert immediate.returncode == 1 and "warehouse busy" in immediate.stderr and "waited" not in immediate.stderr
        waiter = _cli(paths.root, "--wait", "120", *args, "--seed", "5")
        time.sleep(1.5)
        assert waiter.poll() is None  # still waiting for the lock
    finally:
        first.communicate("\n", timeout=60)
    out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    assert _status(paths)[1:3] == (pre[1] + 1, pre[2] + 300_000)  # only the waiter wrote


def test_a_reader_never_sees_a_half_written_state(tmp_path):
    """Five ingests in a row in a subprocess while this process reads in a loop: every read shows
    whole ingests only (raw.bars = committed files = committed runs)."""
    paths = WarehousePaths(tmp_path / "wh")
    assert _run(paths.root, "ingest", "synthetic", "--symbols", "20", "--bars", "500", "--no-validate").returncode == 0
    script = ("import subprocess, sys\n"
              "for k in range(5):\n"
              f"    subprocess.run([sys.executable, '-m', 'alphatwin', '--warehouse', {str(paths.root)!r}, '--wait', "
              "'60', 'ingest', 'synthetic', '--symbols', '20', '--bars', '500', '--no-validate', '--start', "
              "f'20{k + 3}0-01-01'], check=True)\n")
    writer = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    seen, reads = set(), 0
    query = ("SELECT (SELECT count(*) FROM raw.bars), (SELECT coalesce(sum(rows), 0) FROM meta.lake_files), "
             "(SELECT coalesce(sum(rows), 0) FROM meta.ingest_runs WHERE status = 'committed')")
    while writer.poll() is None or reads < 20:
        try:
            with catalog.connect(paths, read_only=True) as con:
                bars, files, runs = con.execute(query).fetchall()[0]
        except WarehouseBusyError:  # no snapshot yet: the first writer's start
            continue
        assert bars == files == runs and bars % 10_000 == 0, (bars, files, runs)
        seen.add(bars)
        reads += 1
    assert writer.wait() == 0, writer.stderr.read()
    assert reads >= 20 and len(seen) >= 2 and max(seen) <= 60_000
    with catalog.connect(paths, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.bars").fetchall() == [(60_000,)]


def test_the_snapshot_is_the_state_before_the_write(tmp_path):
    paths = WarehousePaths(tmp_path / "wh")
    assert _run(paths.root, "ingest", "synthetic", "--symbols", "3", "--bars", "100", "--no-validate").returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom alphatwin.lake import catalog\n"
        "from alphatwin.paths import WarehousePaths\n"
        f"p = WarehousePaths(Path({str(paths.root)!r}))\n"
        "with catalog.connect(p) as con:\n"
        "    con.execute(\"INSERT INTO meta.properties VALUES ('uncommitted-test', 'x')\")\n"
        "    con.execute('BEGIN TRANSACTION'); con.execute('DELETE FROM meta.lake_files')\n"
        "    print('holding', flush=True); sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    try:
        read = _run(paths.root, "sql", "select (select count(*) from meta.lake_files) f, (select count(*) from "
                    "meta.properties where key = 'uncommitted-test') p", "--format", "csv")
        assert read.returncode == 0, read.stderr
        assert read.stdout.splitlines()[1] == "1,0"  # neither the committed insert nor the open delete
        assert read.stderr.startswith("note: another process is writing the warehouse")
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0


def test_no_snapshot_after_a_killed_writer_means_readers_are_told_busy(tmp_path):
    """A killed writer leaves a WAL: the next writer cannot publish a consistent copy, so it
    removes the old snapshot and readers get a clear 'warehouse busy' (never a stale state)."""
    paths = WarehousePaths(tmp_path / "wh")
    assert _run(paths.root, "ingest", "synthetic", "--symbols", "3", "--bars", "100", "--no-validate").returncode == 0
    killed = subprocess.run([sys.executable, "-c", (
        "import os\nimport duckdb\n"
        f"con = duckdb.connect(); con.execute(\"ATTACH '{paths.db}' AS wh\")\n"
        "con.execute(\"INSERT INTO wh.meta.properties VALUES ('killed', 'x')\")\nos._exit(9)\n")])
    assert killed.returncode == 9 and paths.db.with_name("alphatwin.duckdb.wal").exists()
    assert catalog.snapshot_path(paths).exists()  # from the ingest
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys\nfrom pathlib import Path\nfrom alphatwin.lake import catalog\n"
        "from alphatwin.paths import WarehousePaths\n"
        f"with catalog.connect(WarehousePaths(Path({str(paths.root)!r}))):\n"
        "    print('holding', flush=True); sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    try:
        assert not catalog.snapshot_path(paths).exists()
        read = _run(paths.root, "sql", "select 1")
        assert read.returncode == 1
        assert read.stderr.strip().splitlines() == [
            f"Error: warehouse busy: the catalog {paths.db} is open in another process (a writer, and there is "
            "no read snapshot); retry when it finishes (or pass --wait SECONDS)"]
    finally:
        holder.communicate("\n", timeout=60)
    assert _run(paths.root, "sql", "select value from meta.properties where key = 'killed'").returncode == 0


@pytest.fixture
def tiny_fs(tmp_path):
    """A 100 MiB tmpfs (root only; skipped elsewhere): ingests want 64 MiB free."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_at_connect_is_one_line(tiny_fs):
    with open(tiny_fs / "filler", "wb") as fh:  # fill the file system to the last block
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        except OSError:
            pass
    paths = WarehousePaths(tiny_fs / "wh")
    with pytest.raises(LakeError, match="no space left on device"), catalog.connect(paths):
        pass
    done = _run(paths.root, "init")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no space left on device" in done.stderr.strip().splitlines()[-1]


def test_a_read_only_file_system_at_connect_is_one_line(tiny_fs):
    paths = WarehousePaths(tiny_fs / "wh")
    assert _run(paths.root, "ingest", "synthetic", "--symbols", "2", "--bars", "50", "--no-validate").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    with pytest.raises(LakeError, match="read-only file system"), catalog.connect(paths):
        pass
    with catalog.connect(paths, read_only=True) as con:  # reading still works
        assert con.execute("SELECT count(*) FROM raw.bars").fetchall() == [(100,)]
    read = _run(paths.root, "sql", "select count(*) as n from raw.bars", "--format", "csv")
    assert read.returncode == 0 and read.stdout.splitlines() == ["n", "100"], read.stderr
