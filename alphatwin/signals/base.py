"""The strategy protocol: a name, parameters with defaults and ranges, a vectorized target function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphatwin.errors import InputError

__all__ = ["DIRECTIONS", "Param", "Strategy", "STRATEGIES", "get_strategy", "register"]

#: ``direction`` values every strategy takes.
DIRECTIONS = ("long", "short", "both")


@dataclass(frozen=True)
class Param:
    """One integer parameter: its default and its allowed range (inclusive)."""

    name: str
    default: int
    low: int
    high: int
    help: str = ""

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not self.low <= value <= self.high:
            raise InputError(f"parameter `{self.name}` must be an integer in [{self.low}, {self.high}], "
                             f"got {value!r}")
        return int(value)


@dataclass(frozen=True)
class Strategy:
    """A strategy: ``targets(close, **params, direction=...)`` maps one symbol's
    backward-adjusted closes (1-D, oldest first) to target weights, point in time."""

    name: str
    summary: str
    params: tuple[Param, ...]
    targets: Callable[..., np.ndarray]
    validate: Callable[[Mapping[str, int]], str | None] = lambda params: None

    def resolve(self, given: Mapping[str, Any]) -> dict[str, int]:
        """Defaults overridden by ``given``, checked; unknown or invalid names raise InputError."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"strategy `{self.name}` has no parameter {unknown[0]!r}; "
                             f"its parameters are {', '.join(known)}")
        out = {p.name: p.check(given.get(p.name, p.default)) for p in self.params}
        problem = self.validate(out)
        if problem:
            raise InputError(f"strategy `{self.name}`: {problem}")
        return out


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``; InputError naming the known ones otherwise."""
    from alphatwin.signals import (  # noqa: F401  (each module registers itself)
        bollinger_reversion, ema_cross, macd, rsi_reversion, sma_cross, ts_momentum)

    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name]


def direction_flags(direction: str) -> tuple[bool, bool]:
    """(long allowed, short allowed) for a ``direction`` value."""
    if direction not in DIRECTIONS:
        raise InputError(f"`direction` must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction != "short", direction != "long"
