"""``alphatwin status``: success rates, per-symbol validation, stale data, alerts and ``--check``,
through the real CLI on a real warehouse; only ``shutil.disk_usage`` is faked (a full disk)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatwin.cli.main import app
from alphatwin.lake import catalog
from alphatwin.lake.stages import record_stage, stage
from alphatwin.paths import WarehousePaths

runner = CliRunner()
Usage = namedtuple("Usage", "total used free")
#: Keys of `status --format json` before alerts existed: a contract, never removed.
CONTRACT = {"warehouse", "catalog_bytes", "lake", "disk_free_bytes", "disk_low", "ingests", "quality", "datasets",
            "recent_ingests", "stages", "models", "backtests"}


def _csv(path: Path, last: dt.date, n: int = 10) -> Path:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for i in range(n):
        day = last - dt.timedelta(days=n - 1 - i)
        lines.append(f"{day:%Y-%m-%d},10,11,9,10.5,10.5,1000")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def wh(tmp_path):
    root = tmp_path / "wh"
    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text(f'[warehouse]\npath = "{root}"\n[status]\nstale_days = {{ "1d" = 5 }}\n')
    today = dt.datetime.now(dt.UTC).date()
    for symbol, last in (("FRESH", today - dt.timedelta(days=1)), ("STALE", today - dt.timedelta(days=30))):
        result = runner.invoke(app, ["--config", str(cfg), "ingest", "csv",
                                     str(_csv(tmp_path / f"{symbol}.csv", last)), "--symbol", symbol])
        assert result.exit_code == 0, result.output
    return root, cfg


def status(wh, *args):
    root, cfg = wh
    return runner.invoke(app, ["--config", str(cfg), "status", *args])


def status_json(wh, *args) -> dict:
    result = status(wh, "--format", "json", *args)
    return json.loads(result.stdout)


def _fail_a_build(root: Path) -> None:
    paths = WarehousePaths(root)
    run = None
    with pytest.raises(RuntimeError):
        with stage("build:clean.bars", "alphatwin build") as run:
            raise RuntimeError("Binder Error: column foo not found")
    assert record_stage(paths, run)


def test_healthy_warehouse_has_no_alerts_and_check_exits_0(wh, monkeypatch):
    root, cfg = wh
    cfg.write_text(cfg.read_text().replace('"1d" = 5', '"1d" = 60'))
    info = status_json(wh)
    assert CONTRACT <= set(info)
    assert info["alerts"] == [] and info["healthy"] is True and info["stale"] == []
    assert info["ingests"]["success_rate"] == 1.0
    assert {s["stage"]: (s["runs"], s["ok"], s["success_rate"]) for s in info["stages"]}["ingest"] == (2, 2, 1.0)
    result = status(wh, "--check")
    assert result.exit_code == 0, result.output
    assert "alerts: none" in result.stdout


def test_alerts_for_low_disk_stale_data_and_a_failed_build(wh, monkeypatch):
    root, _ = wh
    _fail_a_build(root)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(100 * 2**30, 99.5 * 2**30, int(0.5 * 2**30)))
    info = status_json(wh)
    kinds = [a["kind"] for a in info["alerts"]]
    assert kinds == ["disk_low", "stale_data", "failed_run"]
    assert info["disk_low"] is True and info["healthy"] is False
    stale = info["stale"]
    assert [(s["symbol"], s["interval"], s["stale_after_days"]) for s in stale] == [("STALE", "1d", 5.0)]
    assert 29 <= stale[0]["days_since_last_bar"] <= 31
    assert {d["symbol"]: d["stale"] for d in info["datasets"]} == {"FRESH": False, "STALE": True}
    failed = info["alerts"][2]
    assert failed["stage"] == "build:clean.bars" and "column foo not found" in failed["message"]
    assert info["builds"] == {"runs": 1, "ok": 0, "failed": 1, "success_rate": 0.0, "failing_models": ["clean.bars"]}
    result = status(wh, "--check")
    assert result.exit_code == 2
    assert "disk_low:" in result.stdout and "stale_data: 1 symbol(s)" in result.stdout and "STALE 1d" in result.stdout


def test_a_later_success_resolves_a_failed_run_and_thresholds_come_from_the_config(wh, monkeypatch):
    root, cfg = wh
    _fail_a_build(root)
    with stage("build:clean.bars") as run:
        pass
    assert record_stage(WarehousePaths(root), run)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(100 * 2**30, 99.5 * 2**30, int(0.5 * 2**30)))
    cfg.write_text(cfg.read_text().replace('"1d" = 5', '"1d" = 0') + "disk_warn_bytes = 0\ndisk_warn_percent = 0.1\n")
    info = status_json(wh)
    assert info["alerts"] == [], info["alerts"]
    assert info["builds"]["success_rate"] == 0.5 and info["builds"]["failing_models"] == []
    assert info["thresholds"]["disk_warn_percent"] == 0.1
    assert status(wh, "--check").exit_code == 0


def test_aborted_ingest_and_failed_verify_alert(wh):
    root, cfg = wh
    cfg.write_text(cfg.read_text().replace('"1d" = 5', '"1d" = 60'))
    paths = WarehousePaths(root)
    with catalog.connect(paths) as con:
        con.execute("INSERT INTO meta.ingest_runs (ingest_id, source, status, started, finished) "
                    "VALUES ('ing-killed', 'csv', 'aborted', now(), now())")
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'audit'"
                       ).fetchall()[0][0]:
            from alphatwin.lake import audit

            audit.record(con, "verify", object="lake", status="failed", detail={"corrupt": 1})
            has_audit = True
        else:  # pragma: no cover - before meta.audit exists
            has_audit = False
    info = status_json(wh)
    kinds = [a["kind"] for a in info["alerts"]]
    assert "aborted_run" in kinds
    assert (("verify_failed" in kinds) == has_audit)
    assert status(wh, "--check").exit_code == 2


def test_validation_pass_rate_per_symbol(tmp_path):
    root = tmp_path / "wh"
    result = runner.invoke(app, ["--warehouse", str(root), "ingest", "synthetic", "--symbols", "3", "--bars", "400",
                                 "--seed", "5", "--defects", "broken_ohlc=0.02"])
    assert result.exit_code == 0, result.output
    info = json.loads(runner.invoke(app, ["--warehouse", str(root), "status", "-f", "json"]).stdout)
    per = info["validation_by_symbol"]
    assert [p["symbol"] for p in per] and all(p["rows"] == 400 for p in per)
    assert sum(p["quarantined"] for p in per) == info["quality"]["quarantined"] > 0
    for p in per:
        assert p["pass_rate"] == pytest.approx((400 - p["quarantined"]) / 400, abs=1e-6)
    assert [p["pass_rate"] for p in per] == sorted(p["pass_rate"] for p in per)  # worst first
    assert info["stale"] == []  # synthetic data never goes stale
    table = runner.invoke(app, ["--warehouse", str(root), "status"])
    assert "worst symbols:" in table.stdout


def test_unreadable_lines_set_aside_are_counted(tmp_path):
    """`ingest csv --bad-lines quarantine` keeps the readable rows; status counts the lines set aside."""
    root = tmp_path / "wh"
    path = _csv(tmp_path / "ABC.csv", dt.date(2024, 3, 1), n=10)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].split(",", 1)[0] + ",not-a-number,1,1,1,1,1"
    path.write_text("\n".join(lines) + "\n")
    base = ["--warehouse", str(root), "ingest", "csv", str(path), "--symbol", "ABC", "--interval", "1d"]
    assert runner.invoke(app, base).exit_code == 1  # the default: the file fails, nothing stored
    assert json.loads(runner.invoke(app, ["--warehouse", str(root), "status", "-f", "json"]).stdout
                      )["quality"] is None  # nothing was validated
    result = runner.invoke(app, [*base, "--bad-lines", "quarantine"])
    assert result.exit_code == 0, result.output
    info = json.loads(runner.invoke(app, ["--warehouse", str(root), "status", "-f", "json"]).stdout)
    assert info["quality"]["rejected_lines"] == 1 and info["quality"]["received"] == 9
    assert "1 unreadable line(s) set aside" in runner.invoke(app, ["--warehouse", str(root), "status"]).stdout


@pytest.mark.parametrize(("body", "needle"), [
    ("[status]\nstale_days = -1\n", "stale_days must be days >= 0"),
    ("[status]\nstale_days = { \"7d\" = 3 }\n", "unknown interval(s) 7d"),
    ("[status]\ndisk_warn_bytes = \"lots\"\n", "disk_warn_bytes must be a number >= 0"),
    ("[status]\nalert_email = \"x\"\n", "unknown key(s) in [status]: alert_email"),
])
def test_bad_status_settings_are_one_line_errors(tmp_path, body, needle):
    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text(body)
    result = runner.invoke(app, ["--config", str(cfg), "--warehouse", str(tmp_path / "wh"), "status"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr


def test_status_on_a_missing_warehouse_is_one_line_and_creates_nothing(tmp_path):
    result = runner.invoke(app, ["--warehouse", str(tmp_path / "none"), "status", "--check"])
    assert result.exit_code == 1 and result.stderr.startswith("Error: no warehouse at")
    assert not (tmp_path / "none").exists()
