"""Signals: strategies turn warehouse columns into target positions (read at each bar's close).

The strategy library is small for now: :mod:`alphatwin.signals.sma_cross`. Each strategy module
exposes a :class:`alphatwin.signals.base.Strategy`; :data:`STRATEGIES` names them.
"""

from __future__ import annotations

from alphatwin.signals.base import DIRECTIONS, Param, Strategy, get_strategy, STRATEGIES

__all__ = ["DIRECTIONS", "Param", "Strategy", "STRATEGIES", "get_strategy"]
