"""summarize(): every key of the public JSON contract on a tiny hand-computed equity curve."""

from __future__ import annotations

import math
from pathlib import Path

import empyrical as ep
import numpy as np
import pytest

from alphatwin.errors import InputError
from alphatwin.metrics import METRIC_DOCS, METRIC_KEYS, equity_returns, summarize

DOCS = Path(__file__).parents[2] / "docs" / "metrics.md"

CONTRACT = (
    "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar", "max_drawdown",
    "max_drawdown_duration", "n_trades", "n_closed_trades", "win_rate", "profit_factor", "avg_win",
    "avg_loss", "expectancy", "best_trade", "worst_trade", "avg_holding_bars", "exposure",
    "avg_gross_leverage", "turnover", "final_equity", "total_fees", "total_slippage", "total_impact",
    "n_bars", "periods_per_year", "risk_free",
)

# init 100 -> equity below: bar returns [0.5, -0.5, 0, 1, -0.25, 0.25] (the series of test_returns)
EQUITY = np.array([150.0, 75.0, 75.0, 150.0, 112.5, 140.625])
GROSS = np.array([150.0, 75.0, 0.0, 150.0, 112.5, 0.0])  # flat at bars 2 and 5
NOTIONAL = np.array([100.0, 0.0, 75.0, 75.0, 0.0, 112.5])


def run(**overrides):
    kwargs = dict(
        equity=EQUITY, init_cash=100.0,
        trades_pnl=np.array([50.0, -37.5, 40.625]), trades_closed=np.array([True, True, False]),
        trades_holding_bars=np.array([2, 1, 2]), gross_exposure=GROSS, traded_notional=NOTIONAL,
        fees=1.5, slippage=0.25, impact=0.125, periods_per_year=12.0,
    )
    kwargs.update(overrides)
    return summarize(**kwargs)


def test_keys_are_the_public_contract():
    assert METRIC_KEYS == CONTRACT
    assert tuple(METRIC_DOCS) == CONTRACT and all(METRIC_DOCS.values())
    assert tuple(run()) == CONTRACT


def test_every_key_by_hand():
    s = run()
    expected = {
        "total_return": 0.40625,  # 140.625 / 100 - 1
        "cagr": 0.9775390625,  # 1.40625 ** (12 / 6) - 1
        "annual_volatility": math.sqrt(3.5),  # var (ddof=1) 7/24 per month, x 12
        "sharpe": math.sqrt(8 / 7),  # (1/6) / sqrt(7/24) * sqrt(12)
        "sortino": math.sqrt(6.4),  # (1/6 * 12) / sqrt((0.25 + 0.0625) / 6 * 12)
        "calmar": 1.955078125,  # 0.9775390625 / 0.5
        "max_drawdown": -0.5,  # 150 -> 75
        "max_drawdown_duration": 3,  # peak at bar 0 (150), regained at bar 3
        "n_trades": 3,
        "n_closed_trades": 2,
        "win_rate": 0.5,  # 50 wins, -37.5 loses; 40.625 is open
        "profit_factor": 50 / 37.5,
        "avg_win": 50.0,
        "avg_loss": -37.5,
        "expectancy": 6.25,  # (50 - 37.5) / 2
        "best_trade": 50.0,
        "worst_trade": -37.5,
        "avg_holding_bars": 5 / 3,  # (2 + 1 + 2) / 3
        "exposure": 4 / 6,  # gross exposure > 0 at bars 0, 1, 3, 4
        "avg_gross_leverage": 4 / 6,  # gross / equity = [1, 1, 0, 1, 1, 0]
        # sum(notional) = 362.5; mean equity = 703.125 / 6 = 117.1875; years = 6 / 12
        "turnover": 362.5 / 117.1875 / 0.5,
        "final_equity": 140.625,
        "total_fees": 1.5,
        "total_slippage": 0.25,
        "total_impact": 0.125,
        "n_bars": 6,
        "periods_per_year": 12.0,
        "risk_free": 0.0,
    }
    assert tuple(expected) == CONTRACT
    for key, value in expected.items():
        assert s[key] == pytest.approx(value, rel=1e-13), key
        assert type(s[key]) is type(value), key  # ints stay ints (JSON), floats stay floats


def test_risk_free_enters_sharpe_and_sortino_only():
    rf = 1.01 ** 12 - 1  # 1% a month
    s, s0 = run(risk_free=rf), run()
    assert s["risk_free"] == rf
    assert s["sharpe"] == pytest.approx((1 / 6 - 0.01) * math.sqrt(12 * 24 / 7), rel=1e-12)
    assert s["sortino"] == pytest.approx(1.88 / math.sqrt(0.6556), rel=1e-12)
    for key in CONTRACT:
        if key not in ("sharpe", "sortino", "risk_free"):
            assert s[key] == s0[key], key


def test_return_metrics_match_empyrical_on_a_random_curve():
    rng = np.random.default_rng(7)
    equity = 1_000.0 * np.cumprod(1 + rng.normal(0.0005, 0.01, 500))
    flat = np.zeros(500)
    s = run(equity=equity, init_cash=1_000.0, gross_exposure=flat, traded_notional=flat,
            periods_per_year=252.0, risk_free=0.03)
    r = equity / np.concatenate(([1_000.0], equity[:-1])) - 1
    rf_p = 1.03 ** (1 / 252) - 1
    assert np.allclose(equity_returns(equity, 1_000.0), r, rtol=0, atol=1e-15)
    theirs = {
        "total_return": ep.cum_returns_final(r), "cagr": ep.cagr(r, annualization=252),
        "annual_volatility": ep.annual_volatility(r, annualization=252),
        "sharpe": ep.sharpe_ratio(r, risk_free=rf_p, annualization=252),
        "sortino": ep.sortino_ratio(r, required_return=rf_p, annualization=252),
        "calmar": ep.calmar_ratio(r, annualization=252), "max_drawdown": ep.max_drawdown(r),
    }
    for key, value in theirs.items():
        assert s[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert s["total_return"] == pytest.approx(equity[-1] / 1_000.0 - 1, rel=1e-12)
    assert s["exposure"] == 0.0 and s["turnover"] == 0.0


def test_empty_run():
    empty = np.array([])
    s = run(equity=empty, gross_exposure=empty, traded_notional=empty, trades_pnl=empty,
            trades_closed=np.array([], dtype=bool), trades_holding_bars=np.array([], dtype=np.int64))
    assert s["n_bars"] == 0 and s["n_trades"] == 0 and s["max_drawdown_duration"] == 0
    assert s["final_equity"] == 100.0 and s["total_fees"] == 1.5
    undefined = [k for k in CONTRACT if isinstance(s[k], float) and math.isnan(s[k])]
    assert undefined == ["total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar",
                         "max_drawdown", "win_rate", "profit_factor", "avg_win", "avg_loss",
                         "expectancy", "best_trade", "worst_trade", "avg_holding_bars", "exposure",
                         "avg_gross_leverage", "turnover"]


def test_ruin_gives_total_loss_not_an_error():
    """Regression: equity reaching 0 makes later bar returns 0/0 = NaN; they must count as 0."""
    equity = np.array([50.0, 0.0, 0.0])
    s = run(equity=equity, gross_exposure=np.zeros(3), traded_notional=np.zeros(3))
    assert s["total_return"] == -1.0 and s["max_drawdown"] == -1.0 and s["cagr"] == -1.0
    assert s["max_drawdown_duration"] == 3  # from init_cash (before bar 0) to the last bar


@pytest.mark.parametrize(("overrides", "match"), [
    ({"init_cash": 0.0}, "init_cash"),
    ({"equity": np.array([1.0, np.nan, 2.0, 3.0, 4.0, 5.0])}, "equity"),
    ({"gross_exposure": np.zeros(5)}, "gross_exposure"),
    ({"traded_notional": np.zeros(7)}, "traded_notional"),
    ({"periods_per_year": 0.0}, "periods_per_year"),
    ({"risk_free": -1.5}, "risk_free"),
    ({"fees": math.nan}, "fees"),
])
def test_bad_inputs_raise_input_error(overrides, match):
    with pytest.raises(InputError, match=match):
        run(**overrides)


def test_docs_page_describes_every_key():
    text = DOCS.read_text()
    missing = [key for key in CONTRACT if f"`{key}`" not in text]
    assert not missing, f"docs/metrics.md does not describe {missing}"
