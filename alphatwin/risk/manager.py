"""The risk manager: strategy directions -> portfolio target weights, point in time.

    direction d[t, j] in [-1, 1] (or a panel strategy's weights)
      -> sizing      size[t, j]   none | fixed | vol_target | kelly     (per symbol)
      -> allocation  alloc[t, j]  equal | inverse_vol | risk_parity     (across symbols)
      -> weight      w = d x size x alloc
      -> caps        per position |w| <= max_position, then sum |w| <= max_gross,
                     then |sum w| <= max_net (a row is scaled down as a whole)
      -> the engine: stops and the drawdown control (alphatwin.backtest.params.Stops/Drawdown)

The estimates (trailing volatility, Kelly mean/variance, allocation weights) are refreshed on
**rebalancing rows** (every ``rebalance`` bars from the first bar of the run) and held between
them, so a position's size changes on the schedule, not on every bar; a direction change
takes effect at once with the size held. Row t reads returns up to row t only. Sizing
estimates use each symbol's own bars (backward-adjusted close-to-close returns); allocation
covariances use the rows where every symbol has a bar. Until an estimate exists (the first
``vol_window`` / ``kelly_window`` / ``alloc_window`` returns) the weight is 0: no position is
taken on a size nobody could have known. Panel strategies (pairs, cross-sectional momentum)
set their own weights: only ``none``/``fixed`` sizing and ``equal`` allocation apply to them.
docs/risk.md gives every formula.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from alphatwin.errors import InputError
from alphatwin.risk.allocation import inverse_volatility, risk_parity_weights
from alphatwin.risk.sizing import rolling_kelly, vol_target

__all__ = ["RiskParams", "SIZINGS", "ALLOCATIONS", "RISK_KEYS", "ENGINE_KEYS", "apply_risk", "hold_on_schedule",
           "apply_caps", "check_risk_settings"]

SIZINGS = ("none", "fixed", "vol_target", "kelly")
ALLOCATIONS = ("equal", "inverse_vol", "risk_parity")


def _pos(name: str, value: float, *, allow_inf: bool = False) -> float:
    value = float(value)
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        raise InputError(f"`{name}` must be a number > 0, got {value!r}")
    return value


#: Largest window or schedule (bars): far beyond any history, small enough for NumPy's integers.
MAX_BARS = 100_000_000


def _int(name: str, value: Any, low: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and low <= value <= MAX_BARS
    if not ok:
        raise InputError(f"`{name}` must be an integer in [{low}, {MAX_BARS:,}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RiskParams:
    """Risk settings (docs/risk.md); the defaults reproduce a plain equal-weight run."""

    sizing: str = "none"
    fraction: float = 1.0  #: fixed: the fraction of the allocated weight taken
    target_vol: float = 0.10  #: vol_target: annualized target volatility per position
    vol_window: int = 20  #: vol_target: returns in the trailing volatility
    vol_cap: float = 1.0  #: vol_target: largest size (leverage of one position)
    kelly_fraction: float = 0.5  #: kelly: share of full Kelly
    kelly_window: int = 252  #: kelly: returns in the trailing mean / variance
    kelly_cap: float = 1.0  #: kelly: largest size
    allocation: str = "equal"
    alloc_window: int = 63  #: inverse_vol / risk_parity: returns in the trailing estimate
    rebalance: int = 21  #: bars between re-estimations of sizes and allocation
    max_position: float = math.inf  #: largest |weight| of one symbol
    max_gross: float = math.inf  #: largest sum of |weights|
    max_net: float = math.inf  #: largest |sum of weights|

    def __post_init__(self) -> None:
        if self.sizing not in SIZINGS:
            raise InputError(f"`sizing` must be one of {', '.join(SIZINGS)}, got {self.sizing!r}")
        if self.allocation not in ALLOCATIONS:
            raise InputError(f"`allocation` must be one of {', '.join(ALLOCATIONS)}, got {self.allocation!r}")
        fraction = float(self.fraction)
        if math.isnan(fraction) or not 0 <= fraction < math.inf:
            raise InputError(f"`fraction` must be a number >= 0, got {self.fraction!r}")
        for name in ("target_vol", "vol_cap", "kelly_cap"):
            _pos(name, getattr(self, name))
        kf = float(self.kelly_fraction)
        if math.isnan(kf) or not 0 <= kf < math.inf:
            raise InputError(f"`kelly_fraction` must be a number >= 0, got {self.kelly_fraction!r}")
        for name in ("max_position", "max_gross", "max_net"):
            _pos(name, getattr(self, name), allow_inf=True)
        for name in ("vol_window", "kelly_window", "alloc_window"):
            _int(name, getattr(self, name), 2)
        _int("rebalance", self.rebalance, 1)

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


#: Risk settings the engine applies (``[risk]`` keys and flags besides :class:`RiskParams` fields).
ENGINE_KEYS = ("stop_loss", "take_profit", "trailing_stop", "stop_atr", "max_drawdown", "drawdown_scale",
               "drawdown_cooldown")
#: Every key of the ``[risk]`` section of alphatwin.toml.
RISK_KEYS = tuple(f for f in RiskParams.__dataclass_fields__) + ENGINE_KEYS


def check_risk_settings(values: dict[str, Any]) -> None:
    """Raise InputError for an unknown key or an invalid value of a ``[risk]`` mapping."""
    from alphatwin.backtest.params import Drawdown, Stops

    unknown = sorted(set(values) - set(RISK_KEYS))
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)}; expected {', '.join(RISK_KEYS)}")
    for key, value in values.items():
        if key in ("sizing", "allocation"):
            if not isinstance(value, str):
                raise InputError(f"`{key}` must be a name, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"`{key}` must be a number, got {value!r}")
    if "drawdown_cooldown" in values:
        _int("drawdown_cooldown", values["drawdown_cooldown"], 1)
    RiskParams(**{k: v for k, v in values.items() if k in RiskParams.__dataclass_fields__})
    Stops(**{k: float(v) for k, v in values.items() if k in Stops.__dataclass_fields__})
    Drawdown(limit=float(values.get("max_drawdown", math.nan)), scale=float(values.get("drawdown_scale", 0.0)),
             cooldown=values.get("drawdown_cooldown", 21))


def hold_on_schedule(values: np.ndarray, every: int, first: int = 0) -> np.ndarray:
    """Row t of the result = ``values`` at the last rebalancing row <= t (rows ``first``,
    ``first + every``, ...); rows before ``first`` keep their own value. Reads rows <= t only."""
    n = values.shape[0]
    src = np.arange(n)
    if n > first:
        k = np.arange(n - first)
        src[first:] = first + (k // every) * every
    return values[src]


def _returns(close: np.ndarray) -> np.ndarray:
    """Close-to-close returns of one symbol's rows (NaN first)."""
    out = np.full(close.shape, np.nan)
    out[1:] = close[1:] / close[:-1] - 1.0
    return out


def _sizes(direction: np.ndarray, close: np.ndarray, risk: RiskParams, ppy: float, first: int) -> np.ndarray:
    """size[t, j] >= 0 per symbol from its own rows (1 with sizing none, NaN-free)."""
    n, m = direction.shape
    if risk.sizing == "none":
        return np.ones((n, m))
    if risk.sizing == "fixed":
        return np.full((n, m), risk.fraction)
    out = np.zeros((n, m))
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(close[:, j]))
        if rows.size == 0:
            continue
        r = _returns(close[rows, j])
        ones = np.ones(rows.size)
        if risk.sizing == "vol_target":
            est = vol_target(ones, r, target_vol=risk.target_vol, window=risk.vol_window,
                             periods_per_year=ppy, cap=risk.vol_cap)
            per_row = np.stack([est, est], axis=1)
        else:
            long_ = rolling_kelly(ones, r, risk.kelly_window, fraction=risk.kelly_fraction, cap=risk.kelly_cap)
            short = -rolling_kelly(-ones, r, risk.kelly_window, fraction=risk.kelly_fraction, cap=risk.kelly_cap)
            per_row = np.stack([long_, short], axis=1)
        # the schedule counts the symbol's own rows from its first row in the run
        own_first = int(np.searchsorted(rows, first))
        held = hold_on_schedule(per_row, risk.rebalance, own_first)
        full = np.full((n, 2), np.nan)
        full[rows] = held
        # rows where the symbol has no bar carry its last size
        idx = np.maximum.accumulate(np.where(~np.isnan(full[:, 0]), np.arange(n), -1))
        full = np.where(idx[:, None] >= 0, full[np.maximum(idx, 0)], 0.0)
        d = direction[:, j]
        out[:, j] = np.where(d >= 0, full[:, 0], full[:, 1])
    return out


def _risk_parity_on_schedule(r: np.ndarray, window: int, every: int, first: int) -> np.ndarray:
    """Risk-parity weights of the trailing covariance on the rebalancing rows ``first``,
    ``first + every``, ... (as :func:`hold_on_schedule` places them), held in between; the
    previous weights are held where the window is short, holds a NaN or has no parity solution
    (as :func:`alphatwin.risk.allocation.risk_parity` does); NaN before ``first`` and before the
    first solution."""
    n, m = r.shape
    out = np.full((n, m), np.nan)
    current = np.full(m, np.nan)
    for t in range(first, n):
        lo = t - window + 1
        if (t - first) % every == 0 and lo >= 0 and np.isfinite(r[lo:t + 1]).all():
            try:
                current = risk_parity_weights(np.atleast_2d(np.cov(r[lo:t + 1], rowvar=False)))
            except InputError:
                pass  # hold the previous weights
        out[t] = current
    return out


def _allocation(close: np.ndarray, risk: RiskParams, first: int) -> np.ndarray:
    """alloc[t, j] (each row sums to 1 once known, 0 before), from rows where all symbols have bars."""
    n, m = close.shape
    if risk.allocation == "equal" or m == 1:
        return np.full((n, m), 1.0 / m)
    common = np.flatnonzero(~np.isnan(close).any(axis=1))
    out = np.zeros((n, m))
    if common.size < 2:
        return out
    c = close[common]
    r = np.full(c.shape, np.nan)
    r[1:] = c[1:] / c[:-1] - 1.0
    own_first = int(np.searchsorted(common, first))
    if risk.allocation == "inverse_vol":
        w = hold_on_schedule(inverse_volatility(r, risk.alloc_window), risk.rebalance, own_first)
    else:
        w = _risk_parity_on_schedule(r, risk.alloc_window, risk.rebalance, own_first)
    known = np.full((n, m), np.nan)
    known[common] = w
    idx = np.maximum.accumulate(np.where(~np.isnan(known).any(axis=1), np.arange(n), -1))
    out = np.where(idx[:, None] >= 0, known[np.maximum(idx, 0)], 0.0)
    return np.nan_to_num(out, nan=0.0)


def apply_caps(weights: np.ndarray, risk: RiskParams, *, hedged: bool = False) -> np.ndarray:
    """Per-position clip, then gross and net scaling of each row (NaN-free input). ``hedged``
    (pairs): a row over the per-position cap is scaled down as a whole, keeping the hedge ratio."""
    if hedged and math.isfinite(risk.max_position):
        top = np.abs(weights).max(axis=1, keepdims=True) if weights.size else np.zeros((weights.shape[0], 1))
        w = weights * np.minimum(1.0, risk.max_position / np.maximum(top, 1e-300))
    else:
        w = np.clip(weights, -risk.max_position, risk.max_position)
    if math.isfinite(risk.max_gross):
        gross = np.abs(w).sum(axis=1, keepdims=True)
        w = w * np.minimum(1.0, risk.max_gross / np.maximum(gross, 1e-300))
    if math.isfinite(risk.max_net):
        net = np.abs(w.sum(axis=1, keepdims=True))
        w = w * np.minimum(1.0, risk.max_net / np.maximum(net, 1e-300))
    return w + 0.0


def _carry(target: np.ndarray) -> np.ndarray:
    """NaN (no new target) carried from the row before; leading NaN -> 0."""
    n = target.shape[0]
    idx = np.maximum.accumulate(np.where(~np.isnan(target), np.arange(n)[:, None], -1), axis=0)
    return np.where(idx >= 0, np.take_along_axis(target, np.maximum(idx, 0), axis=0), 0.0)


def apply_risk(target: np.ndarray, close: np.ndarray, risk: RiskParams, *, panel: bool,
               periods_per_year: float, first: int = 0, strategy: str = "", hedged: bool = False,
               strict: bool = False) -> np.ndarray:
    """(n, m) portfolio weights from strategy ``target`` (directions, or a panel strategy's
    weights) and the backward-adjusted ``close`` (NaN where a symbol has no bar). ``first`` is
    the first bar of the run (the rebalancing schedule starts there). ``strict``: InputError when
    the allocation has no estimate on any bar of the run (a backtest that could never trade)."""
    if panel and (risk.sizing not in ("none", "fixed") or risk.allocation != "equal"):
        raise InputError(f"strategy `{strategy}` sets its own portfolio weights: use `--sizing none` or "
                         f"`fixed` and `--allocation equal` with it (got {risk.sizing}, {risk.allocation})")
    d = _carry(np.asarray(target, dtype=np.float64))
    size = _sizes(d, close, risk, periods_per_year, first)
    alloc = np.ones_like(d) if panel else _allocation(close, risk, first)
    if strict and not panel and risk.allocation != "equal" and d.shape[1] > 1 and not alloc[first:].any():
        raise InputError(f"`--allocation {risk.allocation}` has no estimate on any bar of the run: the symbols "
                         f"need {risk.alloc_window + 1} bars in common (they have "
                         f"{int((~np.isnan(close).any(axis=1)).sum())}); lower `--alloc-window` or widen the run")
    w = apply_caps(d * size * alloc, risk, hedged=hedged)
    # no new target where a symbol has no bar: the engine keeps its active one (as without caps)
    return np.where(np.isnan(close), np.nan, w)
