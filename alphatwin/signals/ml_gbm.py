"""``ml_gbm``: gradient-boosted trees that estimate the probability that the close rises over
the next ``horizon`` bars, refitted walk-forward on purged and embargoed training rows. Long
when that probability is above ``upper``; short below ``lower`` when ``direction`` allows; flat
in between.

The data
--------
Inputs: the backward-adjusted ``close`` and the scale-free ``features.bars`` columns of
:data:`FEATURES` (returns, volatilities, RSI, stochastics, z-scores and min-max / robust
scalings of the close over their windows, the rate of change of the volume). Price-level columns
(SMA, EMA, Bollinger bands, MACD, ATR, VWAP, OBV) are left out: each row is in its own as-traded
basis and jumps at a split. Non-finite feature values are treated as missing (NaN); the trees
handle missing values natively.

The label of row ``i`` is ``y_i = 1`` if ``close[i + horizon] / close[i] - 1 > 0``, else 0: a
ratio of adjusted closes, the same in any price basis; undefined (not trained on) for the last
``horizon`` rows or where a close is missing.

The walk-forward fit
--------------------
The rows are cut by :func:`alphatwin.signals.walkforward.walk_forward_folds`: a fold fitted at
the close of bar ``s`` predicts bars ``s .. s + retrain - 1`` from a model trained on rows ``i``
with ``i + horizon <= s - embargo`` (every label known ``embargo`` bars before the fit), the last
``train`` of them (all of them from row 0 if ``train = 0``). The first fold starts at bar
``min_train + horizon + embargo - 1``, the first bar where ``min_train`` rows qualify.

Each fold trains a fresh ``sklearn.ensemble.HistGradientBoostingClassifier`` (``max_iter``
trees of depth ``max_depth``, learning rate :data:`LEARNING_RATE`, at least
:data:`MIN_SAMPLES_LEAF` rows per leaf, no early stopping, ``random_state=0``, one OpenMP thread)
on its training rows that have a label and at least one finite feature, and on the feature
columns with at least one value among them (a column missing throughout the window, e.g. the
volume features of a series without volume, is left out of that fold). Without any such row the
fold's signal is NaN; with a single class among them its signal is that class's base rate (1.0
or 0.0: every label went the same way), without fitting.

Signal and target
-----------------
``signal[t] = P(up)``, the model's probability that ``y_t = 1``, for each bar ``t`` of a fold;
NaN before the first fold, on bars whose features are all missing and in folds without
training rows. ``target[t] = +1`` if ``signal[t] > upper``, ``-1`` if ``signal[t] < lower`` (with
``direction`` short or both), else 0; 0 wherever the signal is NaN (the warm-up included).

Parameters (defaults): ``horizon`` 5 (bars the label looks ahead), ``train`` 756 (rolling
training window in bars, 0 = expanding), ``retrain`` 63 (bars between refits), ``embargo`` 5
(bars between the last training label and the fit), ``min_train`` 252 (rows needed before the
first fit; at most ``train`` when ``train > 0``), ``upper`` 0.55 and ``lower`` 0.45 (probability
thresholds, ``lower < upper``), ``max_iter`` 100 (boosting iterations), ``max_depth`` 3 (tree
depth). With the defaults, 5,000 bars take about 3 s (76 fits of 756 rows; one thread each,
because OpenMP threads cost more than they save on fits this small).

The folds count from the first row ``compute`` is given: a run that loads more history before
its start date fits its folds at other bars (each fold still leak-free).

Point in time
-------------
``signal[t]`` reads the features of bar ``t`` and a model fitted on features of bars ``<= s -
embargo - horizon`` and closes of bars ``<= s - embargo``, ``s <= t`` the start of ``t``'s fold;
the folds do not move when later bars are added (see :mod:`alphatwin.signals.walkforward`). The
fit is deterministic (fixed seed, no subsampling below 200,000 rows, no early-stopping split), so
rerunning on a longer series reproduces every earlier row bit for bit; the tests poison every
input row after a cut and check exactly that.

Command line::

    alphatwin backtest ml_gbm --symbols AAPL --param horizon=5 --param retrain=63 --direction both

Examples
--------
A close that rises for 15 bars, falls for 15 bars, and so on, with its one-bar return as the
only informative feature (the other columns missing): the model learns that a rising bar is
followed by a rise, and from the first fold on (bar 62) trades with the block it is in.

>>> import numpy as np
>>> steps = np.tile(np.r_[np.full(15, 0.01), np.full(15, -0.01)], 5)
>>> close = 100 * np.exp(np.cumsum(steps))
>>> ret = np.r_[np.nan, close[1:] / close[:-1] - 1]
>>> features = [ret] + [np.full(150, np.nan)] * (len(FEATURES) - 1)
>>> signal, target = compute(close, *features, horizon=2, train=0, retrain=30, embargo=1,
...                          min_train=60, direction="both")
>>> int(np.isnan(signal).sum()), target[58:66].tolist()
(62, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
>>> bool((target[62:] == np.sign(ret[62:])).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from alphatwin.errors import InputError
from alphatwin.signals.base import Param, Strategy, direction_flags, register
from alphatwin.signals.walkforward import Fold, check_folds, walk_forward_folds

__all__ = ["STRATEGY", "FEATURES", "LEARNING_RATE", "MIN_SAMPLES_LEAF", "compute", "targets", "labels",
           "predict_folds"]

#: The scale-free features.bars columns the model reads, in ``inputs`` order after ``close``.
FEATURES: tuple[str, ...] = (
    "ret", "log_ret", "vol_20", "parkinson_20", "vroc_14", "rsi_14", "stoch_k_14_3_3", "stoch_d_14_3_3",
    "zscore_close_20", "zscore_volume_20", "minmax_close_20", "robust_close_20",
)
#: Shrinkage of each tree (a modest rate for ``max_iter`` = 100 shallow trees).
LEARNING_RATE = 0.05
#: Fewest training rows in a leaf (sklearn's default): no leaf fits a handful of bars.
MIN_SAMPLES_LEAF = 20


def labels(close: np.ndarray, horizon: int) -> np.ndarray:
    """``y_i = 1.0`` if ``close[i + horizon] / close[i] - 1 > 0`` else 0.0; NaN for the last
    ``horizon`` rows and where either close is not finite and positive.

    Computed as ``close[i + horizon] > close[i]``: the same for positive finite closes (a
    quotient of two doubles rounds to exactly 1 only when they are equal) and it cannot overflow.
    """
    close = np.asarray(close, dtype=np.float64)
    y = np.full(close.size, np.nan)
    if close.size > horizon:
        now, later = close[:-horizon], close[horizon:]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(now) & np.isfinite(later) & (now > 0) & (later > 0)
            y[:-horizon] = np.where(ok, (later > now).astype(np.float64), np.nan)
    return y


def _fold_probability(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, max_iter: int, max_depth: int
                      ) -> np.ndarray:
    """P(up) for the rows ``x_test`` from a model fitted on the usable rows of ``(x, y)``."""
    usable = np.isfinite(y) & np.isfinite(x).any(axis=1)
    x, y = x[usable], y[usable]
    if y.size == 0:
        return np.full(x_test.shape[0], np.nan)
    if y.min() == y.max():  # one class: its base rate, 1.0 or 0.0
        return np.full(x_test.shape[0], y[0])
    seen = np.isfinite(x).any(axis=0)  # sklearn cannot bin a column without any value
    x, x_test = x[:, seen], x_test[:, seen]
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, max_depth=max_depth, learning_rate=LEARNING_RATE,
        min_samples_leaf=MIN_SAMPLES_LEAF, early_stopping=False, random_state=0)
    model.fit(x, y.astype(np.int64))
    return model.predict_proba(x_test)[:, 1]


def predict_folds(x: np.ndarray, y: np.ndarray, folds: list[Fold], *, max_iter: int, max_depth: int
                  ) -> np.ndarray:
    """P(up) per row: each fold's test rows predicted by a model fitted on its training rows.

    ``x`` is (rows x features) with NaN for missing values, ``y`` the labels (NaN = unknown).
    The folds are taken as given (:func:`compute` checks them first); rows outside every fold and
    rows whose features are all missing are NaN.
    """
    prob = np.full(x.shape[0], np.nan)
    # small fits: OpenMP threads cost more than they save, many times more when the cores are busy
    with threadpool_limits(limits=1, user_api="openmp"):
        for f in folds:
            rows = slice(f.train_start, f.train_stop)
            prob[f.test_start:f.test_end] = _fold_probability(x[rows], y[rows], x[f.test_start:f.test_end],
                                                              max_iter, max_depth)
    prob[~np.isfinite(x).any(axis=1)] = np.nan
    return prob


def _matrix(close: np.ndarray, features: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``close`` as float64 and the features as a (rows x features) matrix, non-finite -> NaN."""
    if len(features) != len(FEATURES):
        raise InputError(f"strategy `ml_gbm` needs `close` and {len(FEATURES)} feature columns "
                         f"({', '.join(FEATURES)}), got {1 + len(features)} columns")
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1:
        raise InputError(f"`close` must be a 1-D array, got shape {close.shape}")
    x = np.empty((close.size, len(FEATURES)))
    for j, (name, col) in enumerate(zip(FEATURES, features)):
        col = np.asarray(col, dtype=np.float64)
        if col.shape != close.shape:
            raise InputError(f"feature column `{name}` has shape {col.shape}, `close` has {close.shape}")
        x[:, j] = col
    x[~np.isfinite(x)] = np.nan
    return close, x


def compute(close: np.ndarray, *features: np.ndarray, horizon: int = 5, train: int = 756, retrain: int = 63,
            embargo: int = 5, min_train: int = 252, upper: float = 0.55, lower: float = 0.45,
            max_iter: int = 100, max_depth: int = 3, direction: str = "long") -> tuple[np.ndarray, np.ndarray]:
    """``(signal, target)``: signal = walk-forward P(up over ``horizon`` bars), target +1 / 0 / -1
    (see the module docstring); NaN signal and target 0 before the first fold.

    ``features`` are the :data:`FEATURES` columns, in that order, each as long as ``close``.
    """
    long_, short = direction_flags(direction)
    p = STRATEGY.resolve({"horizon": horizon, "train": train, "retrain": retrain, "embargo": embargo,
                          "min_train": min_train, "upper": upper, "lower": lower, "max_iter": max_iter,
                          "max_depth": max_depth})
    close, x = _matrix(close, features)
    folds = walk_forward_folds(close.size, horizon=p["horizon"], train=p["train"], retrain=p["retrain"],
                               embargo=p["embargo"], min_train=p["min_train"])
    check_folds(folds, close.size, horizon=p["horizon"], embargo=p["embargo"])
    prob = predict_folds(x, labels(close, p["horizon"]), folds, max_iter=p["max_iter"], max_depth=p["max_depth"])
    target = np.zeros(close.size)
    if long_:
        target[prob > p["upper"]] = 1.0
    if short:
        target[prob < p["lower"]] = -1.0
    return prob, target


def targets(close: np.ndarray, *features: np.ndarray, direction: str = "long", **params: Any) -> np.ndarray:
    """Target per bar: +1 / 0 / -1 (see the module docstring); 0 before the first fold."""
    return compute(close, *features, direction=direction, **params)[1]


def _validate(params: Mapping[str, Any]) -> str | None:
    if not params["lower"] < params["upper"]:
        return f"`lower` must be below `upper`, got lower={params['lower']} upper={params['upper']}"
    if 0 < params["train"] < params["min_train"]:
        return (f"`train` must be 0 (expanding) or at least `min_train`, got train={params['train']} "
                f"min_train={params['min_train']}")
    return None


STRATEGY = register(Strategy(
    name="ml_gbm",
    summary="gradient-boosted P(close up over horizon bars), refitted walk-forward (purged, embargoed): "
            "long above upper (short below lower with direction short/both)",
    params=(Param("horizon", 5, 1, 1_000, "bars the label looks ahead"),
            Param("train", 756, 0, 100_000, "rolling training window (bars); 0 = expanding"),
            Param("retrain", 63, 1, 100_000, "bars between refits"),
            Param("embargo", 5, 0, 10_000, "bars between the last training label and the fit"),
            Param("min_train", 252, 1, 100_000, "training rows needed before the first fit"),
            Param("upper", 0.55, 0.0, 1.0, "P(up) above which to go long"),
            Param("lower", 0.45, 0.0, 1.0, "P(up) below which to go short"),
            Param("max_iter", 100, 1, 10_000, "boosting iterations (trees) per fit"),
            Param("max_depth", 3, 1, 64, "depth of each tree")),
    compute=compute,
    inputs=("close", *FEATURES),
    signal_doc="walk-forward P(close[t + horizon] > close[t]) of a gradient-boosted classifier",
    family="ml",
    validate=_validate,
))
