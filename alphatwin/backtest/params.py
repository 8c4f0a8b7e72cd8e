"""Execution settings of a backtest: fills, costs, stops, sizing (validated at the boundary)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from alphatwin.errors import InputError

__all__ = ["Costs", "Stops", "Drawdown", "SimParams", "Market"]

FILLS = ("open", "close")
TARGET_KINDS = ("weight", "units")


def _nonneg(name: str, value: float, *, finite: bool = True) -> float:
    value = float(value)
    if math.isnan(value) or value < 0 or (finite and math.isinf(value)):
        raise InputError(f"`{name}` must be a number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class Costs:
    """The cost model (docs/backtest.md#costs).

    ``fees_bps`` commission in basis points of the notional, ``fee_fixed`` per order,
    ``fee_min`` minimum commission per order; slippage as ``slippage_bps`` of the price plus
    ``slippage_range`` x (high - low) or ``slippage_atr`` x ATR(14) of the last completed bar;
    ``impact_k`` the square-root impact coefficient; ``participation`` the largest fraction of a
    bar's volume one order may take (``inf`` = no cap).
    """

    fees_bps: float = 0.0
    fee_fixed: float = 0.0
    fee_min: float = 0.0
    slippage_bps: float = 0.0
    slippage_range: float = 0.0
    slippage_atr: float = 0.0
    impact_k: float = 0.0
    participation: float = math.inf

    def __post_init__(self) -> None:
        for name in ("fees_bps", "fee_fixed", "fee_min", "slippage_bps", "slippage_range",
                     "slippage_atr", "impact_k"):
            _nonneg(name, getattr(self, name))
        for name in ("fees_bps", "slippage_bps"):
            if getattr(self, name) >= 10_000:
                raise InputError(f"`{name}` must be below 10000 (100% of the price), got {getattr(self, name)!r}")
        if self.slippage_range and self.slippage_atr:
            raise InputError("use one of `slippage_range` and `slippage_atr`, not both")
        if not (self.participation > 0):
            raise InputError(f"`participation` must be > 0 (a fraction of bar volume), got {self.participation!r}")

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Stops:
    """Stop rules (NaN = off): docs/backtest.md#stops. ``stop_loss``, ``take_profit`` and
    ``trailing_stop`` are fractions of the entry price (of the peak / trough for the trailing
    stop); ``stop_atr`` is a multiple k of ATR(14): the stop sits k x ATR (of the last completed
    bar before the fill that opened the position) below a long's entry price, above a short's."""

    stop_loss: float = math.nan
    take_profit: float = math.nan
    trailing_stop: float = math.nan
    stop_atr: float = math.nan

    def __post_init__(self) -> None:
        for name in ("stop_loss", "take_profit", "trailing_stop"):
            value = float(getattr(self, name))
            if not math.isnan(value) and not (0 < value < (1 if name != "take_profit" else math.inf)):
                limit = "(0, 1)" if name != "take_profit" else "> 0"
                raise InputError(f"`{name}` must be a fraction in {limit}, got {value!r}")
        value = float(self.stop_atr)
        if not math.isnan(value) and not (0 < value < math.inf):
            raise InputError(f"`stop_atr` must be a multiple of ATR > 0, got {value!r}")

    @property
    def any(self) -> bool:
        return not all(math.isnan(v) for v in asdict(self).values())

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Drawdown:
    """Drawdown control (docs/risk/drawdown_control.md): when the equity falls ``limit`` below its
    high-water mark, targets are multiplied by ``scale`` (0 = flatten) from that close on; after
    ``cooldown`` bars the high-water mark resets to the equity then and targets apply in full.
    ``limit`` NaN = off."""

    limit: float = math.nan
    scale: float = 0.0
    cooldown: int = 21

    def __post_init__(self) -> None:
        if not math.isnan(self.limit) and not 0 < self.limit < 1:
            raise InputError(f"`max_drawdown` must be a fraction in (0, 1), got {self.limit!r}")
        if math.isnan(self.scale) or not 0 <= self.scale < 1:
            raise InputError(f"`drawdown_scale` must be in [0, 1) (0 = flatten), got {self.scale!r}")
        if isinstance(self.cooldown, bool) or int(self.cooldown) != self.cooldown or self.cooldown < 1:
            raise InputError(f"`drawdown_cooldown` must be an integer >= 1 (bars), got {self.cooldown!r}")

    @property
    def on(self) -> bool:
        return not math.isnan(self.limit)

    def as_dict(self) -> dict[str, Any]:
        return {"max_drawdown": None if math.isnan(self.limit) else self.limit,
                "drawdown_scale": self.scale, "drawdown_cooldown": int(self.cooldown)}


@dataclass(frozen=True)
class SimParams:
    """Everything the kernel needs besides the market and the targets."""

    fill: str = "open"
    init_cash: float = 100_000.0
    target_kind: str = "weight"
    whole_units: bool = False
    leverage: float = 1.0
    rebalance_every: int = 0
    costs: Costs = field(default_factory=Costs)
    stops: Stops = field(default_factory=Stops)
    drawdown: Drawdown = field(default_factory=Drawdown)

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise InputError(f"`fill` must be one of {', '.join(FILLS)}, got {self.fill!r}")
        if self.target_kind not in TARGET_KINDS:
            raise InputError(f"`target_kind` must be one of {', '.join(TARGET_KINDS)}, got {self.target_kind!r}")
        if not (math.isfinite(self.init_cash) and self.init_cash > 0):
            raise InputError(f"`init_cash` must be a positive number, got {self.init_cash!r}")
        if not (math.isfinite(self.leverage) and self.leverage > 0):
            raise InputError(f"`leverage` must be a positive number, got {self.leverage!r}")
        if isinstance(self.rebalance_every, bool) or int(self.rebalance_every) != self.rebalance_every \
                or self.rebalance_every < 0:
            raise InputError(f"`rebalance_every` must be an integer >= 0, got {self.rebalance_every!r}")

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("costs", "stops", "drawdown")}
        out.update(self.costs.as_dict())
        out.update(self.stops.as_dict())
        out.update(self.drawdown.as_dict())
        return out


@dataclass(frozen=True)
class Market:
    """Aligned (bar x symbol) float64 arrays; NaN prices where a symbol has no bar.

    ``atr`` (ATR(14)), ``sigma`` (daily return volatility) and ``adv`` (average volume) are the
    values known at the close of each bar; ``split_ratio`` is 1 and ``dividend`` 0 without events.
    """

    ts: np.ndarray
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    split_ratio: np.ndarray
    dividend: np.ndarray
    atr: np.ndarray
    sigma: np.ndarray
    adv: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    @classmethod
    def from_close(cls, close: np.ndarray, **arrays: np.ndarray) -> "Market":
        """A market from closes (2-D or 1-D); missing OHLC default to the close, no events."""
        close = np.asarray(close, dtype=np.float64)
        if close.ndim == 1:
            close = close[:, None]
        n, m = close.shape

        def get(name: str, default: float | np.ndarray) -> np.ndarray:
            value = arrays.get(name)
            if value is None:
                return np.broadcast_to(np.asarray(default, dtype=np.float64), (n, m)).copy()
            value = np.asarray(value, dtype=np.float64)
            return value[:, None].copy() if value.ndim == 1 else value.copy()

        return cls(
            ts=np.asarray(arrays.get("ts", np.arange(n)), ),
            symbols=tuple(arrays.get("symbols", tuple(f"S{i}" for i in range(m)))),
            open=get("open", close), high=get("high", close), low=get("low", close), close=close,
            volume=get("volume", np.inf), split_ratio=get("split_ratio", 1.0),
            dividend=get("dividend", 0.0), atr=get("atr", np.nan), sigma=get("sigma", np.nan),
            adv=get("adv", np.nan),
        )
