"""JSON logs and meta.stage_runs through the real CLI (CliRunner, real DuckDB, real files).

Guards: every command leaves parseable JSON records with its run id; an error reaches the JSON
log (level error, its type and text) while stderr keeps one line; ``-q`` is silent on success;
a log that cannot be written (``/dev/full``, a log dir that is a file) costs one warning line,
never a traceback, and the command still succeeds; read-only commands never create a
warehouse; every stage kind lands in ``meta.stage_runs`` with rows and memory.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatwin import log as atlog
from alphatwin.cli.main import app

runner = CliRunner()
GOOG = Path(__file__).parent / "sources" / "fixtures" / "GOOG.csv"


def cli(wh: Path, *args: str):
    return runner.invoke(app, ["--warehouse", str(wh), *args])


def records(wh: Path) -> list[dict]:
    """Every JSON record under <wh>/logs, each line parsed on its own."""
    out = []
    for f in sorted((wh / "logs").glob("alphatwin-*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            out.append(json.loads(line))
    return out


def by_run(recs: list[dict]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for r in recs:
        runs.setdefault(r["run_id"], []).append(r)
    return runs


def _ok(result) -> None:
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    """A small warehouse, built once: synthetic bars with defects, validated, built, backtested."""
    root = tmp_path_factory.mktemp("logs") / "wh"
    _ok(cli(root, "ingest", "synthetic", "--symbols", "2", "--bars", "300", "--seed", "3",
            "--defects", "broken_ohlc=0.02"))
    return root


# The commands each leave a start and a finished record with one run id of their own.
COMMANDS = [
    ("validate",),
    ("build",),
    ("status",),
    ("status", "--format", "json"),
    ("sql", "select count(*) from raw.bars"),
    ("models",),
    ("quality", "report"),
    ("quality", "quarantine"),
    ("backtest", "sma_cross", "--symbols", "SYN00001", "--param", "fast=5", "--param", "slow=20"),
    ("sweep", "sma_cross", "--symbols", "SYN00001", "--grid", "fast=2:6", "--grid", "slow=10:12"),
    ("report", "latest"),
    ("strategies",),
]


def test_every_command_leaves_json_records_with_its_run_id(wh):
    for command in COMMANDS:
        before = len(records(wh))
        result = cli(wh, *command)
        assert result.exit_code == 0, (command, result.output)
        new = records(wh)[before:]
        runs = by_run(new)
        assert len(runs) == 1, (command, new)  # one run id per command
        (run_id, recs), = runs.items()
        assert len(run_id) == len("20261125T031500Z-1a2b3c")
        assert recs[0]["message"].startswith("start: alphatwin ") and recs[0]["status"] == "started"
        assert recs[-1]["message"].startswith("finished: exit 0") and recs[-1]["exit_code"] == 0
        assert all(r["command"] == recs[0]["command"] for r in recs)
        assert " ".join(command[:1]) in recs[0]["command"]
        for r in recs:
            assert {"ts", "level", "logger", "message", "run_id"} <= set(r)


def test_stage_records_carry_stage_and_ingest_id(wh, tmp_path):
    root = tmp_path / "w2"
    _ok(cli(root, "ingest", "synthetic", "--symbols", "2", "--bars", "40"))
    recs = records(root)
    stage = [r for r in recs if r.get("stage") == "ingest" and r["logger"] == "alphatwin.stages"]
    assert len(stage) == 1
    assert stage[0]["ingest_id"].startswith("ing-") and stage[0]["rows_in"] == 80 and stage[0]["status"] == "ok"
    validation = [r for r in recs if r["logger"] == "alphatwin.quality"]
    assert validation and all(r["ingest_id"] == stage[0]["ingest_id"] for r in validation)


def test_failed_ingest_leaves_an_error_record_with_its_text(tmp_path):
    root = tmp_path / "wh"
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,1,2,0.5,1.5,1.5,100\n2024-01-03,abc\n")
    result = cli(root, "ingest", "csv", str(bad), "--symbol", "BAD")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")  # stderr: the one red line only
    text = lines[0][len("Error: "):]
    errors = [r for r in records(root) if r["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["error_type"] == "InputError" and errors[0]["status"] == "failed"
    assert errors[0]["message"] == f"InputError: {text}"
    last = records(root)[-1]
    assert last["exit_code"] == 1 and last["status"] == "failed"


def test_quiet_keeps_stderr_empty_on_success(tmp_path):
    root = tmp_path / "wh"
    for command in (("init",), ("ingest", "synthetic", "--symbols", "2", "--bars", "30"), ("status",),
                    ("sql", "select 1"), ("validate",), ("build",)):
        result = cli(root, "-q", *command)
        assert result.exit_code == 0, result.output
        assert result.stderr == "", (command, result.stderr)
    assert len(by_run(records(root))) == 6  # the JSON log is unchanged by -q


def test_verbose_levels_on_stderr(tmp_path):
    root = tmp_path / "wh"
    quiet = cli(root, "ingest", "synthetic", "--symbols", "1", "--bars", "30")
    assert "ingest: ok" not in quiet.stderr  # default: warnings and errors only
    info = cli(root, "-v", "ingest", "synthetic", "--symbols", "1", "--bars", "30")
    assert "ingest: ok in" in info.stderr and "debug:" not in info.stderr
    assert "start: alphatwin" not in info.stderr  # start/finished records are for the file only
    debug = cli(root, "-vv", "status")
    assert debug.exit_code == 0
    assert all(r["level"] != "debug" for r in records(root))  # no debug call on this path; the level is set:
    assert logging.DEBUG == _file_level_at(2) and logging.INFO == _file_level_at(0)


def _file_level_at(verbosity: int) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        atlog.configure(Path(d), verbosity=verbosity)
        try:
            (fh,) = [h for h in logging.getLogger("alphatwin").handlers if isinstance(h, logging.FileHandler)]
            return fh.level
        finally:
            atlog.detach()


def test_help_and_read_only_commands_never_create_a_warehouse(tmp_path):
    root = tmp_path / "missing"
    for command in (("status",), ("sql", "select 1"), ("report", "latest"), ("quality", "report"),
                    ("status", "--help")):
        result = cli(root, *command)
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output
        assert not root.exists(), command


def test_help_writes_no_log_record(wh):
    before = records(wh)
    assert cli(wh, "status", "--help").exit_code == 0
    assert cli(wh, "ingest", "csv", "-h").exit_code == 0
    assert records(wh) == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_log_file_on_a_full_disk_warns_once_and_the_command_succeeds(tmp_path):
    root = tmp_path / "wh"
    _ok(cli(root, "init"))
    logs = root / "logs"
    for f in logs.glob("*.jsonl"):
        f.unlink()
    import datetime as dt

    (logs / f"alphatwin-{dt.datetime.now(dt.UTC):%Y%m%d}.jsonl").symlink_to("/dev/full")
    result = cli(root, "-v", "ingest", "synthetic", "--symbols", "2", "--bars", "30")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "JSON log" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("warning: cannot write the JSON log") and "No space left on device" in warnings[0]
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert "ingest: ok in" in result.stderr  # stderr logging goes on
    assert "committed" in result.stdout


def test_log_dir_that_cannot_be_created_warns_once(tmp_path):
    root = tmp_path / "wh"
    _ok(cli(root, "init"))
    import shutil

    shutil.rmtree(root / "logs")
    (root / "logs").symlink_to("/dev/full" if os.path.exists("/dev/full") else "/dev/null")
    result = cli(root, "ingest", "synthetic", "--symbols", "2", "--bars", "30")
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith("warning: cannot write the JSON log")]
    assert len(result.stderr.splitlines()) == 1
    quiet = cli(root, "-q", "status")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_redact_replaces_registered_secrets_and_key_parameters():
    atlog.register_secret("s3cr3t-value/+x")
    text = "GET https://api.test/v1?symbol=AAPL&apikey=abc123&token=t0k&x=1 failed; key s3cr3t-value/+x"
    assert atlog.redact(text) == "GET https://api.test/v1?symbol=AAPL&apikey=***&token=***&x=1 failed; key ***"
    assert atlog.redact("url ?api_key=s3cr3t-value%2F%2Bx") == "url ?api_key=***"
    assert atlog.redact("plain s3cr3t-value%2F%2Bx encoded") == "plain *** encoded"
    assert atlog.redact("no secrets here: key=value") == "no secrets here: key=value"


def test_redacting_filter_covers_tracebacks(tmp_path):
    atlog.register_secret("tb-secret-123")
    atlog.configure(tmp_path, verbosity=0)
    try:
        try:
            raise RuntimeError("boom with tb-secret-123")
        except RuntimeError:
            atlog.get_logger("t").error("failed: %s", "tb-secret-123", exc_info=True)
    finally:
        atlog.detach()
    text = "".join(f.read_text() for f in tmp_path.glob("*.jsonl"))
    assert "tb-secret-123" not in text
    doc = json.loads(text.splitlines()[0])
    assert doc["message"] == "failed: ***" and "boom with ***" in doc["exception"]


# ---------------------------------------------------------------------------------------------
# meta.stage_runs


def _stage_rows(root: Path) -> list[dict]:
    out = cli(root, "sql", "select stage, status, rows_in, rows_out, wall_s, peak_rss_mb, rss_start_mb, "
              "stage_peak_rss_mb, context, error from meta.stage_runs order by started", "--format", "json")
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_stage_runs_for_every_stage_kind(wh):
    for command in COMMANDS:  # idempotent; makes the test independent of order
        if command[0] in ("validate", "build", "backtest", "sweep", "report") or command == ("quality", "report"):
            _ok(cli(wh, *command))
    rows = _stage_rows(wh)
    kinds = {r["stage"] for r in rows}
    assert {"ingest", "validate", "build:clean.bars", "build:features.bars", "backtest", "sweep", "report",
            "quality_report"} <= kinds
    ingest = next(r for r in rows if r["stage"] == "ingest")
    quarantined = json.loads(cli(wh, "sql", "select rows_quarantined as n from meta.validation_runs "
                                 "where trigger = 'ingest'", "--format", "json").stdout)[0]["n"]
    assert ingest["rows_in"] == 600 and quarantined > 0
    assert ingest["rows_out"] == 600 - quarantined  # rows in: received; rows out: accepted
    assert json.loads(ingest["context"])["ingest_id"].startswith("ing-")
    validate = next(r for r in rows if r["stage"] == "validate")
    assert validate["rows_in"] == 600 and validate["rows_out"] == 600 - quarantined
    sweep = next(r for r in rows if r["stage"] == "sweep")
    assert sweep["rows_out"] == 5 * 3 and json.loads(sweep["context"])["run"].startswith("sw-")
    backtest = next(r for r in rows if r["stage"] == "backtest")
    assert backtest["rows_in"] == 300 and backtest["rows_out"] > 0
    for r in rows:
        assert r["status"] == "ok" and r["wall_s"] > 0
        assert 0 < r["rss_start_mb"] <= r["stage_peak_rss_mb"] <= r["peak_rss_mb"] + 1


def test_failed_stage_is_recorded_with_its_error(wh):
    result = cli(wh, "backtest", "sma_cross", "--symbols", "NOPE")
    assert result.exit_code == 1
    failed = [r for r in _stage_rows(wh) if r["status"] == "failed"]
    assert failed and failed[-1]["stage"] == "backtest" and "NOPE" in failed[-1]["error"]


def test_stage_peak_memory_is_sampled_during_the_stage():
    import numpy as np

    from alphatwin.lake.stages import rss_mb, stage

    with stage("probe") as run:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched, then freed before the stage ends
        import time

        time.sleep(0.2)
        del block
    assert run.stage_peak_rss_mb - run.rss_start_mb >= 50
    assert rss_mb() < run.stage_peak_rss_mb
