"""Indicators: specs and names, hand-computed golden values, the as-of basis, argument checks."""

from __future__ import annotations

import doctest

import numba
import numpy as np
import pytest

from alphatwin.errors import ConfigError, InputError
from alphatwin.transforms import indicators
from alphatwin.transforms.indicators import (
    DEFAULT_SPECS,
    FeatureSpec,
    column_names,
    compute,
    max_lookback,
    min_history,
    specs_from_mapping,
    state_names,
    state_width,
)
from tests.transforms._bars import concat, symbol_bars

DEFAULT_COLUMNS = [
    "ret", "log_ret", "vol_20", "parkinson_20", "obv", "vwap_20", "vroc_14", "sma_20", "ema_20", "wma_20",
    "rsi_14", "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9", "stoch_k_14_3_3", "stoch_d_14_3_3",
    "bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2", "atr_14", "zscore_close_20", "zscore_volume_20",
    "minmax_close_20", "minmax_volume_20", "robust_close_20", "robust_volume_20",
]


def bars(close, *, volume=None, pf=None, vf=None, spread=0.5):
    close = np.asarray(close, float)
    n = close.size
    return {"high": close + spread, "low": close - spread, "close": close,
            "volume": np.asarray(volume if volume is not None else np.full(n, 100.0), float),
            "pf": np.asarray(pf if pf is not None else np.ones(n), float),
            "vf": np.asarray(vf if vf is not None else np.ones(n), float)}


def run(cols, *specs):
    out, _ = compute(cols, np.array([0, cols["close"].size]), list(specs))
    return out


# --------------------------------------------------------------------------- specs and names


def test_default_columns_and_order():
    assert column_names() == DEFAULT_COLUMNS
    assert [s.warmup for s in DEFAULT_SPECS] == [1, 20, 19, 0, 19, 14, 19, 19, 19, 14, 33, 17, 19, 14, 19, 19, 19]
    assert max_lookback() == 20 and min_history() == 34
    assert state_names() == ["obv.obv", "ema_20.ema", "rsi_14.gain", "rsi_14.loss", "macd_12_26_9.fast",
                             "macd_12_26_9.slow", "macd_12_26_9.signal", "atr_14.atr"]
    assert state_width() == 8


def test_ret_columns_come_first_whatever_the_spec_order():
    specs = [FeatureSpec("sma", (5,)), FeatureSpec("ret"), FeatureSpec("sma", (5,))]
    assert column_names(specs) == ["ret", "log_ret", "sma_5"]


def test_bbands_names_format_the_deviation():
    assert FeatureSpec("bbands", (20, 2)).columns == ("bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2")
    assert FeatureSpec("bbands", (20, 2.5)).columns[0] == "bb_upper_20_2p5"
    assert FeatureSpec("bbands", (10, 0.25)).columns[2] == "bb_lower_10_0p25"
    assert FeatureSpec("bbands", (20, 2)) == FeatureSpec("bbands", (20, 2.0))


def test_specs_from_mapping_adds_sorted_deduplicated_specs():
    specs = specs_from_mapping({"bbands": [[20, 2.5], [20, 2]], "sma": [200, 50, 20], "macd": [[5, 35, 5]],
                                "obv": True, "zscore": [60]})
    assert specs[: len(DEFAULT_SPECS)] == DEFAULT_SPECS
    assert [(s.kind, s.params) for s in specs[len(DEFAULT_SPECS):]] == [
        ("sma", (50,)), ("sma", (200,)), ("macd", (5, 35, 5)), ("bbands", (20, 2.5)), ("zscore", (60,))]
    assert specs == specs_from_mapping({"zscore": [60], "macd": [[5, 35, 5]], "sma": [50, 200],
                                        "bbands": [[20, 2.5]]})
    assert specs_from_mapping({}) == DEFAULT_SPECS


@pytest.mark.parametrize(("mapping", "message"), [
    ({"smaa": [5]}, "unknown feature kind `smaa`"),
    ({"sma": [0]}, "feature `sma`: `period` must be an integer in [1, 100000], got 0"),
    ({"sma": [2.5]}, "feature `sma`: `period`"),
    ({"sma": [True]}, "feature `sma`: `period`"),
    ({"sma": 20}, "feature `sma` must be a list"),
    ({"rsi": [1]}, "feature `rsi`: `period` must be an integer in [2,"),
    ({"vol": [1]}, "feature `vol`"),
    ({"macd": [[26, 12, 9]]}, "feature `macd`: `fast` must be below `slow`"),
    ({"macd": [[12, 26]]}, "feature `macd` takes [fast, slow, signal]"),
    ({"macd": [12, 26, 9]}, "feature `macd`: each entry must be a list"),
    ({"stoch": [[14, 0, 3]]}, "feature `stoch`: `slowk`"),
    ({"bbands": [[20, -1]]}, "feature `bbands`: `nbdev`"),
    ({"ret": [1]}, "feature `ret` takes no parameters"),
])
def test_specs_from_mapping_rejects_bad_entries(mapping, message):
    with pytest.raises(ConfigError) as err:
        specs_from_mapping(mapping)
    assert message in str(err.value)


def test_lookback_and_warmup_of_parameterized_specs():
    assert (FeatureSpec("macd", (5, 35, 5)).warmup, FeatureSpec("macd", (5, 35, 5)).lookback) == (38, 0)
    assert (FeatureSpec("stoch", (5, 3, 3)).warmup, FeatureSpec("stoch", (5, 3, 3)).lookback) == (8, 8)
    assert (FeatureSpec("vroc", (30,)).warmup, FeatureSpec("atr", (30,)).lookback) == (30, 1)
    assert min_history([FeatureSpec("ema", (5,))]) == 5 and max_lookback([FeatureSpec("ema", (5,))]) == 0


# --------------------------------------------------------------------------- golden values

CLOSE = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0]
NAN = np.nan


def test_golden_sma_ema_wma():
    out = run(bars(CLOSE), FeatureSpec("sma", (3,)), FeatureSpec("ema", (3,)), FeatureSpec("wma", (3,)))
    np.testing.assert_allclose(out["sma_3"], [NAN, NAN, 11, 34 / 3, 12, 38 / 3], rtol=1e-15)
    # k = 2/(3+1) = 0.5, seeded with the SMA at row 2
    np.testing.assert_allclose(out["ema_3"], [NAN, NAN, 11, 11, 12, 13], rtol=1e-15)
    np.testing.assert_allclose(out["wma_3"], [NAN, NAN, 68 / 6, 68 / 6, 73 / 6, 79 / 6], rtol=1e-15)


def test_golden_rsi():
    # diffs +1 +1 -1 +2 +1: first averages over 3 diffs, then Wilder (prev * 2 + x) / 3
    out = run(bars(CLOSE), FeatureSpec("rsi", (3,)))
    np.testing.assert_allclose(out["rsi_3"], [NAN, NAN, NAN, 200 / 3, 250 / 3, 2900 / 33], rtol=1e-14)
    flat = run(bars([5.0] * 6), FeatureSpec("rsi", (3,)))
    assert flat["rsi_3"].tolist()[3:] == [0.0, 0.0, 0.0]  # TA-Lib's answer where gain + loss is 0


def test_golden_atr():
    # high = close + 1, low = close - 1; TR from row 1: 2, 2, 2, 3 (gap up from 11 to 12..14), 2
    out = run(bars(CLOSE, spread=1.0), FeatureSpec("atr", (3,)))
    np.testing.assert_allclose(out["atr_3"], [NAN, NAN, NAN, 2, 7 / 3, 20 / 9], rtol=1e-15)


def test_golden_obv():
    out = run(bars(CLOSE, volume=[100, 200, 300, 400, 500, 600]), FeatureSpec("obv"))
    assert out["obv"].tolist() == [100, 300, 600, 200, 700, 1300]


def test_golden_values_through_a_split():
    # a 2:1 split at row 3: 11 economic = 5.5 as traded, twice the shares
    cols = bars([10.0, 11.0, 12.0, 5.5, 6.5, 7.0], volume=[100, 200, 300, 800, 1000, 1200],
                pf=[1, 1, 1, 0.5, 1, 1], vf=[1, 1, 1, 2, 1, 1])
    out = run(cols, FeatureSpec("sma", (3,)), FeatureSpec("ema", (3,)), FeatureSpec("obv"), FeatureSpec("ret"))
    np.testing.assert_allclose(out["sma_3"], [NAN, NAN, 11, 17 / 3, 6, 19 / 3], rtol=1e-15)
    np.testing.assert_allclose(out["ema_3"], [NAN, NAN, 11, 5.5, 6, 6.5], rtol=1e-15)
    assert out["obv"].tolist() == [100, 300, 600, 400, 1400, 2600]  # 600 * 2 - 800: a down day
    np.testing.assert_allclose(out["ret"], [NAN, 0.1, 1 / 11, 5.5 / 6 - 1, 1 / 5.5, 0.5 / 6.5], rtol=1e-14)


def test_golden_normalized_and_vwap():
    cols = bars([1.0, 2.0, 4.0, 3.0], volume=[0, 10, 30, 0])
    specs = [FeatureSpec(k, (3,)) for k in ("zscore", "minmax", "robust", "vwap")]
    out = run(cols, *specs)
    np.testing.assert_allclose(out["zscore_close_3"][2:], [(4 - 7 / 3) / np.std([1, 2, 4], ddof=1), 0.0], atol=1e-15)
    np.testing.assert_allclose(out["minmax_close_3"][2:], [1.0, 0.5])
    np.testing.assert_allclose(out["robust_close_3"][2:], [(4 - 2) / (3 - 1.5), 0.0])
    np.testing.assert_allclose(out["vwap_3"][2:], [(2 * 10 + 4 * 30) / 40, (2 * 10 + 4 * 30) / 40])
    assert np.isnan(out["minmax_volume_3"][3]) is np.False_ and out["minmax_volume_3"][3] == 0.0


def test_vroc_is_null_on_a_zero_base():
    out = run(bars([1.0] * 5, volume=[0, 100, 200, 50, 0]), FeatureSpec("vroc", (1,)))
    assert np.isnan(out["vroc_1"][:2]).all()
    assert out["vroc_1"][2:].tolist() == [100.0, -75.0, -100.0]


def test_outputs_never_depend_on_later_events():
    cols = bars([10.0, 11.0, 12.0, 12.5, 13.0, 14.0, 7.5])
    before = run(cols, *DEFAULT_SPECS[:10])
    cols["pf"][6], cols["vf"][6] = 0.5, 2.0  # the last row turns out to follow a split
    after = run(cols, *DEFAULT_SPECS[:10])
    for name in before:
        np.testing.assert_array_equal(before[name][:6], after[name][:6], err_msg=name)


def test_module_docstring_example():
    assert doctest.testmod(indicators).failed == 0


# --------------------------------------------------------------------------- argument checks


def test_state_round_trips_and_outputs_are_views_of_one_block():
    cols, starts = concat([symbol_bars(np.random.default_rng(3), 50), symbol_bars(np.random.default_rng(4), 0)])
    out, state = compute(cols, starts)
    assert list(out) == DEFAULT_COLUMNS and all(v.dtype == np.float64 and v.size == 50 for v in out.values())
    assert out["ret"].base is out["obv"].base  # no per-column copies
    assert state.shape == (2, 8) and (state[1] == 0).all()
    assert state[0, 0] == out["obv"][49] and state[0, 1] == out["ema_20"][49] and state[0, 7] == out["atr_14"][49]


@pytest.mark.parametrize(("change", "message"), [
    (lambda c, s: c.pop("vf"), "`cols` has no `vf` column"),
    (lambda c, s: c.update(close=c["close"][:-1]), "`cols['high']` must be a 1-D array of 9 values"),
    (lambda c, s: c["close"].__setitem__(3, np.nan), "`cols['close']` must be finite and > 0; row 3 is nan"),
    (lambda c, s: c["pf"].__setitem__(5, 0.0), "`cols['pf']` must be finite and > 0; row 5"),
    (lambda c, s: c["volume"].__setitem__(2, -1.0), "`cols['volume']` must be finite and >= 0; row 2"),
    (lambda c, s: s.__setitem__(1, 20), "`starts` must rise from 0 to the row count 10"),
])
def test_bad_inputs_are_named(change, message):
    cols, starts = concat([symbol_bars(np.random.default_rng(0), 10)])
    starts = np.array([0, 5, 10])
    change(cols, starts)
    with pytest.raises(InputError) as err:
        compute(cols, starts)
    assert message in str(err.value)


def test_incremental_requests_are_checked():
    cols, starts = concat([symbol_bars(np.random.default_rng(0), 60)])
    _, state = compute(cols, starts)
    with pytest.raises(InputError, match=r"`seen\[0\]` > 0 needs the `state`"):
        compute(cols, starts, seen=np.array([40]))
    with pytest.raises(InputError, match="below min_history = 34"):
        compute(cols, starts, context=np.array([20]), seen=np.array([10]), state=state)
    with pytest.raises(InputError, match=r"`context\[0\]` = 5 is below max_lookback = 20"):
        compute(cols, starts, context=np.array([5]), seen=np.array([40]), state=state)
    with pytest.raises(InputError, match="exceeds the segment's 60 rows"):
        compute(cols, starts, context=np.array([61]), state=state)
    with pytest.raises(InputError, match=r"`state` must be a finite \(1, 8\) array"):
        compute(cols, starts, context=np.array([20]), seen=np.array([40]), state=state[:, :3])
    with pytest.raises(ConfigError, match="`specs` is empty"):
        compute(cols, starts, [])


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(9)
    lengths = (3_000, 40, 0, 700, 5, 1_500)
    cols, starts = concat([symbol_bars(rng, n, events=[(n // 2, "split", 2.0)] if n else []) for n in lengths])
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, one_state = compute(cols, starts)
    finally:
        numba.set_num_threads(threads)
    many, many_state = compute(cols, starts)
    assert all(np.array_equal(one[k], many[k], equal_nan=True) for k in one) and np.array_equal(one_state, many_state)
