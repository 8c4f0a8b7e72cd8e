"""``alphatwin ingest yahoo/auto`` through the CLI with only the network faked: the real
yfinance parsing runs on recorded answers, Stooq's HTTP session answers from fixtures, and the
resilience layer (retries, fail-over, fallback to the lake) is the real one."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import yfinance
from typer.testing import CliRunner

from alphatwin.cli.main import app
from alphatwin.sources import stooq as stooq_module
from alphatwin.sources import yahoo as yahoo_module

FIXTURES = Path(__file__).parents[1] / "sources" / "fixtures"
from tests.sources.fixtures import fakes  # noqa: E402

runner = CliRunner()
RANGE = ["--start", "2020-08-27", "--end", "2020-09-03"]


@pytest.fixture
def wh(tmp_path, monkeypatch):
    monkeypatch.setattr(yfinance.cache, "get_tz_cache", lambda: yfinance.cache._TzCacheDummy())
    monkeypatch.setattr(yfinance.cache, "get_cookie_cache", lambda: yfinance.cache._CookieCacheDummy())
    monkeypatch.setattr(yfinance.data.SingletonMeta, "_instances", {})
    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text("[sources.retry]\nmax_attempts = 3\nbase_delay = 0.001\nmax_delay = 0.002\n")
    return tmp_path / "wh", cfg


def _yahoo(monkeypatch, chart) -> fakes.FakeYahooHTTP:
    http = fakes.FakeYahooHTTP(chart)
    monkeypatch.setattr(yahoo_module, "yahoo_history", functools.partial(yahoo_module.yahoo_history, session=http))
    return http


def _stooq(monkeypatch, *answers) -> list:
    sessions: list = []

    def factory():
        sessions.append(fakes.FakeHTTP(*answers))
        return sessions[-1]

    monkeypatch.setattr(stooq_module.requests, "Session", factory)
    return sessions


def _run(wh, *args):
    root, cfg = wh
    return runner.invoke(app, ["--warehouse", str(root), "--config", str(cfg), *args])


def _sql(wh, query):
    out = _run(wh, "sql", query, "--format", "json")
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_yahoo_ingest_with_recorded_answer(wh, monkeypatch):
    _yahoo(monkeypatch, (200, fakes.recorded("yahoo_chart_aapl_1d_2020-08-27.json")))
    _stooq(monkeypatch)
    result = _run(wh, "ingest", "yahoo", "AAPL", *RANGE)
    assert result.exit_code == 0, result.output
    rows = _sql(wh, "select source, count(*) as n, max(split_ratio) as split from raw.bars group by 1")
    assert rows == [{"source": "yahoo", "n": 5, "split": 4.0}]


def test_yahoo_down_fails_over_to_stooq(wh, monkeypatch):
    http = _yahoo(monkeypatch, (503, "<html>Service Unavailable</html>"))
    _stooq(monkeypatch, (200, fakes.text("stooq_aapl_d_2024-01.csv")))
    result = _run(wh, "ingest", "yahoo", "AAPL", "--start", "2024-01-02", "--end", "2024-01-06")
    assert result.exit_code == 0, result.output
    chart = [u for u, _ in http.calls if "/v8/finance/chart/" in u]
    assert len(chart) >= 2  # yahoo was retried before failing over
    assert _sql(wh, "select distinct source from raw.bars") == [{"source": "stooq"}]
    assert _sql(wh, "select source, status from meta.ingest_runs") == [{"source": "yahoo+stooq", "status": "committed"}]


def test_all_sources_down_falls_back_to_lake_with_staleness_warning(wh, monkeypatch):
    _yahoo(monkeypatch, (200, fakes.recorded("yahoo_chart_aapl_1d_2020-08-27.json")))
    _stooq(monkeypatch)
    assert _run(wh, "ingest", "yahoo", "AAPL", *RANGE).exit_code == 0
    _yahoo(monkeypatch, (429, "Too Many Requests"))
    _stooq(monkeypatch, (503, "down"), (503, "down"), (503, "down"))
    result = _run(wh, "ingest", "yahoo", "AAPL", "--start", "2020-09-03")
    assert result.exit_code == 0, result.output
    assert "serving lake data up to 2020-09-02" in result.stderr
    assert "days stale" in result.stderr
    runs = _sql(wh, "select status from meta.ingest_runs order by started")
    assert runs == [{"status": "committed"}, {"status": "fallback"}]


def test_all_sources_down_and_nothing_held_is_a_one_line_error(wh, monkeypatch):
    _yahoo(monkeypatch, requests_timeout())
    _stooq(monkeypatch, (503, "down"), (503, "down"), (503, "down"))
    result = _run(wh, "ingest", "yahoo", "MSFT", "--start", "2024-01-02", "--end", "2024-01-06")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "MSFT" in last and "yahoo" in last and "stooq" in last
    assert "Traceback" not in result.output
    assert _sql(wh, "select count(*) as n from raw.bars") == [{"n": 0}]


def requests_timeout():
    import requests

    return requests.ConnectTimeout("connect timed out")
