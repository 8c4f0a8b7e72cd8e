"""Fault injection on real `alphatwin` processes: SIGKILL at every named fault point and at random
moments of `ingest csv` (quality gate on) and `build` (incremental and --full-refresh), and storage
faults (a file size limit, a real full disk, a read-only lake as an unprivileged user).

After every kill: the catalog opens read-only, committed rows = catalogued file rows = raw.bars
rows, quality verdicts exist only for committed ingests, no ``__building`` table is visible,
model tables hold the rows their last ok run recorded, and `verify` finds nothing wrong; then the
command is run again and its result must equal an undisturbed reference run exactly.

The random trials take ~5-8 s each (a process start and the GX gate dominate):
``DEFAULT_TRIALS`` per command run by default, ``ALL_TRIALS`` with ``-m slow``. Every assertion message carries the seed and the kill time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from alphatwin.lake import catalog
from alphatwin.lake.faults import POINTS
from alphatwin.lake.verify import verify
from alphatwin.paths import WarehousePaths

ALPHATWIN = str(Path(sys.executable).parent / "alphatwin")
SEED = 20261208
MODELS = ("clean.bars", "features.bars")
#: Random SIGKILL trials per command (ingest, build): in the default run, and in all (``-m slow``
#: adds the rest). docs/reliability.md quotes these (docs/gen_reliability.py).
DEFAULT_TRIALS, ALL_TRIALS = 6, 24


# ----------------------------------------------------------------------------- helpers
def write_csvs(folder: Path, symbols: list[str], n: int, start: dt.date, seed: int,
               broken: dict[str, list[int]] | None = None) -> Path:
    """Yahoo-format CSVs (one per symbol, weekdays); ``broken`` rows get high below low."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        lines, day, i = ["Date,Open,High,Low,Close,Adj Close,Volume"], start, 0
        while i < n:
            if day.weekday() < 5:
                o = close[i] * 1.001
                h, lo = max(o, close[i]) * 1.01, min(o, close[i]) * 0.99
                if i in (broken or {}).get(sym, []):
                    h = lo * 0.9
                lines.append(f"{day},{o:.4f},{h:.4f},{lo:.4f},{close[i]:.4f},{close[i]:.4f},{1000 + i}")
                i += 1
            day += dt.timedelta(days=1)
        (folder / f"{sym}.csv").write_text("\n".join(lines) + "\n")
    return folder


def cli(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180,
        **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ALPHATWIN, "-q", "--warehouse", str(root), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, **kwargs)


def start(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([ALPHATWIN, "-q", "--warehouse", str(root), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str, where: str = "") -> str:
    """A failure must be exit 1 and exactly one `Error: ...` line, the last on stderr, no traceback
    (before it: a build's per-model lines, or a warning that the JSON log is off)."""
    all_lines = proc.stderr.strip().splitlines()
    lines = [line for line in all_lines if line.startswith("Error")]
    assert proc.returncode == 1, f"{where} rc={proc.returncode} stderr={proc.stderr!r}"
    assert len(lines) == 1 and all_lines[-1] == lines[0], f"{where} stderr={proc.stderr!r}"
    assert "Traceback" not in proc.stderr and "this is a bug" not in proc.stderr, f"{where} {proc.stderr!r}"
    for needle in needles:
        assert needle in lines[0], f"{where} {needle!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(root: Path | str) -> dict[str, object]:
    """What must not change when a write fails: the lake's files and checksums, and row counts."""
    root = Path(root)
    files = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((root / "lake").rglob("*")) if p.is_file()}
    counts: dict[str, object] = {}
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        for table in ("raw.bars", "meta.lake_files", "meta.datasets", "quality.quarantine", "quality.flags",
                      "quality.accepted_bars", *MODELS):
            counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        counts["committed"] = sorted(r[0] for r in con.execute(
            "SELECT ingest_id FROM meta.ingest_runs WHERE status IN ('committed', 'partial')").fetchall())
        for model in MODELS:
            counts[f"{model} sum"] = con.execute(f"SELECT sum(hash(COLUMNS(*))) FROM {model}").fetchall()[0]
    return {"files": files, "counts": counts, "tmp": sorted(p.name for p in (root / "tmp").glob("*"))}


def check_consistent(root: Path, where: str) -> None:
    """The invariants that must hold right after a kill, before anything recovers."""
    paths = WarehousePaths(root)
    with catalog.connect(paths, read_only=True) as con:
        q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        committed = q("SELECT coalesce(sum(rows), 0) FROM meta.ingest_runs WHERE status IN ('committed', 'partial')")
        in_files = q("SELECT coalesce(sum(rows), 0) FROM meta.lake_files")
        visible = q("SELECT count(*) FROM raw.bars")
        assert committed == in_files == visible, f"{where}: committed {committed}, files {in_files}, raw {visible}"
        ids = {r[0] for r in q("SELECT ingest_id FROM meta.ingest_runs WHERE status IN ('committed', 'partial')")}
        for table in ("quality.quarantine", "quality.flags", "quality.restatements"):
            owners = {r[0] for r in q(f"SELECT DISTINCT ingest_id FROM {table}")}
            assert owners <= ids, f"{where}: {table} has verdicts of uncommitted ingests {owners - ids}"
        building = q("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%\\_\\_building' ESCAPE '\\'")
        assert not building, f"{where}: staging tables visible: {building}"
        for model in MODELS:
            last = q(f"SELECT table_rows FROM meta.model_runs WHERE model = '{model}' AND status = 'ok' "
                     "ORDER BY finished DESC LIMIT 1")
            rows = q(f"SELECT count(*) FROM {model}")
            assert last and last[0][0] == rows[0][0], f"{where}: {model} has {rows}, last ok run says {last}"
        for (rel,) in q("SELECT path FROM meta.lake_files"):
            assert (root / rel).is_file(), f"{where}: catalogued {rel} is gone"
    report = verify(paths)  # a writer: first recovers after the killed one, as the next writer would
    assert report.ok, f"{where}: verify found {[f.line() for f in report.findings]}"


def accepted(root: Path, other: Path, where: str) -> None:
    """quality.accepted_bars of ``root`` equals ``other``'s (as multisets, ingest ids aside), and no
    key repeats within an ingest."""
    cols = "symbol, interval, ts, open, high, low, close, volume, dividend, split_ratio, source"
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        con.execute(f"ATTACH '{(other / 'alphatwin.duckdb').as_posix()}' AS ref (READ_ONLY)")
        for a, b in (("wh", "ref"), ("ref", "wh")):
            diff = con.execute(
                f"SELECT count(*) FROM (SELECT {cols}, count(*) FROM {a}.quality.accepted_bars GROUP BY ALL "
                f"EXCEPT SELECT {cols}, count(*) FROM {b}.quality.accepted_bars GROUP BY ALL)").fetchall()[0][0]
            assert diff == 0, f"{where}: {diff} accepted-bar groups in {a} not in {b}"
        dup = con.execute("SELECT count(*) FROM (SELECT ingest_id, symbol, interval, ts FROM wh.quality.accepted_bars "
                          "GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        assert dup == 0, f"{where}: {dup} duplicated keys in quality.accepted_bars"


def built_equal(root: Path, other: Path, where: str) -> None:
    """clean.bars and features.bars equal the reference's exactly (EXCEPT both ways), keys unique."""
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        con.execute(f"ATTACH '{(other / 'alphatwin.duckdb').as_posix()}' AS ref (READ_ONLY)")
        for model in MODELS:
            for a, b in (("wh", "ref"), ("ref", "wh")):
                diff = con.execute(f"SELECT count(*) FROM (FROM {a}.{model} EXCEPT ALL FROM {b}.{model})").fetchall()
                assert diff[0][0] == 0, f"{where}: {diff[0][0]} rows of {a}.{model} not in {b}"
            dup = con.execute(f"SELECT count(*) FROM (SELECT symbol, interval, ts FROM wh.{model} GROUP BY ALL "
                              "HAVING count(*) > 1)").fetchall()[0][0]
            assert dup == 0, f"{where}: {dup} duplicated keys in {model}"


def committed_ingests(root: Path) -> int:
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        return con.execute("SELECT count(*) FROM meta.ingest_runs WHERE status = 'committed'").fetchall()[0][0]


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".write.lock", "logs"))
    return dst


# ----------------------------------------------------------------------------- templates
@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict[str, object]:
    """Warehouses built once per module: ``built`` (ingest A + build), ``pending`` (+ ingest B,
    not built), ``built2`` (pending + build: the build reference), ``twice`` (+ ingest B again)."""
    base = tmp_path_factory.mktemp("lab")
    a = write_csvs(base / "a", ["AAA", "BBB", "CCC"], 260, dt.date(2015, 1, 1), 1, {"BBB": [50, 51]})
    b = write_csvs(base / "b", ["CCC", "DDD"], 200, dt.date(2016, 2, 1), 2, {"DDD": [7]})
    built = base / "built"
    t0 = time.perf_counter()
    assert cli(built, "ingest", "csv", str(a)).returncode == 0
    assert cli(built, "build").returncode == 0
    pending = copy(built, base / "pending")
    t1 = time.perf_counter()
    p = cli(pending, "ingest", "csv", str(b))
    ingest_s = time.perf_counter() - t1
    assert p.returncode == 0, p.stderr
    built2 = copy(pending, base / "built2")
    t2 = time.perf_counter()
    assert cli(built2, "build").returncode == 0
    build_s = time.perf_counter() - t2
    twice = copy(pending, base / "twice")
    assert cli(twice, "ingest", "csv", str(b)).returncode == 0
    print(f"templates in {time.perf_counter() - t0:.1f}s; ingest B {ingest_s:.2f}s, build {build_s:.2f}s")
    return {"base": base, "b": b, "built": built, "pending": pending, "built2": built2, "twice": twice,
            "ingest_s": ingest_s, "build_s": build_s}


def _after_ingest_kill(lab: dict, root: Path, where: str) -> None:
    check_consistent(root, where)
    rerun = cli(root, "ingest", "csv", str(lab["b"]))
    assert rerun.returncode == 0, f"{where}: re-run failed: {rerun.stderr}"
    n = committed_ingests(root) - 1  # ingest A
    assert n in (1, 2), f"{where}: {n} committed copies of ingest B"
    accepted(root, lab["pending"] if n == 1 else lab["twice"], where)
    check_consistent(root, where + " after re-run")


def _after_build_kill(lab: dict, root: Path, args: list[str], where: str) -> None:
    check_consistent(root, where)
    rerun = cli(root, "build", *args)
    assert rerun.returncode == 0, f"{where}: re-run failed: {rerun.stderr}"
    built_equal(root, lab["built2"], where)
    check_consistent(root, where + " after re-run")
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        left = con.execute("SELECT count(*) FROM meta.model_runs WHERE status = 'running'").fetchall()[0][0]
    assert left == 0, f"{where}: {left} model runs still 'running' after the next build"


# ----------------------------------------------------------------------------- (a) named points
INGEST_POINTS = [p for p in POINTS if p.startswith("ingest:")]
BUILD_POINTS = [p for p in POINTS if p.startswith("build:")]


@pytest.mark.parametrize("point", INGEST_POINTS)
def test_sigkill_at_each_ingest_point(lab, tmp_path, point):
    root = copy(lab["built"], tmp_path / "wh")
    proc = cli(root, "ingest", "csv", str(lab["b"]), env={"ALPHATWIN_FAULT": point})
    assert proc.returncode == -signal.SIGKILL, f"{point}: rc={proc.returncode} {proc.stderr}"
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM meta.ingest_runs ORDER BY started").fetchall()]
    assert statuses == ["committed", "committed" if point == "ingest:after_commit" else "running"], point
    _after_ingest_kill(lab, root, f"point {point}")


@pytest.mark.parametrize("point", BUILD_POINTS)
def test_sigkill_at_each_build_point(lab, tmp_path, point):
    root = copy(lab["pending"], tmp_path / "wh")
    proc = cli(root, "build", "--full-refresh", env={"ALPHATWIN_FAULT": point})
    assert proc.returncode == -signal.SIGKILL, f"{point}: rc={proc.returncode} {proc.stderr}"
    _after_build_kill(lab, root, [], f"point {point}")
    with catalog.connect(WarehousePaths(root), read_only=True) as con:
        aborted = con.execute("SELECT count(*) FROM meta.model_runs WHERE status = 'aborted'").fetchall()[0][0]
        audited = con.execute("SELECT count(*) FROM meta.audit WHERE action = 'build_aborted'").fetchall()[0][0]
    assert aborted == audited == (0 if point == "build:after_commit" else 1), point


def test_sigkill_in_revalidation_commit(lab, tmp_path):
    root = copy(lab["pending"], tmp_path / "wh")
    proc = cli(root, "validate", env={"ALPHATWIN_FAULT": "validate:before_commit"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    check_consistent(root, "validate:before_commit")
    assert cli(root, "validate").returncode == 0
    accepted(root, lab["pending"], "validate:before_commit")


def test_every_fault_point_is_in_the_code():
    """Each named point is placed exactly once in alphatwin/ (a renamed point would silently vanish)."""
    src = "\n".join(p.read_text() for p in Path(__file__).resolve().parents[2].joinpath("alphatwin").rglob("*.py"))
    for name in POINTS:
        assert src.count(f'faults.point("{name}")') == 1, name


# ----------------------------------------------------------------------------- (b) random kills
@pytest.mark.parametrize("trial", range(DEFAULT_TRIALS))
def test_sigkill_ingest_at_random_times(lab, tmp_path, trial):
    _random_ingest_kill(lab, tmp_path, trial)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(DEFAULT_TRIALS, ALL_TRIALS))
def test_sigkill_ingest_at_random_times_more(lab, tmp_path, trial):
    _random_ingest_kill(lab, tmp_path, trial)


@pytest.mark.parametrize("trial", range(DEFAULT_TRIALS))
def test_sigkill_build_at_random_times(lab, tmp_path, trial):
    _random_build_kill(lab, tmp_path, trial)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(DEFAULT_TRIALS, ALL_TRIALS))
def test_sigkill_build_at_random_times_more(lab, tmp_path, trial):
    _random_build_kill(lab, tmp_path, trial)


def _random_ingest_kill(lab: dict, tmp_path: Path, trial: int) -> None:
    rng = random.Random(SEED + trial)
    after = rng.uniform(0.15, 1.05) * (lab["ingest_s"] + 0.3)
    where = f"ingest trial {trial} (seed {SEED + trial}, SIGKILL after {after:.3f}s)"
    root = copy(lab["built"], tmp_path / "wh")
    proc = start(root, "ingest", "csv", str(lab["b"]))
    time.sleep(after)
    proc.kill()
    rc = proc.wait(timeout=60)
    assert rc in (0, -signal.SIGKILL), f"{where}: rc={rc} {proc.stderr.read() if proc.stderr else ''}"
    _after_ingest_kill(lab, root, where)


def _random_build_kill(lab: dict, tmp_path: Path, trial: int) -> None:
    rng = random.Random(SEED + 1000 + trial)
    args = ["--full-refresh"] if trial % 2 else []
    after = rng.uniform(0.15, 1.05) * (lab["build_s"] + 0.3)
    where = f"build{' --full-refresh' if args else ''} trial {trial} (seed {SEED + 1000 + trial}, SIGKILL after {after:.3f}s)"
    root = copy(lab["pending"], tmp_path / "wh")
    proc = start(root, "build", *args)
    time.sleep(after)
    proc.kill()
    rc = proc.wait(timeout=60)
    assert rc in (0, -signal.SIGKILL), f"{where}: rc={rc}"
    _after_build_kill(lab, root, args, where)


# ----------------------------------------------------------------------------- storage faults
def _limited(limit: int):
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes get EFBIG
    return pre


@pytest.mark.parametrize("command", ["ingest", "build"])
def test_file_size_limit_gives_one_line_and_changes_nothing(lab, tmp_path, command):
    failures = 0
    for limit in (4_096, 16_000, 24_000):
        root = copy(lab["built" if command == "ingest" else "pending"], tmp_path / f"wh{limit}")
        before = snapshot(root)
        args = ["ingest", "csv", str(lab["b"])] if command == "ingest" else ["build", "--full-refresh"]
        proc = cli(root, *args, env={"ALPHATWIN_MIN_FREE_BYTES": "0"}, preexec_fn=_limited(limit))
        where = f"{command} with RLIMIT_FSIZE={limit}"
        if proc.returncode == 0:
            continue
        failures += 1
        one_line_error(proc, "file too large", "cannot write", where=where)
        assert snapshot(root) == before, where
        assert cli(root, *args).returncode == 0, f"{where}: the retry without the limit failed"
    assert failures >= 2, f"only {failures} of 3 limits made the {command} fail"


TMPFS_SCRIPT = r"""
import json, os, shutil, subprocess, sys
mnt, template, csvs, alphatwin, repo = sys.argv[1:6]
sys.path.insert(0, repo)
from tests.lake.test_faults import snapshot  # noqa: E402  (the mount is only visible in this namespace)
def run(*args, env=None):
    p = subprocess.run([alphatwin, "-q", "--warehouse", mnt + "/wh", *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=180)
    return {"args": list(args), "rc": p.returncode, "stderr": p.stderr}
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], capture_output=True).returncode:
    print(json.dumps({"skip": "mount -t tmpfs refused"})); sys.exit(0)
try:
    shutil.copytree(template, mnt + "/wh", ignore=shutil.ignore_patterns(".write.lock"))
    out = {"preflight": run("ingest", "csv", csvs), "runs": []}  # the 64 MiB threshold > the 24 MiB disk
    for attempt in range(3):  # fill the disk up; a writer may free a cache of its own, so fill again
        with open(mnt + f"/fill{attempt}", "wb") as fh:
            try:
                fh.write(b"\0" * shutil.disk_usage(mnt).free)
            except OSError:
                pass
        for args in (["ingest", "csv", csvs], ["build", "--full-refresh"]):
            before = snapshot(mnt + "/wh")
            done = run(*args, env={"ALPHATWIN_MIN_FREE_BYTES": "0"})
            done["unchanged"] = snapshot(mnt + "/wh") == before
            out["runs"].append(done)
    for attempt in range(3):
        os.unlink(mnt + f"/fill{attempt}")
    before = snapshot(mnt + "/wh")
    out["retry"] = run("ingest", "csv", csvs, env={"ALPHATWIN_MIN_FREE_BYTES": "0"})
    out["grew"] = snapshot(mnt + "/wh")["counts"]["raw.bars"] > before["counts"]["raw.bars"]
finally:
    subprocess.run(["umount", "-l", mnt])
print(json.dumps(out))
"""


def test_full_disk_gives_one_line_and_changes_nothing(lab, tmp_path):
    """A real full disk: a 24 MiB tmpfs in a private mount namespace (gone with the process), filled up."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m refused here: {probe.stderr.strip()}")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "tmpfs.py"
    script.write_text(TMPFS_SCRIPT)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, str(script), str(mnt),
                           str(lab["built"]), str(lab["b"]), ALPHATWIN, str(repo)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    pre = subprocess.CompletedProcess([], out["preflight"]["rc"], "", out["preflight"]["stderr"])
    one_line_error(pre, "disk full: only", "nothing was changed", where="pre-flight")
    failures = 0
    for i, run in enumerate(out["runs"]):
        where = f"{' '.join(run['args'])} on a full disk (run {i})"
        if run["rc"] == 0:
            continue
        failures += 1
        one_line_error(subprocess.CompletedProcess([], run["rc"], "", run["stderr"]), "disk full",
                       "cannot write", where=where)
        assert run["unchanged"], f"{where}: the warehouse changed"
    assert failures >= 2, f"the full disk made only {failures} run(s) fail: {out['runs']}"
    assert out["retry"]["rc"] == 0 and out["grew"], out["retry"]


def test_read_only_lake_as_unprivileged_user(lab, tmp_path):
    """As an unprivileged user (root ignores permissions), a read-only lake/ stops the publish."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="alphatwin-ro-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        root = copy(lab["built"], top / "wh")
        csvs = shutil.copytree(lab["b"], top / "b")
        cache = top / "numba"
        if os.environ.get("NUMBA_CACHE_DIR") and Path(os.environ["NUMBA_CACHE_DIR"]).is_dir():
            shutil.copytree(os.environ["NUMBA_CACHE_DIR"], cache)
        for p in [top, *top.rglob("*")]:
            os.chown(p, 65534, 65534)
        for d in [root / "lake", *(root / "lake").rglob("*")]:
            if d.is_dir():
                os.chown(d, 0, 0)
                os.chmod(d, 0o555)
        before = snapshot(root)
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ALPHATWIN, "-q", "--warehouse",
             str(root), "ingest", "csv", str(csvs)], capture_output=True, text=True, timeout=180,
            env={**os.environ, "NUMBA_CACHE_DIR": str(cache), "HOME": str(top)})
        one_line_error(proc, "permission denied", "lake/bars", "nothing was changed", where="read-only lake/")
        assert snapshot(root) == before
    finally:
        shutil.rmtree(top, ignore_errors=True)
