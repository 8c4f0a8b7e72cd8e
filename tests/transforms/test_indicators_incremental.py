"""Point in time, bit for bit: truncation never changes a value; an incremental run equals a full one.

Hypothesis draws universes of a few symbols with splits, reverse splits, dividends, flat
stretches and zero-volume bars, and a cut per symbol. ``compute(prefix)`` must equal the prefix
rows of ``compute(all)``, and ``compute(prefix)`` then ``compute(context + suffix, state=...)``
must give the suffix rows (and the final state) of ``compute(all)`` exactly.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alphatwin.transforms.indicators import DEFAULT_SPECS, FeatureSpec, compute, max_lookback, min_history
from tests.transforms._bars import concat, symbol_bars

# The defaults plus short windows, so that small symbols cross every warm-up.
SPECS = DEFAULT_SPECS + (
    FeatureSpec("sma", (3,)), FeatureSpec("ema", (2,)), FeatureSpec("rsi", (2,)), FeatureSpec("macd", (2, 4, 2)),
    FeatureSpec("stoch", (2, 2, 2)), FeatureSpec("atr", (1,)), FeatureSpec("robust", (3,)),
    FeatureSpec("vroc", (1,)), FeatureSpec("vol", (2,)), FeatureSpec("bbands", (3, 1.5)),
)
MIN_HISTORY, MAX_LOOKBACK = min_history(SPECS), max_lookback(SPECS)
EVENTS = {"split": ("split", 2.0), "reverse": ("split", 0.1), "div": ("div", 0.02)}

segment = st.tuples(
    st.integers(0, 160),  # rows
    st.floats(0.0, 1.0),  # where to cut, as a share of the rows
    st.lists(st.tuples(st.integers(1, 159), st.sampled_from(sorted(EVENTS))), max_size=4),
    st.one_of(st.none(), st.tuples(st.integers(0, 159), st.integers(1, 40))),  # a flat stretch
    st.integers(0, 30),  # extra context rows beyond the minimum
)
universe = st.tuples(st.integers(0, 2**32 - 1), st.lists(segment, min_size=1, max_size=4))


def build(case):
    """Symbols, cut per symbol and extra context per symbol of a drawn case."""
    seed, segments = case
    rng = np.random.default_rng(seed)
    symbols, cuts, extra = [], [], []
    for n, share, events, flat, more in segments:
        ev = [(row, *EVENTS[kind]) for row, kind in dict(events).items() if row < n]
        stretch = [] if flat is None else [(flat[0], flat[0] + flat[1])]
        symbols.append(symbol_bars(rng, n, events=ev, flat=stretch, zero_volume=stretch[:1]))
        cuts.append(int(round(share * n)))
        extra.append(more)
    return symbols, cuts, extra


def rows(symbols, lo, hi):
    """The symbols restricted to rows lo[s]..hi[s]-1 each."""
    return concat([{c: v[a:b] for c, v in sym.items()} for sym, a, b in zip(symbols, lo, hi)])


def assert_same(got, want, where):
    for name in want:
        assert np.array_equal(got[name], want[name], equal_nan=True), f"{name} differs {where}"


EXAMPLES = [
    (0, [(0, 0.0, [], None, 0)]),  # an empty symbol
    (1, [(1, 0.0, [], None, 0), (1, 1.0, [], None, 0)]),  # one row, cut before / after it
    (2, [(100, 0.34, [(34, "split")], None, 0)]),  # cut at min_history, a split on the first new row
    (3, [(100, 0.2, [(19, "div"), (20, "reverse")], None, 0)]),  # cut at max_lookback: recomputed
    (4, [(120, 0.5, [(59, "split")], (40, 30), 0), (60, 1.0, [], None, 3)]),  # event before the cut; no new rows
    (5, [(160, 0.75, [(1, "reverse"), (100, "split"), (101, "div")], (0, 40), 30)]),
]


def _property(test):
    """Hypothesis over ``universe`` plus the hand-picked EXAMPLES (edge cuts and events)."""
    for case in EXAMPLES:
        test = example(case)(test)
    return settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])(given(universe)(test))


@_property
def test_truncation_never_changes_a_value(case):
    symbols, cuts, _ = build(case)
    full, starts = concat(symbols)
    out, _ = compute(full, starts, SPECS)
    prefix, pstarts = rows(symbols, [0] * len(cuts), cuts)
    pre, _ = compute(prefix, pstarts, SPECS)
    for s, cut in enumerate(cuts):
        want = {k: v[starts[s]:starts[s] + cut] for k, v in out.items()}
        assert_same({k: v[pstarts[s]:pstarts[s + 1]] for k, v in pre.items()}, want, f"in symbol {s}")


@_property
def test_incremental_run_equals_full_run(case):
    symbols, cuts, extra = build(case)
    full, starts = concat(symbols)
    out, state = compute(full, starts, SPECS)
    prefix, pstarts = rows(symbols, [0] * len(cuts), cuts)
    _, pre_state = compute(prefix, pstarts, SPECS)

    # symbols with enough history continue from the state; the others are recomputed from bar 0
    resume = np.array([cut >= MIN_HISTORY for cut in cuts])
    context = np.array([min(cut, MAX_LOOKBACK + more) if r else 0 for cut, more, r in zip(cuts, extra, resume)])
    first = np.where(resume, np.array(cuts) - context, 0)
    lengths = [sym["close"].size for sym in symbols]
    cont, cstarts = rows(symbols, first, lengths)
    got, got_state = compute(cont, cstarts, SPECS, context=context, seen=first, state=pre_state)

    for s, cut in enumerate(cuts):
        new = cut if resume[s] else 0
        want = {k: v[starts[s] + new:starts[s + 1]] for k, v in out.items()}
        skip = cstarts[s] + (context[s] if resume[s] else 0)
        assert_same({k: v[skip:cstarts[s + 1]] for k, v in got.items()}, want, f"in symbol {s} after row {new}")
    assert np.array_equal(got_state, state)
