"""Point-in-time technical indicators over many symbols, matched against TA-Lib.

Rows are sorted by (symbol, ts) in contiguous segments (``starts``, length n_segments + 1). The
inputs are the as-traded ``high, low, close, volume`` of each bar plus the per-row
corporate-action factors ``pf`` (prices) and ``vf`` (volumes) of an event effective at that row:
a price of a row before ``i`` times ``pf[i]`` is comparable with row ``i`` (0.5 for a 2:1 split,
``1 - dividend / prev_close`` for a dividend, 1.0 without an event). ``open`` is not used.

**As-of basis.** A feature at row ``t`` is computed from rows ``<= t`` only, with the history
expressed in row ``t``'s own basis: a past price times the ``pf`` of each later event up to ``t``,
multiplied in time order (volumes likewise with ``vf``). Appending rows or events never changes
an earlier value, bit for bit. Against TA-Lib on the backward-adjusted series (``close[t] *
B(t)``, ``B(t) = prod_{k>t} pf[k]``): level indicators (SMA, EMA, WMA, Bollinger bands, ATR, MACD
lines, VWAP) equal ours times ``B(t)``, OBV ours times the volume factor, scale-free ones
(returns, RSI, STOCH, ROC, z-scores) ours.

**Incremental mode.** ``compute(context + new rows, context=..., seen=..., state=...)`` continues
a symbol from the state an earlier call returned and reproduces a full recomputation bit for bit
(see :func:`compute`).

Relation to TA-Lib 0.8.1 (the ``ta-lib`` wheel's C library), checked by the tests:

* ``vroc_*`` is NaN where the base volume is 0; TA-Lib's ROC answers 0 there.
* RSI is 0 where the average gain + loss is exactly 0 (TA-Lib 0.8.1's test; TA-Lib 0.4 used a
  fixed 1e-8 band). STOCH's fast %K is 0 where ``|HH - LL| <= 1e-14 * (|HH| + |LL|)`` (TA-Lib
  0.8's ``TA_IS_ZERO_SCALED``). Both tests are scale-free, so they hold in the as-of basis too.
* Variances are two-pass around a mean shifted by the window's first value, so a flat window
  has exactly 0 spread. TA-Lib's BBANDS keeps shifted running sums and, when it reseeds, floors
  a variance below 1e-12 of the window's mean square to 0; the two agree to rounding elsewhere.
* EMA, RSI and OBV use TA-Lib's arithmetic and are bit-identical to it on a series without
  events; MACD nearly so. The window indicators agree to about 1e-12 relative: their sums are
  recomputed per row in a fixed order (so that they depend on the window alone), where TA-Lib
  keeps running sums. ATR's step is written ``v + (tr - v) / n``, TA-Lib's
  ``(v * (n - 1) + tr) / n`` up to rounding.

>>> import numpy as np
>>> close = np.array([10.0, 11.0, 12.0, 6.5, 7.0])  # a 2:1 split at row 3
>>> cols = {"high": close, "low": close, "close": close, "volume": np.full(5, 100.0),
...         "pf": np.array([1, 1, 1, 0.5, 1.0]), "vf": np.array([1, 1, 1, 2.0, 1])}
>>> out, state = compute(cols, np.array([0, 5]), [FeatureSpec("sma", (3,))])
>>> out["sma_3"].tolist()[2:]  # row 3 sees rows 1-2 halved: (5.5 + 6 + 6.5) / 3
[11.0, 6.0, 6.5]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from alphatwin.errors import ConfigError, InputError
from alphatwin.transforms import indicators_nb as nb

__all__ = [
    "KINDS",
    "FeatureSpec",
    "DEFAULT_SPECS",
    "specs_from_mapping",
    "column_names",
    "state_names",
    "state_width",
    "max_lookback",
    "min_history",
    "compute",
]

#: Feature kinds, in the canonical order :func:`specs_from_mapping` sorts extra specs by.
KINDS: tuple[str, ...] = tuple(nb.KIND_CODES)

# Parameter names per kind (their count is the arity), and the smallest allowed period.
_PARAMS: dict[str, tuple[str, ...]] = {
    "ret": (), "obv": (), "macd": ("fast", "slow", "signal"), "stoch": ("fastk", "slowk", "slowd"),
    "bbands": ("period", "nbdev"),
    **{k: ("period",) for k in ("vol", "parkinson", "vwap", "vroc", "sma", "ema", "wma", "rsi", "atr",
                                "zscore", "minmax", "robust")},
}
# Smallest periods: a spread needs two values; RSI, BBANDS and MACD's EMAs follow TA-Lib's ranges.
_MIN_PERIOD = {"vol": 2, "zscore": 2, "minmax": 2, "robust": 2, "rsi": 2, "bbands": 2, "macd": 2}
_MAX_PERIOD = 100_000
_STATE_SLOTS = {"obv": ("obv",), "ema": ("ema",), "rsi": ("gain", "loss"),
                "macd": ("fast", "slow", "signal"), "atr": ("atr",)}
_REQUIRED = ("high", "low", "close", "volume", "pf", "vf")
_SEGMENT_COST = 64  # rows' worth of fixed work per segment, for balancing the threads
_PAGE_VALUES = 512  # float64 values in a 4 KiB memory page


def _fmt(x: float) -> str:
    """A float as a column-name token: 2.0 -> '2', 2.5 -> '2p5'."""
    return np.format_float_positional(x, trim="-").replace(".", "p")


@dataclass(frozen=True)
class FeatureSpec:
    """One indicator with its parameters, e.g. ``FeatureSpec("macd", (12, 26, 9))``.

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    params
        ``()`` for ``ret`` and ``obv``; ``(fast, slow, signal)`` for ``macd``;
        ``(fastk, slowk, slowd)`` for ``stoch``; ``(period, nbdev)`` for ``bbands`` (``nbdev`` a
        float); ``(period,)`` otherwise. A bare int is taken as ``(period,)``.

    Raises
    ------
    ConfigError
        An unknown kind or a bad parameter (not a positive integer, ``fast >= slow``...).
    """

    kind: str
    params: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _check_params(self.kind, self.params))

    @property
    def columns(self) -> tuple[str, ...]:
        """Output column names, ``<name>_<params>``."""
        k, p = self.kind, self.params
        if k == "ret":
            return ("ret", "log_ret")
        if k == "obv":
            return ("obv",)
        if k == "macd":
            tag = "_".join(map(str, p))
            return (f"macd_{tag}", f"macd_signal_{tag}", f"macd_hist_{tag}")
        if k == "stoch":
            tag = "_".join(map(str, p))
            return (f"stoch_k_{tag}", f"stoch_d_{tag}")
        if k == "bbands":
            tag = f"{p[0]}_{_fmt(p[1])}"
            return (f"bb_upper_{tag}", f"bb_middle_{tag}", f"bb_lower_{tag}")
        if k in ("zscore", "minmax", "robust"):
            return (f"{k}_close_{p[0]}", f"{k}_volume_{p[0]}")
        return (f"{k}_{p[0]}",)

    @property
    def warmup(self) -> int:
        """Global index (position in the symbol's history) of the first non-NaN value."""
        k, p = self.kind, self.params
        if k == "obv":
            return 0
        if k == "ret":
            return 1
        if k == "macd":
            return p[1] + p[2] - 2
        if k == "stoch":
            return p[0] + p[1] + p[2] - 3
        if k in ("vol", "vroc", "rsi", "atr"):
            return p[0]
        return p[0] - 1

    @property
    def lookback(self) -> int:
        """Rows before a row that its windows read (recursive states carry the rest)."""
        if self.kind in ("ema", "macd"):
            return 0
        if self.kind in ("obv", "rsi", "atr"):
            return 1  # the previous close
        return self.warmup

    @property
    def state_slots(self) -> tuple[str, ...]:
        """Names of this spec's slots in the state array (empty for window indicators)."""
        return _STATE_SLOTS.get(self.kind, ())


def _check_params(kind: str, params: Any) -> tuple[Any, ...]:
    if kind not in _PARAMS:
        raise ConfigError(f"unknown feature kind `{kind}`; expected one of {', '.join(KINDS)}")
    names = _PARAMS[kind]
    if isinstance(params, (int, float, np.number)):
        params = (params,)
    if not isinstance(params, (tuple, list)) or len(params) != len(names):
        form = f"[{', '.join(names)}]" if names else "no parameters"
        raise ConfigError(f"feature `{kind}` takes {form}, got {params!r}")
    out: list[Any] = []
    for name, value in zip(names, params):
        if name == "nbdev":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
                raise ConfigError(f"feature `{kind}`: `nbdev` must be a number in (0, 100], got {value!r}")
            out.append(float(value))
            continue
        low = 1 if name == "signal" else _MIN_PERIOD.get(kind, 1)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= _MAX_PERIOD:
            raise ConfigError(f"feature `{kind}`: `{name}` must be an integer in [{low}, {_MAX_PERIOD}], "
                              f"got {value!r}")
        out.append(int(value))
    if kind == "macd" and out[0] >= out[1]:
        raise ConfigError(f"feature `macd`: `fast` must be below `slow`, got {list(params)!r}")
    return tuple(out)


#: The default feature set (ret and log_ret, vol_20, ..., robust_volume_20).
DEFAULT_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("ret"),
    FeatureSpec("vol", (20,)),
    FeatureSpec("parkinson", (20,)),
    FeatureSpec("obv"),
    FeatureSpec("vwap", (20,)),
    FeatureSpec("vroc", (14,)),
    FeatureSpec("sma", (20,)),
    FeatureSpec("ema", (20,)),
    FeatureSpec("wma", (20,)),
    FeatureSpec("rsi", (14,)),
    FeatureSpec("macd", (12, 26, 9)),
    FeatureSpec("stoch", (14, 3, 3)),
    FeatureSpec("bbands", (20, 2.0)),
    FeatureSpec("atr", (14,)),
    FeatureSpec("zscore", (20,)),
    FeatureSpec("minmax", (20,)),
    FeatureSpec("robust", (20,)),
)


def specs_from_mapping(mapping: Mapping[str, Any]) -> tuple[FeatureSpec, ...]:
    """:data:`DEFAULT_SPECS` plus the specs a config mapping asks for, deduplicated.

    Parameters
    ----------
    mapping
        Kind -> list of parameter sets: an int per period for one-parameter kinds, a list per
        set for the others, ``true`` (or ``[]``) for ``ret`` / ``obv`` (always included).
        Example: ``{"sma": [50, 200], "macd": [[5, 35, 5]], "bbands": [[20, 2.5]]}``.

    Returns
    -------
    tuple of FeatureSpec
        The defaults in their order, then the extra specs sorted by kind (in :data:`KINDS`
        order) and parameters: the same answer for any ordering of the mapping.

    Raises
    ------
    ConfigError
        An unknown kind or a bad parameter set; the message names the kind.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"features must be a mapping of kind -> parameter sets, got {type(mapping).__name__}")
    extra: list[FeatureSpec] = []
    for key, value in mapping.items():
        if key not in _PARAMS:
            raise ConfigError(f"unknown feature kind `{key}`; expected one of {', '.join(KINDS)}")
        if not _PARAMS[key]:
            if value is True or value == [] or value is None:
                continue
            raise ConfigError(f"feature `{key}` takes no parameters: write `{key} = true`, got {value!r}")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"feature `{key}` must be a list of parameter sets, got {value!r}")
        for entry in value:
            if len(_PARAMS[key]) > 1 and not isinstance(entry, (list, tuple)):
                raise ConfigError(f"feature `{key}`: each entry must be a list "
                                  f"[{', '.join(_PARAMS[key])}], got {entry!r}")
            extra.append(FeatureSpec(key, entry))
    extra.sort(key=lambda s: (KINDS.index(s.kind), s.params))
    return _dedupe(DEFAULT_SPECS + tuple(extra))


def _dedupe(specs: Sequence[FeatureSpec]) -> tuple[FeatureSpec, ...]:
    return tuple(dict.fromkeys(specs))


def _ordered(specs: Sequence[FeatureSpec]) -> tuple[FeatureSpec, ...]:
    """Deduplicated specs in output order: ``ret`` first, then the others in the given order."""
    for s in specs:
        if not isinstance(s, FeatureSpec):
            raise ConfigError(f"specs must be FeatureSpec objects, got {s!r}")
    specs = _dedupe(specs)
    return tuple(s for s in specs if s.kind == "ret") + tuple(s for s in specs if s.kind != "ret")


def column_names(specs: Sequence[FeatureSpec] = DEFAULT_SPECS) -> list[str]:
    """Output columns of :func:`compute` in order: ``ret, log_ret`` first, then by spec."""
    return [c for s in _ordered(specs) for c in s.columns]


def state_names(specs: Sequence[FeatureSpec] = DEFAULT_SPECS) -> list[str]:
    """Names of the state array's columns, e.g. ``["obv.obv", "ema_20.ema", "rsi_14.gain", ...]``.

    The slots follow the output order of the specs that carry a recursive state:
    ``obv`` (OBV, volume basis), ``ema`` (the EMA), ``rsi`` (Wilder average gain, average loss),
    ``macd`` (fast EMA, slow EMA, signal EMA) and ``atr`` (the ATR), all in the price basis of the
    row they follow.
    """
    return [f"{s.columns[0]}.{slot}" for s in _ordered(specs) for slot in s.state_slots]


def state_width(specs: Sequence[FeatureSpec] = DEFAULT_SPECS) -> int:
    """Number of columns of the state array (see :func:`state_names`)."""
    return len(state_names(specs))


def max_lookback(specs: Sequence[FeatureSpec] = DEFAULT_SPECS) -> int:
    """Rows of context an incremental call must give before the new rows (capped by history)."""
    return max((s.lookback for s in _ordered(specs)), default=0)


def min_history(specs: Sequence[FeatureSpec] = DEFAULT_SPECS) -> int:
    """Fewest rows of history before the new rows for an incremental call (else recompute).

    One more than the largest warm-up: the state after the last history row is then a plain
    value of every recursive indicator, never a partial seed.
    """
    return max((s.warmup for s in _ordered(specs)), default=0) + 1


def _plan(specs: Sequence[FeatureSpec]) -> tuple[tuple[FeatureSpec, ...], dict[str, np.ndarray], int]:
    """The kernel's spec arrays (kinds, int/float params, first column, first state slot)."""
    specs = _ordered(specs)
    if not specs:
        raise ConfigError("`specs` is empty: ask for at least one feature")
    q = len(specs)
    arr = {"kinds": np.empty(q, np.int64), "ip": np.zeros((q, 3), np.int64), "fp": np.zeros(q),
           "col": np.empty(q, np.int64), "slot": np.empty(q, np.int64)}
    col = slot = maxwin = 0
    for i, s in enumerate(specs):
        arr["kinds"][i] = nb.KIND_CODES[s.kind]
        ints = [p for p in s.params if isinstance(p, int)]
        arr["ip"][i, : len(ints)] = ints
        arr["fp"][i] = s.params[1] if s.kind == "bbands" else 0.0
        arr["col"][i], arr["slot"][i] = col, slot
        col += len(s.columns)
        slot += len(s.state_slots)
        maxwin = max([maxwin, *ints])
    return specs, arr, maxwin


def _column(cols: Mapping[str, np.ndarray], name: str, n: int | None) -> np.ndarray:
    if name not in cols:
        raise InputError(f"`cols` has no `{name}` column; it needs {', '.join(_REQUIRED)}")
    x = np.ascontiguousarray(cols[name], dtype=np.float64)
    if x.ndim != 1 or (n is not None and x.size != n):
        raise InputError(f"`cols['{name}']` must be a 1-D array of {n} values, got shape {x.shape}")
    return x


def _check_values(arrays: dict[str, np.ndarray]) -> None:
    """Prices and factors finite and > 0, volumes finite and >= 0 (one thread per column)."""
    strict = [name != "volume" for name in arrays]
    bad = _in_threads(nb.first_invalid_nb, [(x, 0.0, s) for x, s in zip(arrays.values(), strict)])
    for (name, x), s, i in zip(arrays.items(), strict, bad):
        if i >= 0:
            rule = "finite and > 0" if s else "finite and >= 0"
            raise InputError(f"`cols['{name}']` must be {rule}; row {i} is {float(x[i])!r}")


def _per_segment(name: str, value: np.ndarray | None, n_seg: int) -> np.ndarray:
    if value is None:
        return np.zeros(n_seg, np.int64)
    arr = np.asarray(value)
    if arr.shape != (n_seg,) or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any():
        raise InputError(f"`{name}` must hold one non-negative integer per segment ({n_seg}), "
                         f"got {arr.dtype} of shape {arr.shape}")
    return arr.astype(np.int64)


def _check_starts(starts: np.ndarray, n: int) -> np.ndarray:
    s = np.asarray(starts)
    if s.ndim != 1 or s.size < 1 or not np.issubdtype(s.dtype, np.integer):
        raise InputError(f"`starts` must be a 1-D integer array of segment offsets, got {s.dtype} {s.shape}")
    s = s.astype(np.int64)
    if s[0] != 0 or s[-1] != n or (np.diff(s) < 0).any():
        raise InputError(f"`starts` must rise from 0 to the row count {n}, got {s[0]}..{s[-1]}")
    return s


def _resume_plan(starts: np.ndarray, specs: tuple[FeatureSpec, ...], context: np.ndarray | None,
                 seen: np.ndarray | None, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which segments continue from ``state`` (checked), their first output rows, and the state to update."""
    n_seg = starts.size - 1
    ctx = _per_segment("context", context, n_seg)
    seen_ = _per_segment("seen", seen, n_seg)
    if (ctx > np.diff(starts)).any():
        s = int(np.argmax(ctx > np.diff(starts)))
        raise InputError(f"`context[{s}]` = {ctx[s]} exceeds the segment's {starts[s + 1] - starts[s]} rows")
    width = state_width(specs)
    history = seen_ + ctx
    if state is None:
        if width and (seen_ > 0).any():
            s = int(np.argmax(seen_ > 0))
            raise InputError(f"`seen[{s}]` > 0 needs the `state` an earlier call returned for that symbol")
        resumed = (seen_ > 0) & (history > 0)
        st = np.zeros((n_seg, width))
    else:
        st = np.array(state, dtype=np.float64, copy=True)
        if st.shape != (n_seg, width) or not np.isfinite(st).all():
            raise InputError(f"`state` must be a finite ({n_seg}, {width}) array, got shape {st.shape}")
        resumed = history > 0
    low = resumed & (history < min_history(specs))
    if low.any():
        s = int(np.argmax(low))
        raise InputError(f"segment {s} has {history[s]} rows of history, below min_history = "
                         f"{min_history(specs)}: recompute that symbol from its first bar")
    short = resumed & (ctx < np.minimum(history, max_lookback(specs)))
    if short.any():
        s = int(np.argmax(short))
        raise InputError(f"`context[{s}]` = {ctx[s]} is below max_lookback = {max_lookback(specs)}")
    return resumed, starts[:-1] + np.where(resumed, ctx, 0), st


def compute(cols: Mapping[str, np.ndarray], starts: np.ndarray, specs: Sequence[FeatureSpec] = DEFAULT_SPECS, *,
            context: np.ndarray | None = None, seen: np.ndarray | None = None, state: np.ndarray | None = None,
            ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Compute point-in-time features for every segment (symbol) in one parallel pass.

    Parameters
    ----------
    cols
        ``high, low, close, volume`` (as traded) and ``pf, vf`` (event factors per row), float64
        arrays of one length n (others are ignored). Prices and factors must be finite and > 0,
        volumes finite and >= 0.
    starts
        Segment offsets, int, length n_segments + 1, from 0 to n; rows sorted by (symbol, ts).
    specs
        The features (:data:`DEFAULT_SPECS` by default; see :func:`specs_from_mapping`).
    context
        Incremental mode: ``context[s]`` leading rows of segment ``s`` were already processed by
        an earlier call and are given only as window history (their outputs are NaN and must be
        dropped). Must be at least ``min(rows before the new rows, max_lookback(specs))``.
    seen
        ``seen[s]``: rows of the symbol before the segment's first given row (not given at all).
    state
        ``(n_segments, state_width(specs))``: for each segment, the state the earlier call
        returned after the row just before the first new row. A segment with history
        (``seen + context > 0``) continues from it and needs ``min_history(specs)`` rows of
        history; a segment without history starts fresh (its state row is ignored). Without
        ``state``, every segment starts at its first given row, which must be the symbol's
        first bar (``seen == 0``; context rows then get real values).

    Returns
    -------
    features : dict of str to ndarray
        One float64 array of length n per :func:`column_names` entry (views into one block),
        NaN during each segment's warm-up.
    state : ndarray
        ``(n_segments, state_width(specs))``, the state after each segment's last row (layout:
        :func:`state_names`; zeros for an indicator still in its warm-up).

    Raises
    ------
    InputError
        A missing or malformed column, bad ``starts``, or an inconsistent incremental request.
    ConfigError
        A bad spec.

    Notes
    -----
    ``compute(all rows)`` equals ``compute(prefix)`` followed by ``compute(context + suffix,
    state=...)`` on the suffix rows bit for bit, and ``compute(prefix)`` equals the prefix rows of
    ``compute(all rows)``. Results do not depend on the number of threads.

    The symbols are split into contiguous ranges of about equal rows, one per thread
    (``numba.get_num_threads()``); the kernels release the GIL. The outputs are written in place
    into one preallocated ``(n_columns, n)`` block, so peak memory is that block (8 bytes x
    columns x rows) plus the inputs and a few per-symbol scratch arrays.
    """
    specs, arr, maxwin = _plan(specs)
    close = _column(cols, "close", None)
    n = close.size
    high, low, volume, pf, vf = (_column(cols, c, n) for c in ("high", "low", "volume", "pf", "vf"))
    _check_values({"high": high, "low": low, "close": close, "volume": volume, "pf": pf, "vf": vf})
    starts = _check_starts(starts, n)
    resumed, first_out, st = _resume_plan(starts, specs, context, seen, state)
    names = column_names(specs)
    out = _output_block(len(names), n)
    args = (high, low, close, volume, pf, vf, starts, first_out, resumed, arr["kinds"], arr["ip"], arr["fp"],
            arr["col"], arr["slot"], maxwin, out, st)
    work = _work_split(starts, _threads())
    _in_threads(nb.features_nb, [(*args, lo, hi) for lo, hi in zip(work[:-1], work[1:])])
    return dict(zip(names, out)), st


def _output_block(rows: int, n: int) -> np.ndarray:
    """A fresh ``(rows, n)`` float64 block, its pages touched (one long sequential range per thread).

    Its values are left to the kernel, which writes every element.
    """
    out = np.empty((rows, n))
    flat = out.reshape(-1)
    cuts = np.linspace(0, flat.size, _threads() + 1).astype(np.int64)
    _in_threads(nb.touch_nb, [(flat, lo, hi, _PAGE_VALUES) for lo, hi in zip(cuts[:-1], cuts[1:])])
    return out


def _threads() -> int:
    """Worker threads: numba's setting (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``)."""
    return max(1, numba.get_num_threads())


def _in_threads(kernel: Any, calls: list[tuple[Any, ...]]) -> list[Any]:
    """Run a GIL-releasing kernel once per argument tuple, in parallel; results in order."""
    if len(calls) <= 1:
        return [kernel(*args) for args in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda args: kernel(*args), calls))


def _work_split(starts: np.ndarray, workers: int) -> np.ndarray:
    """Segment ranges of about equal cost (rows + a per-segment overhead), one per worker.

    Contiguous ranges keep each thread's writes together; a split by segment count would give
    one thread all the long symbols of a skewed universe.
    """
    workers = max(1, min(workers, starts.size - 1))
    cost = np.diff(starts) + _SEGMENT_COST
    mid = np.cumsum(cost) - cost / 2  # a segment goes to the worker its middle falls in
    cuts = np.searchsorted(mid, cost.sum() * np.arange(1, workers) / workers)
    return np.unique(np.concatenate([[0], cuts, [starts.size - 1]])).astype(np.int64)
