"""Engle-Granger pair selection: statsmodels' ``coint`` on log prices, the hedge ratio, the
spread half-life and the ranking of every pair."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import coint

from alphatwin.errors import InputError
from alphatwin.signals.cointegration import EGResult, engle_granger, half_life, rank_pairs

PHI = 0.8  #: AR(1) coefficient of the simulated spread: half-life -ln 2 / ln 0.8 = 3.11 bars


def cointegrated(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) prices: log x a random walk, log y = 0.3 + 2 log x + a stationary AR(1)."""
    rng = np.random.default_rng(seed)
    lx = np.log(50.0) + np.cumsum(rng.normal(0.0, 0.01, n))
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = PHI * e[t - 1] + rng.normal(0.0, 0.01)
    return np.exp(0.3 + 2.0 * lx + e), np.exp(lx)


def walk(seed: int, n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


@pytest.mark.parametrize("seed", range(8))
def test_finds_a_cointegrated_pair(seed):
    y, x = cointegrated(seed)
    res = engle_granger(y, x)
    assert res.pvalue < 0.01
    assert abs(res.beta - 2.0) < 0.06
    assert 2.0 < res.half_life < 4.5  # the AR(1) says 3.11
    assert res.stat < res.crit["1%"] < res.crit["5%"] < res.crit["10%"]


def test_independent_walks_are_mostly_not_cointegrated():
    # under the null about 5% fall below 0.05; these 40 fixed seeds give 1
    pvalues = np.array([engle_granger(walk(1000 + 2 * s), walk(1001 + 2 * s)).pvalue for s in range(40)])
    assert (pvalues > 0.05).sum() >= 36


@pytest.mark.parametrize(("trend", "maxlag", "autolag"), [
    ("c", None, "aic"), ("ct", None, "bic"), ("ctt", 3, None), ("n", 2, "t-stat"), ("c", 0, None),
])
def test_equals_statsmodels_coint_on_log_prices(trend, maxlag, autolag):
    y, x = cointegrated(3, 300)
    y = y * np.exp(np.random.default_rng(9).normal(0, 0.02, 300))  # less perfectly cointegrated
    res = engle_granger(y, x, trend=trend, maxlag=maxlag, autolag=autolag)
    stat, pvalue, crit = coint(np.log(y), np.log(x), trend=trend, maxlag=maxlag, autolag=autolag)
    assert (res.stat, res.pvalue) == (stat, pvalue)
    np.testing.assert_array_equal(list(res.crit.values()), crit)
    assert list(res.crit) == ["1%", "5%", "10%"]


def test_hedge_ratio_and_half_life_match_lstsq():
    y, x = cointegrated(5)
    ly, lx = np.log(y), np.log(x)
    res = engle_granger(y, x)
    (alpha, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones(lx.size), lx]), ly, rcond=None)
    np.testing.assert_allclose([res.alpha, res.beta], [alpha, beta], rtol=1e-9)
    spread = ly - alpha - beta * lx
    fit = sm.OLS(np.diff(spread), sm.add_constant(spread[:-1])).fit()
    np.testing.assert_allclose(res.half_life, -math.log(2) / math.log(1 + fit.params[1]), rtol=1e-8)
    assert engle_granger(y, x, trend="n").alpha == 0.0


def test_half_life_by_hand():
    np.testing.assert_allclose(half_life(0.5 ** np.arange(20.0)), 1.0, rtol=1e-12)  # b = -0.5
    np.testing.assert_allclose(half_life(3.0 + 0.9 ** np.arange(30.0)), -math.log(2) / math.log(0.9), rtol=1e-9)
    np.testing.assert_allclose(half_life((-0.5) ** np.arange(20.0)), 1.0, rtol=1e-9)  # b = -1.5: |1 + b| = 0.5
    assert half_life(1.1 ** np.arange(20.0)) == math.inf  # b = +0.1: no pull back
    assert half_life((-1.0) ** np.arange(20.0)) == math.inf  # b = -2: a swing that never decays
    with pytest.raises(InputError, match="`spread`"):
        half_life(np.array([1.0, np.nan, 2.0]))


def test_collinear_pair_is_reported_without_a_warning():
    x = walk(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = engle_granger(3.0 * x ** 1.5, x)
    assert (res.stat, res.pvalue) == (-math.inf, 0.0)
    np.testing.assert_allclose(res.beta, 1.5, rtol=1e-12)


def test_rank_pairs_one_row_per_pair_sorted_by_pvalue():
    y, x = cointegrated(0)
    w = walk(77)
    frame = rank_pairs({"X": x, "W": w, "Y": y})
    assert frame.columns == ["y", "x", "n_obs", "stat", "pvalue", "beta", "half_life", "cointegrated"]
    # y is the symbol first in the input order
    assert sorted(frame.select("y", "x").rows()) == [("W", "Y"), ("X", "W"), ("X", "Y")]
    assert frame["pvalue"].is_sorted()
    top = frame.row(0, named=True)
    assert (top["y"], top["x"], top["n_obs"], top["cointegrated"]) == ("X", "Y", 500, True)
    res = engle_granger(x, y)
    assert (top["stat"], top["pvalue"]) == (res.stat, res.pvalue)
    assert (top["beta"], top["half_life"]) == (res.beta, res.half_life)
    assert frame["cointegrated"].to_list() == [p < 0.05 for p in frame["pvalue"]]
    assert rank_pairs({"X": x, "W": w, "Y": y}, pvalue=1e-30)["cointegrated"].sum() == 0


def test_rank_pairs_from_an_array_aligns_on_common_rows():
    y, x = cointegrated(1)
    w = walk(5)
    w[:120] = np.nan  # listed later
    y[[200, 300]] = np.nan  # two missing closes
    frame = rank_pairs(np.column_stack([y, x, w]), ["Y", "X", "W"])
    assert frame.equals(rank_pairs({"Y": y, "X": x, "W": w}))
    n_obs = {(r["y"], r["x"]): r["n_obs"] for r in frame.iter_rows(named=True)}
    assert n_obs == {("Y", "X"): 498, ("Y", "W"): 378, ("X", "W"): 380}
    row = frame.filter((pl.col("y") == "Y") & (pl.col("x") == "W")).row(0, named=True)
    both = ~np.isnan(y) & ~np.isnan(w)
    assert row["pvalue"] == engle_granger(y[both], w[both]).pvalue
    assert rank_pairs(np.column_stack([y, x])).select("y", "x").row(0) == ("S0", "S1")


def test_rank_pairs_leaves_short_overlaps_untested():
    y, x = cointegrated(2, 200)
    w = walk(6, 200)
    w[:150] = np.nan
    frame = rank_pairs({"Y": y, "X": x, "W": w}, min_obs=60)
    assert frame["y"].to_list()[0] == "Y" and frame["x"].to_list()[0] == "X"
    tail = frame.filter(pl.col("x") == "W")
    assert tail["n_obs"].to_list() == [50, 50]
    assert tail["pvalue"].null_count() == 2 and not tail["cointegrated"].any()
    assert frame["pvalue"].to_list()[-2:] == [None, None]  # untested pairs sort last


@pytest.mark.parametrize(("call", "match"), [
    (lambda y, x: engle_granger(y, x[:-1]), "same length"),
    (lambda y, x: engle_granger(y[:20], x[:20]), "at least 30 observations"),
    (lambda y, x: engle_granger(-y, x), "`y` must hold finite prices > 0"),
    (lambda y, x: engle_granger(y, np.where(np.arange(x.size) == 3, np.nan, x)), "`x` must hold finite"),
    (lambda y, x: engle_granger(y, x, trend="linear"), "`trend` must be one of"),
    (lambda y, x: engle_granger(y, x, autolag="hqic"), "`autolag` must be one of"),
    (lambda y, x: engle_granger(y, x, maxlag=-1), "`maxlag` must be None or an integer"),
    (lambda y, x: engle_granger(y[:40], x[:40], maxlag=30), "`maxlag` 30 is too large"),
    (lambda y, x: rank_pairs({"Y": y}), "at least 2 symbols"),
    (lambda y, x: rank_pairs({"Y": y, "X": x[:-1]}), "all of one length"),
    (lambda y, x: rank_pairs(np.column_stack([y, x]), ["Y"]), "`symbols` names 1 symbols for 2 columns"),
    (lambda y, x: rank_pairs(np.column_stack([y, x]), ["Y", "Y"]), "must not repeat"),
    (lambda y, x: rank_pairs({"Y": y, "X": x}, ["Y", "X"]), "a dict names its own columns"),
    (lambda y, x: rank_pairs({"Y": y, "X": np.where(x > 52, 0.0, x)}), "closes of X must be > 0"),
    (lambda y, x: rank_pairs({"Y": y, "X": x}, pvalue=1.5), "`pvalue` must be a number in \\(0, 1\\)"),
    (lambda y, x: rank_pairs({"Y": y, "X": x}, min_obs=10), "`min_obs` must be an integer >= 30"),
    (lambda y, x: rank_pairs(y, ["Y"]), "`closes` must be a \\(bars x symbols\\) array"),
])
def test_invalid_inputs_rejected(call, match):
    y, x = cointegrated(0, 100)
    with pytest.raises(InputError, match=match):
        call(y, x)


def test_result_is_a_plain_record():
    res = engle_granger(*cointegrated(0))
    assert isinstance(res, EGResult)
    assert all(isinstance(v, float) for v in (res.stat, res.pvalue, res.beta, res.alpha, res.half_life))
