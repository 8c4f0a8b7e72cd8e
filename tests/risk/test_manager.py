"""The risk manager (alphatwin.risk.manager): hand-computed golden cases for every sizing and
allocation, the caps, the defaults, the panel rule, NaN rows, risk-parity correctness on the
rebalancing rows, a slow plain-Python reference (hypothesis), point-in-time truncation for every
sizing x allocation pair, and the ``[risk]`` settings check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alphatwin.errors import InputError
from alphatwin.risk.allocation import risk_parity_weights
from alphatwin.risk.manager import (ALLOCATIONS, RISK_KEYS, SIZINGS, RiskParams, apply_caps, apply_risk,
                                    check_risk_settings, hold_on_schedule)

NAN = math.nan


def _close_from_returns(*returns: list[float]) -> np.ndarray:
    """(n, m) closes starting at 100 whose close-to-close returns are ``returns`` (NaN first)."""
    r = np.array(returns, dtype=float).T
    r[0] = 0.0
    return 100.0 * np.cumprod(1.0 + r, axis=0)


def _run(target, close, *, panel=False, ppy=252.0, first=0, **risk):
    return apply_risk(np.asarray(target, dtype=float), np.asarray(close, dtype=float), RiskParams(**risk),
                      panel=panel, periods_per_year=ppy, first=first, strategy="demo")


# ---------------------------------------------------------------------------------------------
# golden cases: the numbers are worked out by hand in the comments


def test_vol_target_golden_held_on_schedule():
    # window 2 and 2 periods a year: realized vol = std(a, b; ddof=1) * sqrt(2) = |a - b|
    close = _close_from_returns([NAN, 0.01, -0.01, 0.03, 0.03, -0.01, 0.02])
    # per-row estimates min(0.8, 0.01 / vol): row 2 0.01/0.02 = 0.5, row 3 0.01/0.04 = 0.25,
    # row 4 vol 0 -> cap 0.8, row 5 0.25, row 6 0.01/0.03; rows 0-1 no full window -> 0.
    # Rebalancing rows 2, 4, 6 (first = 2, every 2): sizes 0, 0, .5, .5, .8, .8, 1/3
    direction = [[1.0], [1.0], [1.0], [-1.0], [NAN], [0.0], [1.0]]  # NaN carries the -1
    w = _run(direction, close, ppy=2.0, first=2, sizing="vol_target", target_vol=0.01, vol_window=2,
             vol_cap=0.8, rebalance=2)
    np.testing.assert_allclose(w[:, 0], [0.0, 0.0, 0.5, -0.5, -0.8, 0.0, 1 / 3], rtol=1e-9, atol=1e-15)


def test_vol_target_formula_against_numpy():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (40, 1)), axis=0))
    w = _run(np.ones((40, 1)), close, ppy=252.0, first=5, sizing="vol_target", target_vol=0.15,
             vol_window=10, vol_cap=3.0, rebalance=7)
    r = close[1:, 0] / close[:-1, 0] - 1.0  # r[i - 1] is the return into row i
    for t in range(5, 40):
        src = 5 + (t - 5) // 7 * 7
        window = r[src - 10:src]  # the 10 returns into rows src-9 .. src
        want = min(3.0, 0.15 / (np.std(window, ddof=1) * math.sqrt(252))) if src >= 10 else 0.0
        assert w[t, 0] == pytest.approx(want, rel=1e-9, abs=1e-15), t


def test_kelly_golden_long_and_short():
    # window 3: row 3 (.01, -.01, .02) mean 1/150, var 7/30000 -> mean/var = 200/7;
    # row 4 (-.01, .02, -.02) mean -1/300, var 13/30000 -> -100/13; row 5 (.02, -.02, .03)
    # mean 1/100, var 7/10000 -> 100/7. Times kelly_fraction 0.01: 2/7, -1/13, 1/7.
    close = _close_from_returns([NAN, 0.01, -0.01, 0.02, -0.02, 0.03])
    kw = dict(sizing="kelly", kelly_window=3, kelly_fraction=0.01, kelly_cap=0.5, rebalance=1)
    long_ = _run(np.ones((6, 1)), close, **kw)[:, 0]
    short = _run(-np.ones((6, 1)), close, **kw)[:, 0]
    np.testing.assert_allclose(long_, [0, 0, 0, 2 / 7, 0, 1 / 7], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(short, [0, 0, 0, 0, -1 / 13, 0], rtol=1e-9, atol=1e-15)
    # a tenth of Kelly: 20/7 and 10/7 are capped at 0.5; -10/13 -> 0.5 short
    capped = _run(np.array([[1.0], [1], [1], [1], [-1], [1]]), close, **{**kw, "kelly_fraction": 0.1})
    np.testing.assert_allclose(capped[:, 0], [0, 0, 0, 0.5, -0.5, 0.5], rtol=1e-12)


def test_fixed_fraction_and_equal_allocation():
    close = np.full((3, 4), 10.0)
    d = np.array([[1.0, -1.0, 0.0, 1.0], [NAN, 1.0, -1.0, 0.0], [0.0, NAN, NAN, -1.0]])
    w = _run(d, close, sizing="fixed", fraction=0.3)
    carried = np.array([[1.0, -1.0, 0.0, 1.0], [1.0, 1.0, -1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])
    np.testing.assert_allclose(w, carried * 0.3 / 4, rtol=1e-15)


def test_inverse_vol_golden():
    # window 2: sd of (a, b) ~ |a - b|. Row 2: A .02, B .04 -> 1/.02 : 1/.04 = 2/3 : 1/3;
    # row 3: A .02, B .08 -> .8 : .2. Rows 0-1: no estimate -> 0.
    close = _close_from_returns([NAN, 0.01, 0.03, 0.01], [NAN, 0.01, -0.03, 0.05])
    w = _run(np.ones((4, 2)), close, allocation="inverse_vol", alloc_window=2, rebalance=1)
    np.testing.assert_allclose(w, [[0, 0], [0, 0], [2 / 3, 1 / 3], [0.8, 0.2]], rtol=1e-9, atol=1e-15)


def test_risk_parity_two_assets_is_inverse_vol():
    # two assets: equal risk contributions <=> w1 sd1 = w2 sd2, whatever the correlation
    rng = np.random.default_rng(11)
    r = rng.normal(0, 0.01, (30, 2)) @ np.array([[1.0, 0.6], [0.0, 1.5]])  # correlated
    close = 100 * np.cumprod(1 + r, axis=0)
    w = _run(np.ones((30, 2)), close, allocation="risk_parity", alloc_window=8, rebalance=5, first=10)
    rets = close[1:] / close[:-1] - 1.0
    for t in range(10, 30):
        src = 10 + (t - 10) // 5 * 5
        sd = np.std(rets[src - 8:src], axis=0, ddof=1)
        np.testing.assert_allclose(w[t], (1 / sd) / (1 / sd).sum(), rtol=1e-8, err_msg=str(t))


def test_risk_parity_uncorrelated_golden():
    # A: (a, -a, a, -a), B: (b, b, -b, -b): both sample means 0 and sum(A * B) = 0, so the
    # window's covariance is diagonal (a^2, b^2) * 4/3 and parity is 1/a : 1/b = 2/3 : 1/3
    close = _close_from_returns([NAN, 0.01, -0.01, 0.01, -0.01], [NAN, 0.02, 0.02, -0.02, -0.02])
    w = _run(np.ones((5, 2)), close, allocation="risk_parity", alloc_window=4, rebalance=3, first=4)
    np.testing.assert_allclose(w[4], [2 / 3, 1 / 3], rtol=1e-8)
    np.testing.assert_array_equal(w[:4], 0.0)


def _check_equal_risk(close, w, window, every, first):
    common = np.flatnonzero(~np.isnan(close).any(axis=1))
    c = close[common]
    r = c[1:] / c[:-1] - 1.0  # r[i - 1]: the return into common row i
    m = close.shape[1]
    own_first = int(np.searchsorted(common, first))
    checked = 0
    for i in range(own_first, common.size, every):
        if i < window:
            continue
        t = common[i]
        cov = np.cov(r[i - window:i], rowvar=False)
        x = w[t]
        rc = x * (cov @ x) / (x @ cov @ x)
        np.testing.assert_allclose(rc, np.full(m, 1 / m), rtol=0, atol=1e-6, err_msg=f"row {t}")
        assert x.sum() == pytest.approx(1.0, abs=1e-12) and (x > 0).all()
        held = common[i:i + every]
        # held until the next rebalancing row (rows where a symbol has no bar are NaN for it)
        sub = w[held[0]:held[-1] + 1]
        ok = ~np.isnan(sub)
        assert (sub[ok] == np.broadcast_to(x, sub.shape)[ok]).all()
        checked += 1
    return checked


@pytest.mark.parametrize("holes", [False, True])
def test_risk_parity_equal_risk_contributions_on_rebalancing_rows(holes):
    rng = np.random.default_rng(5)
    mix = np.array([[1.0, 0.5, -0.2], [0.0, 1.2, 0.4], [0.0, 0.0, 0.7]])
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, (90, 3)) @ mix, axis=0)
    if holes:
        close[rng.random(90) < 0.15, 1] = np.nan  # symbol 1 misses bars: covariances on common rows
    w = _run(np.ones((90, 3)), close, allocation="risk_parity", alloc_window=15, rebalance=7, first=20)
    assert _check_equal_risk(close, w, 15, 7, 20) >= 6
    assert np.isnan(w[np.isnan(close)]).all()


def _singular_close():
    # 3 symbols, window 2: a rank-1 covariance whose eigenvector has mixed signs, so a long-only
    # portfolio of zero variance exists and no equal-risk portfolio does
    return np.array([[50.28760463, 49.81571519, 50.33657247], [50.53679069, 48.94635311, 50.53315275],
                     [53.15823006, 50.61449232, 50.18852913], [53.0, 51.0, 50.0]])


def test_singular_covariance_holds_weights_instead_of_crashing():
    # regression: apply_risk raised numpy's LinAlgError (a traceback for a valid alloc_window=2)
    close = _singular_close()
    w = _run(np.ones((4, 3)), close, allocation="risk_parity", alloc_window=2, rebalance=1)
    np.testing.assert_array_equal(w[:3], 0.0)  # no parity solution yet: weight 0
    assert np.isfinite(w).all()


def test_singular_covariance_risk_parity_weights_raises_input_error():
    # regression: the Newton polish raised numpy's LinAlgError here
    r = _singular_close()[1:3] / _singular_close()[:2] - 1.0
    with pytest.raises(InputError, match="admits no long-only portfolio"):
        risk_parity_weights(np.cov(r, rowvar=False))


def test_risk_parity_schedule_starts_at_first():
    # regression: the risk-parity schedule used to count from its first full window, not from
    # the first bar of the run like sizing and inverse_vol (weights moved on other rows)
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (30, 2)) * [1, 2], axis=0))
    for allocation in ("inverse_vol", "risk_parity"):
        w = _run(np.ones((30, 2)), close, allocation=allocation, alloc_window=4, rebalance=5, first=7)
        changes = np.flatnonzero((np.diff(w[7:], axis=0) != 0).any(axis=1)) + 8
        assert set(changes) <= {12, 17, 22, 27}, allocation
        assert w[7].sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# caps, defaults, panel, NaN rows


def test_caps_golden():
    # [.5, .3, -.4]: clip at .35 -> [.35, .3, -.35]; gross 1.0 -> x .8 -> [.28, .24, -.28];
    # net .24 -> x (.1 / .24) -> [.11666.., .1, -.11666..]
    raw = np.array([[0.5, 0.3, -0.4], [0.1, -0.1, 0.05], [0.0, 0.0, 0.0]])
    risk = RiskParams(max_position=0.35, max_gross=0.8, max_net=0.1)
    want = np.array([[0.28 / 0.24 * 0.1, 0.1, -0.28 / 0.24 * 0.1], [0.1, -0.1, 0.05], [0, 0, 0]])
    np.testing.assert_allclose(apply_caps(raw, risk), want, rtol=1e-12)
    # through apply_risk, a panel strategy's own weights
    np.testing.assert_allclose(_run(raw, np.full((3, 3), 5.0), panel=True, max_position=0.35,
                                    max_gross=0.8, max_net=0.1), want, rtol=1e-12)


def test_caps_order_matters():
    # gross first, then net: [.6, .6] gross 1.2 -> 1.0 -> [.5, .5], net 1.0 -> .4 -> [.2, .2];
    # a short leg: [.9, -.3] no clip, gross 1.2 -> [.75, -.25], net .5 -> .4 -> [.6, -.2]
    raw = np.array([[0.6, 0.6], [0.9, -0.3]])
    got = apply_caps(raw, RiskParams(max_position=0.95, max_gross=1.0, max_net=0.4))
    np.testing.assert_allclose(got, [[0.2, 0.2], [0.6, -0.2]], rtol=1e-12)
    assert (apply_caps(raw, RiskParams()) == raw).all()


@given(st.integers(1, 4), st.integers(1, 30), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_defaults_reproduce_direction_over_n(m, n, seed):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    close[rng.random((n, m)) < 0.2] = np.nan
    d = rng.choice([-1.0, 0.0, 1.0, NAN], (n, m))
    d[np.isnan(close)] = np.nan  # directions live on each symbol's own rows
    got = _run(d, close)
    # what the runner did before the risk manager: the direction / N, NaN = keep the last one
    want = np.full((n, m), np.nan)
    for j in range(m):
        last = 0.0
        for t in range(n):
            if not math.isnan(d[t, j]):
                last = d[t, j]
            if not math.isnan(close[t, j]):
                want[t, j] = last / m
    np.testing.assert_array_equal(got, want)


def test_panel_weights_pass_through_and_fixed_scales_them():
    w = np.array([[0.4, -0.4, 0.2], [NAN, 0.1, -0.3]])
    close = np.full((2, 3), 7.0)
    np.testing.assert_array_equal(_run(w, close, panel=True), [[0.4, -0.4, 0.2], [0.4, 0.1, -0.3]])
    np.testing.assert_allclose(_run(w, close, panel=True, sizing="fixed", fraction=0.5),
                               [[0.2, -0.2, 0.1], [0.2, 0.05, -0.15]], rtol=1e-15)


@pytest.mark.parametrize("risk", [dict(sizing="vol_target"), dict(sizing="kelly"),
                                  dict(allocation="inverse_vol"), dict(allocation="risk_parity")])
def test_panel_strategy_rejects_per_symbol_risk(risk):
    with pytest.raises(InputError, match=r"strategy `demo` sets its own portfolio weights: use `--sizing none`"):
        _run(np.ones((3, 2)), np.full((3, 2), 5.0), panel=True, **risk)


@pytest.mark.parametrize("sizing", SIZINGS)
@pytest.mark.parametrize("allocation", ALLOCATIONS)
def test_nan_close_rows_give_nan_weights(sizing, allocation):
    rng = np.random.default_rng(2)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (40, 3)), axis=0))
    close[[3, 10, 11, 25], 0] = np.nan
    close[[10, 30], 2] = np.nan
    w = _run(np.ones((40, 3)), close, sizing=sizing, allocation=allocation, vol_window=3,
             kelly_window=3, alloc_window=4, rebalance=3)
    assert (np.isnan(w) == np.isnan(close)).all()


# ---------------------------------------------------------------------------------------------
# a slow plain-Python reference of docs' formulas, against apply_risk on random inputs


def _ref_size(close_j, d_j, risk, ppy, first):
    """Per-row size of one symbol, written from the module docstring: estimates from the
    symbol's own rows, refreshed on its own rebalancing rows, carried over rows without a bar."""
    n = close_j.size
    rows = [t for t in range(n) if not math.isnan(close_j[t])]
    if risk.sizing == "none":
        return np.ones(n)
    if risk.sizing == "fixed":
        return np.full(n, risk.fraction)
    est = []  # (long size, short size) per own row
    for i in range(len(rows)):
        window = risk.vol_window if risk.sizing == "vol_target" else risk.kelly_window
        if i < window:
            est.append((0.0, 0.0))
            continue
        rets = np.array([close_j[rows[k]] / close_j[rows[k - 1]] - 1.0 for k in range(i - window + 1, i + 1)])
        sd = float(np.std(rets, ddof=1))
        if risk.sizing == "vol_target":
            s = risk.vol_cap if sd == 0 else min(risk.vol_cap, risk.target_vol / (sd * math.sqrt(ppy)))
            est.append((s, s))
        else:
            mu, var = float(np.mean(rets)), sd * sd
            if var <= 0:
                est.append((0.0, 0.0))
            else:
                k = risk.kelly_fraction * mu / var
                est.append((min(max(k, 0.0), risk.kelly_cap), min(max(-k, 0.0), risk.kelly_cap)))
    own_first = sum(1 for t in rows if t < first)
    out = np.zeros(n)
    last = (0.0, 0.0)
    i = -1
    for t in range(n):
        if not math.isnan(close_j[t]):
            i += 1
            src = i if i < own_first else own_first + (i - own_first) // risk.rebalance * risk.rebalance
            last = est[src]
        out[t] = last[0] if d_j[t] >= 0 else last[1]
    return out


def _ref_alloc(close, risk, first):
    n, m = close.shape
    if risk.allocation == "equal" or m == 1:
        return np.full((n, m), 1.0 / m)
    common = [t for t in range(n) if not np.isnan(close[t]).any()]
    est = []
    for i in range(len(common)):
        w = np.full(m, np.nan)
        if i >= risk.alloc_window:
            rets = np.array([close[common[k]] / close[common[k - 1]] - 1.0
                             for k in range(i - risk.alloc_window + 1, i + 1)])
            if risk.allocation == "inverse_vol":
                sd = np.std(rets, axis=0, ddof=1)
                if (sd > 0).all():
                    w = (1 / sd) / (1 / sd).sum()
            else:
                try:
                    w = risk_parity_weights(np.cov(rets, rowvar=False))
                except InputError:
                    pass
        est.append(w)
    own_first = sum(1 for t in common if t < first)
    out = np.zeros((n, m))
    last = np.zeros(m)
    i = -1
    for t in range(n):
        if t in common:
            i += 1
            if i < own_first:
                src = i
            else:
                src = own_first + (i - own_first) // risk.rebalance * risk.rebalance
            if risk.allocation == "risk_parity" and i < own_first:
                w = np.full(m, np.nan)  # no risk-parity estimate before the run
            else:
                w = est[src]
            if not np.isnan(w).any():  # an estimate that failed holds the previous weights
                last = w
        out[t] = last
    return out


def _reference(target, close, risk, *, ppy, first):
    n, m = close.shape
    d = np.zeros((n, m))
    for j in range(m):
        last = 0.0
        for t in range(n):
            if not math.isnan(target[t, j]):
                last = target[t, j]
            d[t, j] = last
    size = np.column_stack([_ref_size(close[:, j], d[:, j], risk, ppy, first) for j in range(m)]) \
        if m else np.zeros((n, 0))
    w = d * size * _ref_alloc(close, risk, first)
    w = np.clip(w, -risk.max_position, risk.max_position)
    for t in range(n):
        gross = np.abs(w[t]).sum()
        if gross > risk.max_gross:
            w[t] *= risk.max_gross / gross
        net = abs(w[t].sum())
        if net > risk.max_net:
            w[t] *= risk.max_net / net
    w[np.isnan(close)] = np.nan
    return w


@st.composite
def risk_cases(draw, sizing=None, allocation=None, max_n=30):
    n = draw(st.integers(0, max_n))
    m = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, (n, m)) * rng.uniform(0.5, 2, m), axis=0))
    close[rng.random((n, m)) < draw(st.sampled_from([0.0, 0.0, 0.2]))] = np.nan
    if draw(st.booleans()) and n > 3:  # a flat stretch: zero volatility
        close[1:4, 0] = close[0, 0]
    target = rng.choice([-1.0, 0.0, 1.0, NAN], (n, m))
    inf = math.inf
    risk = RiskParams(
        sizing=sizing or draw(st.sampled_from(SIZINGS)),
        allocation=allocation or draw(st.sampled_from(ALLOCATIONS)),
        fraction=draw(st.sampled_from([0.0, 0.5, 1.0])),
        target_vol=draw(st.sampled_from([0.05, 0.2])), vol_window=draw(st.integers(2, 6)),
        vol_cap=draw(st.sampled_from([0.5, 2.0])), kelly_fraction=draw(st.sampled_from([0.0, 0.05, 0.5])),
        kelly_window=draw(st.integers(2, 6)), kelly_cap=draw(st.sampled_from([0.3, 1.0])),
        alloc_window=draw(st.integers(2, 6)), rebalance=draw(st.integers(1, 6)),
        max_position=draw(st.sampled_from([inf, 0.2])), max_gross=draw(st.sampled_from([inf, 0.6])),
        max_net=draw(st.sampled_from([inf, 0.1])),
    )
    first = draw(st.integers(0, n))
    cut = draw(st.integers(0, n))
    return target, close, risk, first, cut


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(risk_cases())
def test_apply_risk_matches_reference(case):
    target, close, risk, first, _ = case
    got = apply_risk(target, close, risk, panel=False, periods_per_year=252.0, first=first)
    want = _reference(target, close, risk, ppy=252.0, first=first)
    assert (np.isnan(got) == np.isnan(want)).all()
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# point in time: row t reads rows <= t only


@pytest.mark.parametrize("sizing", SIZINGS)
@pytest.mark.parametrize("allocation", ALLOCATIONS)
def test_truncation_every_sizing_and_allocation(sizing, allocation):
    """apply_risk(target[:T], close[:T]) == apply_risk(target, close)[:T], **bit for bit**: every
    estimate of row t is a function of rows <= t computed by the same operations on the same
    numbers (two-pass window moments, np.cov of the same window slice, a deterministic optimizer
    from the same starting point), so nothing beyond float determinism is needed."""

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(risk_cases(sizing=sizing, allocation=allocation))
    @example((np.ones((0, 2)), np.ones((0, 2)), RiskParams(sizing=sizing, allocation=allocation), 0, 0))
    def check(case):
        target, close, risk, first, cut = case
        full = apply_risk(target, close, risk, panel=False, periods_per_year=252.0, first=first)
        part = apply_risk(target[:cut], close[:cut], risk, panel=False, periods_per_year=252.0, first=first)
        np.testing.assert_array_equal(part, full[:cut])

    check()


def test_hold_on_schedule_golden():
    v = np.arange(10.0)
    np.testing.assert_array_equal(hold_on_schedule(v, 3, 2), [0, 1, 2, 2, 2, 5, 5, 5, 8, 8])
    np.testing.assert_array_equal(hold_on_schedule(v, 1, 0), v)
    np.testing.assert_array_equal(hold_on_schedule(v, 4, 20), v)


# ---------------------------------------------------------------------------------------------
# the [risk] settings check


def test_check_risk_settings_accepts_every_key():
    check_risk_settings({
        "sizing": "vol_target", "fraction": 0.5, "target_vol": 0.12, "vol_window": 30, "vol_cap": 2,
        "kelly_fraction": 0.25, "kelly_window": 100, "kelly_cap": 1.5, "allocation": "risk_parity",
        "alloc_window": 40, "rebalance": 5, "max_position": 0.3, "max_gross": 1.5, "max_net": 1.0,
        "stop_loss": 0.05, "take_profit": 0.2, "trailing_stop": 0.1, "stop_atr": 3,
        "max_drawdown": 0.2, "drawdown_scale": 0.5, "drawdown_cooldown": 10})
    check_risk_settings({})
    assert set(RISK_KEYS) >= {"stop_atr", "max_drawdown", "drawdown_scale", "drawdown_cooldown"}


def test_check_risk_settings_rejects_unknown_keys():
    with pytest.raises(InputError, match=r"unknown key\(s\) max_dd, sizng; expected sizing"):
        check_risk_settings({"sizng": "fixed", "max_dd": 0.1, "sizing": "fixed"})


@pytest.mark.parametrize("key, value, message", [
    ("sizing", "martingale", "`sizing` must be one of none, fixed, vol_target, kelly"),
    ("sizing", 1, "`sizing` must be a name"),
    ("allocation", "hrp", "`allocation` must be one of equal, inverse_vol, risk_parity"),
    ("fraction", -0.1, "`fraction` must be a number >= 0"),
    ("fraction", "x", "`fraction` must be a number"),
    ("target_vol", 0, "`target_vol` must be a number > 0"),
    ("target_vol", "0.1", "`target_vol` must be a number"),
    ("vol_cap", math.inf, "`vol_cap` must be a number > 0"),
    ("kelly_fraction", math.nan, "`kelly_fraction` must be a number >= 0"),
    ("vol_window", 1, "`vol_window` must be an integer in [2, "),
    ("vol_window", 20.0, "`vol_window` must be an integer in [2, "),  # a float in TOML is not a window
    ("rebalance", 10**20, "`rebalance` must be an integer in [1, "),
    ("kelly_window", 2.5, "`kelly_window` must be an integer in [2, "),
    ("alloc_window", math.nan, "`alloc_window` must be an integer in [2, "),
    ("alloc_window", math.inf, "`alloc_window` must be an integer in [2, "),
    ("rebalance", 0, "`rebalance` must be an integer in [1, "),
    ("rebalance", True, "`rebalance` must be a number"),
    ("max_position", 0, "`max_position` must be a number > 0"),
    ("max_gross", -1, "`max_gross` must be a number > 0"),
    ("max_net", math.nan, "`max_net` must be a number > 0"),
    ("stop_loss", 1.5, "`stop_loss` must be a fraction in"),
    ("stop_loss", "abc", "`stop_loss` must be a number"),
    ("take_profit", 0, "`take_profit` must be a fraction in"),
    ("stop_atr", -2, "`stop_atr` must be a multiple of ATR > 0"),
    ("max_drawdown", 1.0, "`max_drawdown` must be a fraction in"),
    ("drawdown_scale", 1.0, "`drawdown_scale` must be in"),
    ("drawdown_cooldown", 0, "`drawdown_cooldown` must be an integer in [1, "),
    ("drawdown_cooldown", 2.5, "`drawdown_cooldown` must be an integer in [1, "),
    ("drawdown_cooldown", math.nan, "`drawdown_cooldown` must be an integer in [1, "),
    ("max_drawdown", [0.1], "`max_drawdown` must be a number"),
])
def test_check_risk_settings_rejects_bad_values(key, value, message):
    with pytest.raises(InputError) as info:
        check_risk_settings({key: value})
    assert message in str(info.value)
