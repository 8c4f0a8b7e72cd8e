"""Walk-forward folds with purging and an embargo: which rows a model may learn from when it
predicts a block of later rows, so that no training label reaches into the future it predicts.

This module holds the split only (no model, no strategy); :mod:`alphatwin.signals.ml_gbm` uses it.

The timeline
------------
Rows ``0 .. n-1`` are bars, oldest first. Training row ``i`` pairs the features of bar ``i``
with a label ``y_i`` that depends on the closes of bars ``i .. i + horizon`` (e.g. the sign of
the ``horizon``-bar forward return), so ``y_i`` is **known only at the close of bar
``i + horizon``**.

A fold is fitted at the close of bar ``test_start`` and predicts bars ``test_start ..
test_end - 1`` (the model is frozen across the fold: each of those bars is predicted from its
own features and the model fitted at ``test_start <= t``). Its training rows are

- **purged**: ``i + horizon <= test_start - embargo``: every label is known at the fit, and
- **embargoed**: ``embargo`` more bars before ``test_start`` are left out, so that a label never
  ends right next to the rows it predicts (serially correlated features and labels, a bar of
  fill delay); ``embargo = 0`` keeps the purge alone,
- **windowed**: with ``train > 0``, only the last ``train`` such rows (a rolling window,
  ``i >= test_start - embargo - horizon - train + 1``); ``train = 0`` keeps all of them from row
  0 (an expanding window).

So the training rows are the contiguous range ``[train_start, train_stop)`` with::

    train_stop  = test_start - embargo - horizon + 1
    train_start = max(0, train_stop - train)   if train > 0 else 0

The folds
---------
The first fold starts at the first bar where ``min_train`` rows qualify,
``first = min_train + horizon + embargo - 1`` (so ``train_stop = min_train``); the next ones
every ``retrain`` bars: ``test_start = first + k * retrain`` for ``k = 0, 1, ...`` while
``test_start < n``, and ``test_end = min(test_start + retrain, n)``. The folds tile
``[first, n)`` without a gap or an overlap; bars before ``first`` belong to no fold.

Why it is point in time
-----------------------
A prediction at bar ``t`` in a fold uses the features of bar ``t`` and a model fitted on
features of bars ``< train_stop <= t`` and on closes of bars ``<= train_stop - 1 + horizon =
test_start - embargo <= t``: nothing after ``t``. And the folds themselves depend on ``n`` only
through the last fold's ``test_end``: ``walk_forward_folds(m, ...)`` is
``walk_forward_folds(n, ...)`` cut at ``m`` (the folds starting before ``m``, the last one ending
at ``m``), so truncating a series never moves a fold or its training rows.
:func:`check_folds` verifies all of this on a list of folds.

Examples
--------
>>> folds = walk_forward_folds(12, horizon=2, train=3, retrain=4, embargo=1, min_train=2)
>>> [(f.train_start, f.train_stop, f.test_start, f.test_end) for f in folds]
[(0, 2, 4, 8), (3, 6, 8, 12)]
>>> check_folds(folds, 12, horizon=2, embargo=1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alphatwin.errors import InputError

__all__ = ["Fold", "walk_forward_folds", "first_test_row", "check_folds"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: fit on rows ``[train_start, train_stop)`` at the close of bar
    ``test_start``, predict rows ``[test_start, test_end)``."""

    train_start: int
    train_stop: int
    test_start: int
    test_end: int

    @property
    def train_rows(self) -> np.ndarray:
        """The training row indices (contiguous)."""
        return np.arange(self.train_start, self.train_stop)

    @property
    def test_rows(self) -> np.ndarray:
        """The predicted row indices (contiguous)."""
        return np.arange(self.test_start, self.test_end)


def _check_args(n: int, horizon: int, train: int, retrain: int, embargo: int, min_train: int) -> None:
    for name, value, low in (("n", n, 0), ("horizon", horizon, 1), ("train", train, 0),
                             ("retrain", retrain, 1), ("embargo", embargo, 0), ("min_train", min_train, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"`{name}` must be an integer >= {low}, got {value!r}")
    if 0 < train < min_train:
        raise InputError(f"`train` must be 0 (expanding) or at least `min_train`, got train={train} "
                         f"min_train={min_train}")


def first_test_row(*, horizon: int, embargo: int, min_train: int) -> int:
    """The first bar of the first fold: ``min_train + horizon + embargo - 1`` (the first bar at
    which ``min_train`` labels are known ``embargo`` bars ahead)."""
    return min_train + horizon + embargo - 1


def walk_forward_folds(n: int, *, horizon: int, train: int, retrain: int, embargo: int,
                       min_train: int) -> list[Fold]:
    """The purged, embargoed walk-forward folds over ``n`` rows (see the module docstring).

    Parameters
    ----------
    n
        Number of rows (bars), oldest first.
    horizon
        Bars a label looks ahead (>= 1): ``y_i`` is known at bar ``i + horizon``.
    train
        Rolling window of training rows; 0 for an expanding window from row 0.
    retrain
        Bars between two fits (the length of every fold but the last).
    embargo
        Bars left out between the last training label and the fit (>= 0).
    min_train
        Fewest training rows a fold needs; no fold starts earlier (<= ``train`` when ``train > 0``).

    Returns
    -------
    list of Fold
        Oldest first; empty when ``n <= first_test_row(...)``.

    Raises
    ------
    InputError
        An argument out of range; the message names it.
    """
    _check_args(n, horizon, train, retrain, embargo, min_train)
    folds = []
    for test_start in range(first_test_row(horizon=horizon, embargo=embargo, min_train=min_train), n, retrain):
        stop = test_start - embargo - horizon + 1
        start = max(0, stop - train) if train > 0 else 0
        folds.append(Fold(start, stop, test_start, min(test_start + retrain, n)))
    return folds


def check_folds(folds: list[Fold], n: int, *, horizon: int, embargo: int) -> None:
    """Raise AssertionError unless ``folds`` are leak-free and tile the tail of ``[0, n)``.

    Checked for every fold: a non-empty training range inside ``[0, n)``; the last training
    label known ``embargo`` bars before the fit (``train_stop - 1 + horizon + embargo <=
    test_start``); a non-empty test range inside ``[0, n)``. Across folds: each test range starts
    where the previous one ends and the last ends at ``n`` (no overlap, no gap).
    """
    for k, f in enumerate(folds):
        if not 0 <= f.train_start < f.train_stop:
            raise AssertionError(f"fold {k}: empty or negative training range {f}")
        if f.train_stop - 1 + horizon + embargo > f.test_start:
            raise AssertionError(f"fold {k}: training row {f.train_stop - 1} has its label at bar "
                                 f"{f.train_stop - 1 + horizon}, within {embargo} bars of the fit at {f.test_start}")
        if not 0 <= f.test_start < f.test_end <= n:
            raise AssertionError(f"fold {k}: test range outside [0, {n}) or empty: {f}")
        if k and folds[k - 1].test_end != f.test_start:
            raise AssertionError(f"fold {k} starts at {f.test_start}, the previous one ends at {folds[k - 1].test_end}")
    if folds and folds[-1].test_end != n:
        raise AssertionError(f"the last fold ends at {folds[-1].test_end}, not at n={n}")
