"""``ml_gbm``: the walk-forward gradient-boosting strategy.

The point-in-time proof is the poisoning test: every input row after a cut T (closes and
features) is replaced with garbage, and every signal and target at rows <= T must stay bit for
bit what it was; a deliberately leaky fold list shows that the test catches a leak. Then the
same through truncation, an out-of-sample edge on a series with persistent regimes (and none on
a random walk), a hand-built series traded through the engine, determinism, the one-class and
no-data folds, direction and parameter checks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.backtest.engine import simulate
from alphatwin.backtest.params import Market, SimParams
from alphatwin.errors import InputError
from alphatwin.signals import ml_gbm
from alphatwin.signals.base import get_strategy
from alphatwin.signals.ml_gbm import FEATURES, compute, labels, predict_folds
from alphatwin.signals.walkforward import Fold, walk_forward_folds
from alphatwin.transforms import indicators

#: Small folds so a few hundred bars hold a dozen fits: first fold at 40 + 3 + 2 - 1 = 44.
SMALL = dict(horizon=3, train=80, retrain=15, embargo=2, min_train=40, max_iter=15, max_depth=2)
FIRST = 44
N = 220


def bars(seed: int, n: int, drift: float = 0.0, mean_regime: int = 100) -> tuple[np.ndarray, list[np.ndarray]]:
    """A close and its FEATURES columns from the real feature kernels. The close drifts by
    ``+-drift`` per bar in regimes of geometric length (mean ``mean_regime`` bars) plus 1% noise."""
    rng = np.random.default_rng(seed)
    flips = np.where(rng.random(n) < 1.0 / mean_regime, -1.0, 1.0)
    regime = np.cumprod(flips) * rng.choice([-1.0, 1.0])
    close = 100.0 * np.exp(np.cumsum(drift * regime + rng.normal(0.0, 0.01, n)))
    cols = {"high": close * (1 + rng.uniform(0, 0.01, n)), "low": close * (1 - rng.uniform(0, 0.01, n)),
            "close": close, "volume": rng.uniform(1e5, 1e6, n), "pf": np.ones(n), "vf": np.ones(n)}
    out, _ = indicators.compute(cols, np.array([0, n]))
    return close, [out[c].copy() for c in FEATURES]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit, NaN included."""
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def clean():
    close, feats = bars(11, N)
    return close, feats, compute(close, *feats, **SMALL, direction="both")


# --------------------------------------------------------------------------- poisoning


def poison(close: np.ndarray, feats: list[np.ndarray], t: int, kind: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Inputs with every row after ``t`` replaced by garbage of the given kind."""
    rng = np.random.default_rng(t)
    close, feats = close.copy(), [f.copy() for f in feats]
    k = close.size - t - 1
    junk = np.array([np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, -5.0, 1e-300])
    if kind == "huge":
        close[t + 1:] = 1e300
        new = [rng.choice([1e300, -1e300], k) for _ in feats]
    elif kind == "nan":
        close[t + 1:] = np.nan
        new = [np.full(k, np.nan) for _ in feats]
    elif kind == "random":
        close[t + 1:] = rng.uniform(1.0, 1e6, k)
        new = [rng.normal(0.0, 1e3, k) for _ in feats]
    elif kind == "flip":  # every later move reversed (so are the labels), every feature negated
        close[t + 1:] = close[t] ** 2 / close[t + 1:]
        new = [-f[t + 1:] for f in feats]
    else:  # "mixed": NaN, infinities, extremes, zero and negative prices, element by element
        close[t + 1:] = rng.choice(junk, k)
        new = [rng.choice(junk, k) for _ in feats]
    for f, v in zip(feats, new):
        f[t + 1:] = v
    return close, feats


KINDS = ("huge", "nan", "random", "flip", "mixed")
#: Before the first fold, at it, inside, at the last bar of a fold and the first of the next, late.
CUTS = (FIRST - 1, FIRST, FIRST + 1, FIRST + 14, FIRST + 15, 100, 150, N - 2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("t", CUTS)
def test_poisoning_the_future_changes_nothing_up_to_the_cut(clean, t, kind):
    close, feats, (signal, target) = clean
    bad_close, bad_feats = poison(close, feats, t, kind)
    bad_signal, bad_target = compute(bad_close, *bad_feats, **SMALL, direction="both")
    assert same(bad_signal[:t + 1], signal[:t + 1])
    assert same(bad_target[:t + 1], target[:t + 1])
    if t <= 150:  # the poison does reach the later rows: the comparison above is not vacuous
        assert not same(bad_signal[t + 1:], signal[t + 1:])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 999), cut=st.integers(0, 159), kind=st.sampled_from(KINDS),
       horizon=st.integers(1, 6), embargo=st.integers(0, 3), train=st.sampled_from([0, 30, 50]),
       retrain=st.integers(4, 25))
def test_poisoning_property(seed, cut, kind, horizon, embargo, train, retrain):
    # the same over random series and splits, the embargo 0 (purge only) included
    close, feats = bars(seed, 160)
    kw = dict(horizon=horizon, train=train, retrain=retrain, embargo=embargo, min_train=30, max_iter=10,
              max_depth=2)
    signal, target = compute(close, *feats, **kw, direction="both")
    bad_close, bad_feats = poison(close, feats, cut, kind)
    bad_signal, bad_target = compute(bad_close, *bad_feats, **kw, direction="both")
    assert same(bad_signal[:cut + 1], signal[:cut + 1])
    assert same(bad_target[:cut + 1], target[:cut + 1])


def test_poisoning_catches_a_leaky_split(clean):
    # the same folds with the purge and embargo dropped: each fold trains on rows up to its first
    # test row, whose labels read closes up to 3 bars later. Poisoning right after a fold's first
    # row flips those labels and the fold's first prediction moves: the test above would fail
    close, feats, _ = clean
    kw = {k: SMALL[k] for k in ("horizon", "train", "retrain", "embargo", "min_train")}
    folds = walk_forward_folds(N, **kw)
    leaky = [Fold(f.train_start, f.test_start + 1, f.test_start, f.test_end) for f in folds]
    fit = dict(max_iter=SMALL["max_iter"], max_depth=SMALL["max_depth"])

    def run(c, fs, fold_list):  # what compute does, with the folds given
        x = np.column_stack(fs)
        x[~np.isfinite(x)] = np.nan
        return predict_folds(x, labels(c, SMALL["horizon"]), fold_list, **fit)

    t = folds[4].test_start
    bad_close, bad_feats = poison(close, feats, t, "flip")
    assert same(run(bad_close, bad_feats, folds)[:t + 1], run(close, feats, folds)[:t + 1])
    assert not same(run(bad_close, bad_feats, leaky)[:t + 1], run(close, feats, leaky)[:t + 1])


# --------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("t", CUTS)
def test_truncation_gives_the_same_rows(clean, t):
    close, feats, (signal, target) = clean
    short_signal, short_target = compute(close[:t + 1], *[f[:t + 1] for f in feats], **SMALL, direction="both")
    assert same(short_signal, signal[:t + 1])
    assert same(short_target, target[:t + 1])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 160), cut=st.floats(0, 1),
       direction=st.sampled_from(["long", "short", "both"]), train=st.sampled_from([0, 40, 60]))
@example(seed=0, n=0, cut=0.0, direction="both", train=0)
@example(seed=1, n=FIRST + 1, cut=1.0, direction="both", train=40)
def test_truncation_property(seed, n, cut, direction, train):
    close, feats = bars(seed % 1000, 160)
    close, feats = close[:n], [f[:n] for f in feats]
    kw = SMALL | {"train": train}
    signal, target = compute(close, *feats, **kw, direction=direction)
    assert signal.shape == target.shape == (n,)
    t = int(cut * n)
    short_signal, short_target = compute(close[:t], *[f[:t] for f in feats], **kw, direction=direction)
    assert same(short_signal, signal[:t])
    assert same(short_target, target[:t])
    assert np.isnan(signal[:FIRST]).all() and (target[:FIRST] == 0).all()
    assert set(np.unique(target)) <= {-1.0, 0.0, 1.0}


def test_the_label_is_basis_free(clean):
    # the close enters only through close[i + h] / close[i]: a constant factor (a later split
    # in the backward-adjusted series) changes nothing; the features are scale-free columns
    close, feats, (signal, target) = clean
    scaled_signal, scaled_target = compute(close * 7.3, *feats, **SMALL, direction="both")
    assert same(scaled_signal, signal) and same(scaled_target, target)


# --------------------------------------------------------------------------- out of sample

EDGE = dict(horizon=5, train=500, retrain=100, embargo=5, min_train=250, max_iter=50, max_depth=2)


def hit_rate(seed: int, drift: float) -> tuple[float, float, float]:
    """Out-of-sample share of bars where P(up) > 0.5 called the label right, the share of the
    majority label over those bars, and the long/short log return of the targets."""
    close, feats = bars(seed, 2000, drift)
    signal, target = compute(close, *feats, **EDGE, direction="both")
    y = labels(close, EDGE["horizon"])
    ok = np.isfinite(signal) & np.isfinite(y)
    assert ok.sum() > 1600
    hits = float(((signal[ok] > 0.5) == (y[ok] == 1)).mean())
    base = float(y[ok].mean())
    return hits, max(base, 1 - base), float(np.sum(target[:-1] * np.diff(np.log(close))))


@pytest.mark.parametrize("seed", range(3))
def test_beats_coin_flips_when_regimes_persist(seed):
    # 0.5% drift per bar in regimes of ~100 bars under 1% noise: z-scores and min-max positions
    # reveal the regime, which persists over the next 5 bars
    hits, majority, pnl = hit_rate(seed, 0.005)
    assert hits > 0.65 and hits > majority + 0.05
    assert pnl > 0


@pytest.mark.parametrize("seed", range(3))
def test_no_edge_on_a_random_walk(seed):
    # nothing to learn: a leak of future labels into the fitted rows' predictions would show here
    hits, _, _ = hit_rate(seed, 0.0)
    assert 0.42 < hits < 0.58


# --------------------------------------------------------------------------- by hand and through the engine


def zigzag() -> tuple[np.ndarray, list[np.ndarray]]:
    """Up 1% a bar for 15 bars, down 1% for 15, five times; the one-bar return is the only
    feature given (the others missing)."""
    steps = np.tile(np.r_[np.full(15, 0.01), np.full(15, -0.01)], 5)
    close = 100.0 * np.exp(np.cumsum(steps))
    ret = np.r_[np.nan, close[1:] / close[:-1] - 1.0]
    return close, [ret] + [np.full(150, np.nan)] * (len(FEATURES) - 1)


ZIG = dict(horizon=2, train=0, retrain=30, embargo=1, min_train=60)


def test_zigzag_by_hand_and_through_the_engine():
    # first fold at 60 + 2 + 1 - 1 = 62. A rising bar is followed by a rise 2 bars on except
    # near the turns (13 of 15 rows), so P(up) is high on rising bars and low on falling ones:
    # long in the up blocks [60, 75), [90, 105), [120, 135); short in the down blocks
    close, feats = zigzag()
    up = [0.0] * 62 + [1.0] * 13 + ([0.0] * 15 + [1.0] * 15) * 2 + [0.0] * 15
    down = [0.0] * 75 + ([-1.0] * 15 + [0.0] * 15) * 2 + [-1.0] * 15
    signal, target = compute(close, *feats, **ZIG, direction="both")
    assert target.tolist() == [u + d for u, d in zip(up, down)]
    assert compute(close, *feats, **ZIG, direction="long")[1].tolist() == up
    assert compute(close, *feats, **ZIG, direction="short")[1].tolist() == down
    assert np.isnan(signal[:62]).all() and np.isfinite(signal[62:]).all()

    trades = simulate(Market.from_close(close), target, SimParams(fill="close")).trades
    assert trades["entry_bar"].tolist() == [62, 75, 90, 105, 120, 135]
    assert trades["exit_bar"].tolist() == [75, 90, 105, 120, 135, -1]  # the last one still open
    assert np.sign(trades["quantity"]).tolist() == [1, -1, 1, -1, 1, -1]
    long_trades = simulate(Market.from_close(close), np.array(up), SimParams(fill="close")).trades
    assert long_trades["entry_bar"].tolist() == [62, 90, 120]
    assert long_trades["exit_bar"].tolist() == [75, 105, 135]


def test_one_class_folds_predict_their_base_rate():
    # a close that only rises: every label is 1, P(up) = 1.0 exactly; one that never moves:
    # every label is 0 (no rise), P(up) = 0.0
    feats = [np.linspace(-1.0, 1.0, 100)] * len(FEATURES)
    rising = 100.0 * 1.01 ** np.arange(100)
    signal, target = compute(rising, *feats, **ZIG, direction="both")
    assert np.isnan(signal[:62]).all() and (signal[62:] == 1.0).all() and (target[62:] == 1.0).all()
    signal, target = compute(np.full(100, 50.0), *feats, **ZIG, direction="both")
    assert (signal[62:] == 0.0).all() and (target[62:] == -1.0).all()


def test_rows_without_features_have_no_signal():
    close, feats = zigzag()
    feats = [f.copy() for f in feats]
    feats[0][100:110] = np.inf  # not finite: missing
    signal, target = compute(close, *feats, **ZIG, direction="both")
    assert np.isnan(signal[100:110]).all() and (target[100:110] == 0).all()
    assert np.isfinite(signal[110:]).all()
    # no feature at all: no usable training row, no signal anywhere
    signal, target = compute(close, *[np.full(150, np.nan)] * len(FEATURES), **ZIG, direction="both")
    assert np.isnan(signal).all() and (target == 0).all()


def test_runs_are_bit_identical(clean):
    close, feats, (signal, target) = clean
    again = compute(close, *feats, **SMALL, direction="both")
    assert same(again[0], signal) and same(again[1], target)
    assert np.isfinite(signal[FIRST:]).all() and np.isnan(signal[:FIRST]).all()
    assert 0 < (target > 0).sum() and 0 < (target < 0).sum()


# --------------------------------------------------------------------------- direction and parameters


@pytest.mark.parametrize("seed", range(3))
def test_direction_is_respected(seed):
    close, feats = bars(seed, N)
    out = {d: compute(close, *feats, **SMALL, direction=d) for d in ("long", "short", "both")}
    assert (out["long"][1] >= 0).all() and (out["long"][1] > 0).any()
    assert (out["short"][1] <= 0).all() and (out["short"][1] < 0).any()
    assert np.array_equal(out["both"][1], out["long"][1] + out["short"][1])
    assert same(out["long"][0], out["both"][0])  # the signal does not depend on the direction
    with pytest.raises(InputError, match="direction"):
        compute(close, *feats, **SMALL, direction="up")


def test_registry_entry():
    strat = get_strategy("ml_gbm")
    assert strat.inputs == ("close", *FEATURES) and strat.family == "ml" and not strat.panel
    assert strat.resolve({}) == {"horizon": 5, "train": 756, "retrain": 63, "embargo": 5, "min_train": 252,
                                 "upper": 0.55, "lower": 0.45, "max_iter": 100, "max_depth": 3}
    # every feature is a default features.bars column, and none is a price level
    assert set(FEATURES) <= set(indicators.column_names())
    levels = ("sma", "ema", "wma", "bb_", "macd", "atr", "vwap", "obv")
    assert not [f for f in FEATURES if f.startswith(levels)]


@pytest.mark.parametrize(("given", "match"), [
    ({"lower": 0.55}, "`lower` must be below `upper`"),
    ({"upper": 0.4}, "`lower` must be below `upper`"),
    ({"upper": 1.5}, "`upper` must be a number in \\[0.0, 1.0\\]"),
    ({"lower": -0.1}, "`lower` must be a number"),
    ({"train": 100}, "`train` must be 0 \\(expanding\\) or at least `min_train`"),
    ({"horizon": 0}, "`horizon` must be an integer"),
    ({"horizon": 5.0}, "`horizon` must be an integer"),
    ({"retrain": 0}, "`retrain` must be an integer"),
    ({"embargo": -1}, "`embargo` must be an integer"),
    ({"min_train": 0}, "`min_train` must be an integer"),
    ({"max_iter": 0}, "`max_iter` must be an integer"),
    ({"max_depth": 0}, "`max_depth` must be an integer"),
    ({"window": 5}, "no parameter 'window'"),
])
def test_invalid_params_are_rejected(given, match):
    with pytest.raises(InputError, match=match):
        get_strategy("ml_gbm").resolve(given)
    if "window" not in given:
        close, feats = zigzag()
        with pytest.raises(InputError, match=match):
            compute(close, *feats, **given)


def test_malformed_columns_are_rejected():
    close, feats = zigzag()
    with pytest.raises(InputError, match="needs `close` and 12 feature columns"):
        compute(close, *feats[:-1])
    with pytest.raises(InputError, match="feature column `log_ret` has shape \\(149,\\)"):
        compute(close, feats[0], feats[1][:-1], *feats[2:])
    with pytest.raises(InputError, match="`close` must be a 1-D array"):
        compute(close[:, None], *feats)
    assert ml_gbm.targets(close, *feats, **ZIG).shape == (150,)


def test_labels_by_hand():
    # horizon 2: 10 -> 12 up; 11 -> 11 flat, not up; 12 -> 9 down; 11 -> NaN unknown; 9 -> 8 down;
    # NaN -> 0 unknown; 8 -> 5 down; 0 -> 6 unknown (not a price); the last 2 unknown
    close = np.array([10.0, 11, 12, 11, 9, np.nan, 8, 0.0, 5, 6])
    nan = np.nan
    assert np.array_equal(labels(close, 2), [1, 0, 0, nan, 0, nan, 0, nan, nan, nan], equal_nan=True)
    assert np.array_equal(labels(close[:2], 2), [nan, nan], equal_nan=True)
