"""Walk-forward folds: against a brute-force reading of the definition, exhaustively on small
series and with hypothesis on larger ones; the no-look-ahead invariant and the tiling checked
directly; :func:`check_folds` shown to catch each kind of broken fold list."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.errors import InputError
from alphatwin.signals.walkforward import Fold, check_folds, first_test_row, walk_forward_folds


def reference_folds(n, horizon, train, retrain, embargo, min_train):
    """The definition read literally: for each bar s, the rows i whose label (known at bar
    i + horizon) is known by s - embargo, the last `train` of them; the first fold at the first
    s with min_train such rows, then every `retrain` bars."""
    def rows(s):
        ok = [i for i in range(s) if i + horizon <= s - embargo]
        return ok[-train:] if train > 0 else ok

    starts = [s for s in range(n) if len(rows(s)) >= min_train]
    if not starts:
        return []
    return [(rows(s), s, min(s + retrain, n)) for s in range(starts[0], n, retrain)]


def as_tuples(folds):
    return [(f.train_rows.tolist(), f.test_start, f.test_end) for f in folds]


def assert_leak_free_tiling(folds, n, horizon, train, embargo, min_train):
    """The properties spelled out, independently of check_folds."""
    for f in folds:
        rows = f.train_rows
        assert rows.size >= min_train
        assert train == 0 or rows.size <= train
        assert rows.max() + horizon + embargo <= f.test_start  # label known embargo bars before the fit
        assert np.array_equal(rows, np.arange(rows.min(), rows.max() + 1))
    tested = np.concatenate([f.test_rows for f in folds]) if folds else np.array([], int)
    first = first_test_row(horizon=horizon, embargo=embargo, min_train=min_train)
    assert tested.tolist() == list(range(first, n))  # the tail, each row once, in order


def test_the_docstring_example_by_hand():
    # first fold at 2 + 2 + 1 - 1 = 4: rows 0, 1 (labels at bars 2, 3 <= 4 - 1); at 8: rows
    # <= 8 - 1 - 2 = 5, the last 3 of them (3, 4, 5)
    folds = walk_forward_folds(12, horizon=2, train=3, retrain=4, embargo=1, min_train=2)
    assert folds == [Fold(0, 2, 4, 8), Fold(3, 6, 8, 12)]
    # expanding: every row from 0; the last fold is cut at n
    folds = walk_forward_folds(11, horizon=2, train=0, retrain=4, embargo=1, min_train=2)
    assert folds == [Fold(0, 2, 4, 8), Fold(0, 6, 8, 11)]


def test_no_fold_when_too_short():
    assert walk_forward_folds(4, horizon=2, train=0, retrain=4, embargo=1, min_train=2) == []
    assert walk_forward_folds(5, horizon=2, train=0, retrain=4, embargo=1, min_train=2) == [Fold(0, 2, 4, 5)]
    assert walk_forward_folds(0, horizon=1, train=0, retrain=1, embargo=0, min_train=1) == []


def test_exhaustive_small_cases_match_the_definition():
    checked = 0
    for n, horizon, embargo, retrain, min_train in itertools.product(
            range(0, 19), range(1, 4), range(0, 3), range(1, 5), range(1, 4)):
        for train in (0, min_train, min_train + 2):
            folds = walk_forward_folds(n, horizon=horizon, train=train, retrain=retrain, embargo=embargo,
                                       min_train=min_train)
            assert as_tuples(folds) == reference_folds(n, horizon, train, retrain, embargo, min_train)
            assert_leak_free_tiling(folds, n, horizon, train, embargo, min_train)
            check_folds(folds, n, horizon=horizon, embargo=embargo)
            checked += len(folds)
    assert checked > 10_000


params = dict(n=st.integers(0, 400), horizon=st.integers(1, 30), train=st.integers(0, 150),
              retrain=st.integers(1, 80), embargo=st.integers(0, 20), min_train=st.integers(1, 100),
              cut=st.floats(0, 1))


@settings(max_examples=100, deadline=None)
@given(**params)
@example(n=300, horizon=5, train=100, retrain=21, embargo=5, min_train=100, cut=0.5)
@example(n=1, horizon=1, train=0, retrain=1, embargo=0, min_train=1, cut=1.0)
def test_folds_are_leak_free_and_prefix_stable(n, horizon, train, retrain, embargo, min_train, cut):
    if 0 < train < min_train:
        train = min_train
    kw = dict(horizon=horizon, train=train, retrain=retrain, embargo=embargo, min_train=min_train)
    folds = walk_forward_folds(n, **kw)
    check_folds(folds, n, horizon=horizon, embargo=embargo)
    assert_leak_free_tiling(folds, n, horizon, train, embargo, min_train)
    if n <= 60:
        assert as_tuples(folds) == reference_folds(n, horizon, train, retrain, embargo, min_train)
    # a shorter series has the same folds, the last one cut at its end
    m = int(cut * n)
    cut_folds = [Fold(f.train_start, f.train_stop, f.test_start, min(f.test_end, m))
                 for f in folds if f.test_start < m]
    assert walk_forward_folds(m, **kw) == cut_folds


@pytest.mark.parametrize(("folds", "n", "match"), [
    ([Fold(0, 3, 4, 8)], 8, "training row 2 has its label at bar 4"),  # horizon 2, embargo 1: 2 + 2 + 1 > 4
    ([Fold(0, 2, 4, 8), Fold(0, 4, 7, 10)], 10, "fold 1 starts at 7"),  # overlap
    ([Fold(0, 2, 4, 8), Fold(0, 6, 9, 10)], 10, "fold 1 starts at 9"),  # gap
    ([Fold(0, 2, 4, 8)], 10, "the last fold ends at 8"),
    ([Fold(0, 2, 4, 8)], 7, "test range outside"),
    ([Fold(2, 2, 4, 8)], 8, "empty or negative training range"),
    ([Fold(0, 2, 4, 4)], 4, "test range outside"),
])
def test_check_folds_catches_broken_folds(folds, n, match):
    with pytest.raises(AssertionError, match=match):
        check_folds(folds, n, horizon=2, embargo=1)


def test_check_folds_accepts_the_boundary():
    # the last training label lands exactly `embargo` bars before the fit: allowed
    check_folds([Fold(0, 2, 4, 8)], 8, horizon=2, embargo=1)
    check_folds([], 5, horizon=2, embargo=1)


@pytest.mark.parametrize(("kw", "match"), [
    ({"horizon": 0}, "`horizon` must be an integer >= 1"),
    ({"train": -1}, "`train` must be an integer >= 0"),
    ({"retrain": 0}, "`retrain` must be an integer >= 1"),
    ({"embargo": -1}, "`embargo` must be an integer >= 0"),
    ({"min_train": 0}, "`min_train` must be an integer >= 1"),
    ({"horizon": 2.0}, "`horizon` must be an integer"),
    ({"train": True}, "`train` must be an integer"),
    ({"train": 5, "min_train": 6}, "`train` must be 0 \\(expanding\\) or at least `min_train`"),
])
def test_invalid_arguments_are_rejected(kw, match):
    args = dict(horizon=2, train=0, retrain=3, embargo=1, min_train=2) | kw
    with pytest.raises(InputError, match=match):
        walk_forward_folds(20, **args)
    with pytest.raises(InputError, match="`n` must be an integer >= 0"):
        walk_forward_folds(-1, horizon=2, train=0, retrain=3, embargo=1, min_train=2)
