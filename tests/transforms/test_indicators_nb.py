"""The window primitives of the indicator kernels (epochs, window sums, sorted windows) against references."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatwin.transforms import indicators_nb as nb
from alphatwin.transforms.indicators import FeatureSpec


def test_epoch_series_layout_by_hand():
    x = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    pf = np.array([1.0, 1.0, 0.5, 1.0, 0.5])
    ev = nb._epochs(pf, np.ones(5), 0, 5)
    assert ev.tolist() == [0, 2, 4, 5]
    y = nb._epoch_series(x, 0, pf, ev, 2)
    # [pad pad | 10 11 | 10*.5 11*.5 | 12 13 | 12*.5 13*.5 | 14]
    assert y[2:].tolist() == [10, 11, 5, 5.5, 12, 13, 6, 6.5, 14]
    # row 3 (epoch 1) sees its window of 3 as [5.5, 12, 13]; span gives the offset
    r1, r2, xo = nb._span(ev, 1, 0, 5, 0, 2)
    assert (r1, r2) == (2, 4) and y[3 - 2 - xo:3 + 1 - xo].tolist() == [5.5, 12, 13]


def test_rescaling_runs_through_consecutive_events():
    pf = np.array([1.0, 1.0, 0.5, 0.1, 1.0])
    ev = nb._epochs(pf, np.ones(5), 0, 5)
    y = nb._epoch_series(np.arange(1.0, 6.0), 0, pf, ev, 3)
    xo = nb._span(ev, 2, 0, 5, 0, 3)[2]  # epoch of rows 3..4
    # row 4's window: row 2 follows the 0.5 event, so only the 0.1 one rescales it
    assert y[4 - 2 - xo:4 + 1 - xo].tolist() == [3.0 * 0.1, 4.0, 5.0]
    assert y[4 - 3 - xo] == (2.0 * 0.5) * 0.1  # one factor after the other, in time order


windows = st.tuples(st.integers(1, 25), st.integers(0, 300), st.integers(0, 2**31))


def reference(x, n, fn):
    return np.array([fn(x[t - n + 1:t + 1]) for t in range(n - 1, x.size)])


def seq_sum(v):
    s = v[0]
    for e in v[1:]:
        s += e
    return s


@settings(max_examples=80, deadline=None)
@given(windows)
@example((1, 0, 0))
@example((20, 300, 1))
def test_vector_windows_equal_their_sequential_definition(case):
    n, extra, seed = case
    rng = np.random.default_rng(seed)
    x = rng.lognormal(4.0, 1.0, n + extra)
    x[::7] = x[0]  # ties
    y = rng.normal(size=x.size)
    t1, t2 = n - 1, x.size
    out = np.full(x.size, np.nan)
    nb._v_sum(x, 0, n, out, 0, t1, t2)
    assert np.array_equal(out[t1:], reference(x, n, seq_sum))
    nb._v_mean(x, 0, n, out, 0, t1, t2)
    assert np.array_equal(out[t1:], reference(x, n, lambda v: v[0] + seq_sum(np.r_[0.0, v[1:] - v[0]]) / n))
    m = out.copy()
    ssd = np.full(x.size, np.nan)
    nb._v_ssd(x, 0, n, m, 0, ssd, 0, t1, t2)
    want = [seq_sum(np.r_[0.0, (x[t - n + 1:t + 1] - m[t]) ** 2]) for t in range(t1, t2)]
    assert np.array_equal(ssd[t1:], want)
    nb._v_wsum(x, 0, n, out, 0, t1, t2)
    assert np.array_equal(out[t1:], reference(x, n, lambda v: seq_sum(np.r_[0.0, np.arange(1.0, n + 1) * v])))
    nb._v_dot(x, y, 0, n, out, 0, t1, t2)
    want = [seq_sum(np.r_[0.0, x[t - n + 1:t + 1] * y[t - n + 1:t + 1]]) for t in range(t1, t2)]
    assert np.array_equal(out[t1:], want)
    for want_max, fn in ((True, np.max), (False, np.min)):
        nb._v_extreme(x, 0, n, out, 0, t1, t2, want_max)
        assert np.array_equal(out[t1:], reference(x, n, fn))


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**31))
@example(1, 0)
def test_slide_equals_a_fresh_sort(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, n + 200).astype(float)  # many ties
    src, dst = np.zeros(n + 2), np.zeros(n + 2)
    src[1:n + 1] = np.sort(x[:n])
    for t in range(n, x.size):
        nb._slide(src, dst, n, x[t - n], x[t])
        assert np.array_equal(dst[1:n + 1], np.sort(x[t - n + 1:t + 1]))
        src, dst = dst, src


def test_quantile_slots_match_numpy():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 5, 20, 21):
        srt = np.r_[0.0, np.sort(rng.normal(size=n)), 0.0]
        for q in (0.25, 0.5, 0.75):
            i, g = nb._quantile_at(n, q)
            assert nb._lerp(srt, i, g) == np.quantile(srt[1:n + 1], q)


def test_the_kernel_writes_every_output_element():
    """The wrapper hands the kernel an uninitialized block: nothing may be left unwritten."""
    from alphatwin.transforms.indicators import DEFAULT_SPECS, _plan, column_names
    from tests.transforms._bars import concat, symbol_bars

    rng = np.random.default_rng(4)
    cols, starts = concat([symbol_bars(rng, n, events=[(n // 2, "split", 2.0)] if n > 1 else [])
                           for n in (0, 1, 19, 34, 300)])
    specs, arr, maxwin = _plan(DEFAULT_SPECS + (FeatureSpec("minmax", (7,)),))
    n = cols["close"].size
    for resumed in (False, True):
        out = np.full((len(column_names(specs)), n), 12345.0)  # a sentinel no feature can produce
        state = np.ones((starts.size - 1, 8))
        first = starts[:-1] + (np.minimum(np.diff(starts), 20) if resumed else 0)
        nb.features_nb(cols["high"], cols["low"], cols["close"], cols["volume"], cols["pf"], cols["vf"], starts,
                       first, np.full(starts.size - 1, resumed), arr["kinds"], arr["ip"], arr["fp"], arr["col"],
                       arr["slot"], maxwin, out, state, 0, starts.size - 1)
        assert not (out == 12345.0).any()
