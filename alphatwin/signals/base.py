"""The strategy protocol: a name, parameters with defaults and ranges, the input columns it
reads and a vectorized function from those columns to ``(signal, target)``.

Two shapes of strategy:

- **series** (``panel=False``): ``compute(*columns, **params, direction=...)`` receives one
  symbol's columns as 1-D arrays (its own rows, oldest first) and returns its ``signal`` (the
  quantity the rule thresholds, e.g. an RSI) and its ``target`` (a direction in [-1, 1]). With
  several symbols the risk manager sizes and allocates each one (docs/risk/).
- **panel** (``panel=True``): ``compute`` receives (bars x symbols) arrays over the union of
  the symbols' timestamps (NaN where a symbol has no bar) and returns (bars x symbols) signals
  and portfolio weights (cross-sectional momentum, pairs).

``inputs`` name the columns: ``open high low close volume`` are the **backward-adjusted** bar
(``clean.bars.adj_*``, the same in every price basis for ratio-based rules); any other name is a
``features.bars`` column (e.g. ``rsi_14``). Row t of the outputs reads rows <= t only.

SQL strategies (``sql/signals/<name>.sql``, built into ``signals.<name>`` by ``alphatwin
build``) are registered with ``source="sql"`` and no ``compute``: their targets are read from
the table (:mod:`alphatwin.signals.sql`).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphatwin.errors import InputError

__all__ = ["DIRECTIONS", "BAR_INPUTS", "Param", "Strategy", "STRATEGIES", "get_strategy", "register",
           "direction_flags", "apply_direction", "all_strategies", "fast_below_slow"]

#: ``direction`` values every strategy takes.
DIRECTIONS = ("long", "short", "both")

#: Input names read from ``clean.bars`` as ``adj_<name>``; anything else is a features.bars column.
BAR_INPUTS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Param:
    """One parameter: its default and its allowed range (inclusive). The default's type sets
    the parameter's type: an ``int`` default takes integers only, a ``float`` default any
    finite number."""

    name: str
    default: int | float
    low: int | float
    high: int | float
    help: str = ""

    @property
    def kind(self) -> type:
        return int if isinstance(self.default, int) else float

    def check(self, value: Any) -> int | float:
        if self.kind is int:
            ok = not isinstance(value, bool) and isinstance(value, (int, np.integer)) \
                and self.low <= value <= self.high
            if not ok:
                raise InputError(f"parameter `{self.name}` must be an integer in [{self.low}, {self.high}], "
                                 f"got {value!r}")
            return int(value)
        ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
            and math.isfinite(value) and self.low <= value <= self.high
        if not ok:
            raise InputError(f"parameter `{self.name}` must be a number in [{self.low}, {self.high}], "
                             f"got {value!r}")
        return float(value)


@dataclass(frozen=True)
class Strategy:
    """A strategy (see the module docstring for the two shapes and the input names)."""

    name: str
    summary: str
    params: tuple[Param, ...]
    compute: Callable[..., tuple[np.ndarray, np.ndarray]] | None
    validate: Callable[[Mapping[str, Any]], str | None] = lambda params: None
    inputs: tuple[str, ...] = ("close",)
    panel: bool = False
    min_symbols: int = 1
    max_symbols: int | None = None
    signal_doc: str = ""  #: what the ``signal`` column holds
    source: str = "python"  #: ``python`` or ``sql``
    family: str = "trend"  #: trend, mean_reversion, momentum, ml, sql (docs grouping)
    hedged: bool = False  #: positions hedge each other: per-symbol stops would break the hedge
    #: the price-level indicators the strategy reads, for charts: ``overlays(close, **params)`` ->
    #: ``{label: series}`` in the basis of ``close`` (the backward-adjusted close); None: none
    overlays: Callable[..., dict[str, np.ndarray]] | None = None

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``given``, checked; unknown or invalid names raise InputError."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            have = f"its parameters are {', '.join(known)}" if known else "it takes no parameters"
            raise InputError(f"strategy `{self.name}` has no parameter {unknown[0]!r}; {have}")
        out = {p.name: p.check(given.get(p.name, p.default)) for p in self.params}
        problem = self.validate(out)
        if problem:
            raise InputError(f"strategy `{self.name}`: {problem}")
        return out

    def check_symbols(self, n: int) -> None:
        if n < self.min_symbols or (self.max_symbols is not None and n > self.max_symbols):
            want = (f"exactly {self.min_symbols}" if self.max_symbols == self.min_symbols
                    else f"at least {self.min_symbols}" if self.max_symbols is None
                    else f"{self.min_symbols} to {self.max_symbols}")
            raise InputError(f"strategy `{self.name}` needs {want} symbol(s) in `--symbols`, got {n}")

    def check_stops(self, stops_on: bool) -> None:
        """A hedged strategy (pairs) refuses the engine's per-symbol stops: a stop would close one
        leg and leave the other unhedged."""
        if self.hedged and stops_on:
            raise InputError(f"strategy `{self.name}` holds hedged legs: a per-symbol stop (--stop-loss, "
                             "--take-profit, --trailing-stop, --stop-atr) would close one leg and leave the "
                             "other unhedged; use its own stop parameter and --max-drawdown instead")

    def run(self, *columns: np.ndarray, direction: str = "long", **params: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(signal, target)`` of ``columns`` (in :attr:`inputs` order)."""
        if self.compute is None:
            raise InputError(f"strategy `{self.name}` is a SQL strategy: its targets are in signals.{self.name}")
        return self.compute(*columns, direction=direction, **params)

    def targets(self, *columns: np.ndarray, direction: str = "long", **params: Any) -> np.ndarray:
        """The target half of :meth:`run`."""
        return self.run(*columns, direction=direction, **params)[1]


STRATEGIES: dict[str, Strategy] = {}
_LOADED = False


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` to :data:`STRATEGIES` (a module calls this at import)."""
    other = STRATEGIES.get(strategy.name)
    if other is not None and other.source != strategy.source:
        raise InputError(f"strategy name {strategy.name!r} is taken twice ({other.source} and {strategy.source})")
    STRATEGIES[strategy.name] = strategy
    return strategy


def _load() -> None:
    """Import every strategy module of this package (each registers itself)."""
    global _LOADED
    if _LOADED:
        return
    import alphatwin.signals as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not (info.name.startswith("_") or info.name in ("base", "sql", "store") or info.name.endswith("nb")
                or info.ispkg):
            importlib.import_module(f"alphatwin.signals.{info.name}")
    _LOADED = True


def all_strategies(sql_root: Any = None) -> dict[str, Strategy]:
    """Every strategy: the Python ones and the SQL ones under ``sql_root`` (default ``sql/``)."""
    _load()
    from alphatwin.signals.sql import sql_strategies

    out = {k: v for k, v in STRATEGIES.items() if v.source == "python"}
    for name, strat in sql_strategies(sql_root).items():
        if name in out:
            raise InputError(f"sql/signals/{name}.sql has the name of the Python strategy `{name}`; rename it")
        out[name] = strat
    return dict(sorted(out.items()))


def get_strategy(name: str, sql_root: Any = None) -> Strategy:
    """The strategy ``name`` (Python or SQL); InputError naming the known ones otherwise."""
    _load()
    if name in STRATEGIES and STRATEGIES[name].source == "python":
        return STRATEGIES[name]
    known = all_strategies(sql_root)
    if name not in known:
        raise InputError(f"unknown strategy {name!r}; known: {', '.join(known)}")
    return known[name]


def fast_below_slow(params: Mapping[str, Any]) -> str | None:
    """The rule of every two-average strategy (``validate=``): ``fast`` < ``slow``."""
    if params["fast"] >= params["slow"]:
        return f"`fast` must be below `slow`, got fast={params['fast']} slow={params['slow']}"
    return None


def direction_flags(direction: str) -> tuple[bool, bool]:
    """(long allowed, short allowed) for a ``direction`` value."""
    if direction not in DIRECTIONS:
        raise InputError(f"`direction` must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction != "short", direction != "long"


def apply_direction(target: np.ndarray, direction: str) -> np.ndarray:
    """``target`` with the sides ``direction`` forbids set to 0 (NaN kept)."""
    long_, short = direction_flags(direction)
    out = np.array(target, dtype=np.float64)
    if not long_:
        out[out > 0] = 0.0
    if not short:
        out[out < 0] = 0.0
    return out
