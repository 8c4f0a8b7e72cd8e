"""Settings from ``alphatwin.toml``, environment variables and CLI flags (in rising priority).

The file is looked up as ``--config FILE``, then ``$ALPHATWIN_CONFIG``, then ``./alphatwin.toml``;
without one the documented defaults below apply. ``--warehouse DIR`` beats
``$ALPHATWIN_WAREHOUSE`` beats ``[warehouse] path``. A relative warehouse path in the file is
relative to the file's folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from alphatwin.errors import ConfigError

__all__ = ["Settings", "RateLimitSettings", "RetrySettings", "BreakerSettings", "load_settings"]


@dataclass(frozen=True)
class RateLimitSettings:
    """Token bucket shared by every network source of one warehouse (persisted across runs)."""

    requests_per_hour: int = 2000
    burst: int = 20


@dataclass(frozen=True)
class RetrySettings:
    """Exponential backoff with full jitter on rate limits and transient errors."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0


@dataclass(frozen=True)
class BreakerSettings:
    """Per-source circuit breaker: open after ``fail_max`` straight failures for ``reset_timeout`` s."""

    fail_max: int = 5
    reset_timeout: float = 60.0


@dataclass(frozen=True)
class Settings:
    """Everything AlphaTwin reads from configuration; see ``alphatwin.toml`` for the documented defaults."""

    warehouse: Path = Path("warehouse")
    source_chain: tuple[str, ...] = ("yahoo", "stooq")
    fallback_to_lake: bool = True
    http_timeout: float = 20.0
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    universe: tuple[str, ...] = ("AAPL", "MSFT", "SPY", "EURUSD=X", "BTC-USD")
    quarantine_outliers: bool = False
    features: tuple[tuple[str, Any], ...] = ()   # [features]: extra indicator parameter sets, e.g. ("sma", [50, 200])
    calendars: tuple[tuple[str, str], ...] = ()  # [calendars]: symbol glob -> calendar name, checked first
    risk: tuple[tuple[str, Any], ...] = ()  # [risk]: defaults of the backtest risk flags (docs/risk/)
    config_file: Path | None = None


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except TypeError as exc:  # pragma: no cover - dataclass arity errors
        raise ConfigError(f"{where}: {exc}") from None


def _from_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_settings(config: str | Path | None = None, *, warehouse: str | Path | None = None) -> Settings:
    """Resolve :class:`Settings` from the file, the environment and explicit overrides.

    Examples
    --------
    >>> load_settings(warehouse="/tmp/w").warehouse
    PosixPath('/tmp/w')
    """
    path: Path | None = None
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"`--config` file not found: {path}")
    elif os.environ.get("ALPHATWIN_CONFIG"):
        path = Path(os.environ["ALPHATWIN_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"$ALPHATWIN_CONFIG file not found: {path}")
    elif Path("alphatwin.toml").is_file():
        path = Path("alphatwin.toml")

    settings = Settings()
    if path is not None:
        data = _from_file(path)
        settings = _apply(settings, data, path)
    env_wh = os.environ.get("ALPHATWIN_WAREHOUSE")
    if warehouse is not None:
        settings = replace(settings, warehouse=Path(warehouse))
    elif env_wh:
        settings = replace(settings, warehouse=Path(env_wh))
    return replace(settings, warehouse=settings.warehouse.expanduser().absolute())


def _apply(settings: Settings, data: dict[str, Any], path: Path) -> Settings:
    where = str(path)
    allowed = {"warehouse", "sources", "universe", "quality", "features", "calendars", "risk"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")
    changes: dict[str, Any] = {"config_file": path}
    wh = data.get("warehouse", {})
    if "path" in wh:
        p = Path(wh["path"]).expanduser()
        changes["warehouse"] = p if p.is_absolute() else path.parent / p
    src = dict(data.get("sources", {}))
    if "chain" in src:
        chain = src.pop("chain")
        if not isinstance(chain, list) or not all(isinstance(s, str) for s in chain) or not chain:
            raise ConfigError(f"{where}: [sources] chain must be a non-empty list of source names")
        changes["source_chain"] = tuple(chain)
    if "fallback_to_lake" in src:
        changes["fallback_to_lake"] = bool(src.pop("fallback_to_lake"))
    if "http_timeout" in src:
        changes["http_timeout"] = float(src.pop("http_timeout"))
    for key, cls in (("rate_limit", RateLimitSettings), ("retry", RetrySettings), ("circuit_breaker", BreakerSettings)):
        if key in src:
            changes["breaker" if key == "circuit_breaker" else key] = _section(cls, src.pop(key), f"{where} [sources.{key}]")
    if src:
        raise ConfigError(f"{where}: unknown key(s) in [sources]: {', '.join(sorted(src))}")
    qual = dict(data.get("quality", {}))
    if "quarantine_outliers" in qual:
        changes["quarantine_outliers"] = bool(qual.pop("quarantine_outliers"))
    if qual:
        raise ConfigError(f"{where}: unknown key(s) in [quality]: {', '.join(sorted(qual))}")
    uni = data.get("universe", {})
    if "symbols" in uni:
        changes["universe"] = tuple(uni["symbols"])
    if "features" in data:
        from alphatwin.transforms.indicators import specs_from_mapping

        feats = dict(data["features"])
        try:  # validate now, so a bad key fails at load with the file's name
            specs_from_mapping(feats)
        except ConfigError as exc:
            raise ConfigError(f"{where} [features]: {exc}") from None
        changes["features"] = tuple(sorted(feats.items()))
    if "calendars" in data:
        from alphatwin.transforms.calendars import check_calendar

        cals = dict(data["calendars"])
        for pattern, name in cals.items():
            check_calendar(name, where=f"{where} [calendars] {pattern!r}")
        changes["calendars"] = tuple(cals.items())
    if "risk" in data:
        from alphatwin.risk.manager import check_risk_settings

        if not isinstance(data["risk"], dict):
            raise ConfigError(f"{where}: [risk] must be a table of settings, got {data['risk']!r}")
        risk = dict(data["risk"])
        try:  # validate now, so a bad key fails at load with the file's name
            check_risk_settings(risk)
        except Exception as exc:  # InputError from the risk classes
            raise ConfigError(f"{where} [risk]: {exc}") from None
        changes["risk"] = tuple(sorted(risk.items()))
    return replace(settings, **changes)
