"""Settings from ``alphatwin.toml``, environment variables and CLI flags (in rising priority).

The file is looked up as ``--config FILE``, then ``$ALPHATWIN_CONFIG``, then ``./alphatwin.toml``;
without one the documented defaults below apply. ``--warehouse DIR`` beats
``$ALPHATWIN_WAREHOUSE`` beats ``[warehouse] path``. A relative warehouse path in the file is
relative to the file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from alphatwin.errors import ConfigError

__all__ = ["Settings", "SqlSettings", "RateLimitSettings", "RetrySettings", "BreakerSettings", "StatusSettings",
           "load_settings"]


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
class SqlSettings:
    """Limits of one ``alphatwin sql`` / ``Warehouse.sql`` query (the sandbox, docs/lake.md)."""

    timeout: float = 60.0        # seconds of wall time before the query is stopped
    memory_limit: str = "2GB"    # DuckDB's memory_limit for the query
    threads: int = 2


#: Default ``[status] stale_days``: a dataset is stale when its last bar is older than this many days.
STALE_DAYS: dict[str, float] = {"1m": 3, "2m": 3, "5m": 3, "15m": 3, "30m": 3, "60m": 3, "90m": 3, "1h": 3,
                                "1d": 5, "5d": 10, "1wk": 14, "1mo": 45, "3mo": 120}


@dataclass(frozen=True)
class StatusSettings:
    """Thresholds of ``alphatwin status`` alerts (``[status]``)."""

    disk_warn_bytes: int = 1 << 30     # alert when less than this is free on the warehouse's disk ...
    disk_warn_percent: float = 5.0     # ... or less than this percentage of it
    stale_days: tuple[tuple[str, float], ...] = tuple(STALE_DAYS.items())  # interval -> days; 0 = never stale
    recent_runs: int = 20              # failed or aborted runs among this many latest ones raise alerts

    def stale_after(self, interval: str) -> float:
        """Days after which a dataset of ``interval`` is stale (0: never)."""
        return dict(self.stale_days).get(interval, STALE_DAYS["1d"])


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
    status: StatusSettings = field(default_factory=StatusSettings)  # [status]: alert thresholds of `status`
    sql: SqlSettings = field(default_factory=SqlSettings)  # [sql]: limits of ad-hoc queries
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


_SECRET_KEY = re.compile(r"key|token|secret|passw(or)?d", re.IGNORECASE)


def _refuse_secrets(data: dict[str, Any], where: str, prefix: str = "") -> None:
    """A key that looks like a credential (``*key*``, ``*token*``, ``*secret*``, ``password``)
    is refused: keys come from the environment or the OS keyring (:mod:`alphatwin.secrets`).
    ``[calendars]`` keys are symbol globs, not settings, and are not checked."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if prefix == "" and key == "calendars":
            continue
        if _SECRET_KEY.search(str(key)):
            raise ConfigError(
                f"{where}: `{name}` looks like a secret; secrets never go in alphatwin.toml: set "
                "$ALPHATWIN_<SOURCE>_API_KEY in the environment or store it in the OS keyring "
                "(`keyring set alphatwin <source>`)")
        if isinstance(value, dict):
            _refuse_secrets(value, where, f"{name}.")


def _status(data: Any, where: str) -> StatusSettings:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [status] must be a table of settings, got {data!r}")
    raw = dict(data)
    known = {f.name for f in fields(StatusSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in [status]: {', '.join(unknown)}; expected {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    for key, kind in (("disk_warn_bytes", int), ("disk_warn_percent", float), ("recent_runs", int)):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                    or (kind is int and not float(value).is_integer()):
                raise ConfigError(f"{where}: [status] {key} must be a number >= 0, got {value!r}")
            out[key] = kind(value)
    if "stale_days" in raw:
        out["stale_days"] = _stale_days(raw["stale_days"], where)
    return StatusSettings(**out)


def _stale_days(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    def days_ok(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0

    days = dict(STALE_DAYS)
    if days_ok(value):
        days = {k: float(value) for k in days}
    elif isinstance(value, dict) and all(days_ok(v) for v in value.values()):
        bad = sorted(set(value) - set(STALE_DAYS))
        if bad:
            raise ConfigError(f"{where}: [status] stale_days: unknown interval(s) {', '.join(bad)}; "
                              f"expected some of {', '.join(STALE_DAYS)}")
        days.update({k: float(v) for k, v in value.items()})
    else:
        raise ConfigError(f"{where}: [status] stale_days must be days >= 0 (every interval) or a table "
                          f"like {{ \"1d\" = 5, \"1h\" = 2 }}, got {value!r}")
    return tuple(days.items())


def _apply(settings: Settings, data: dict[str, Any], path: Path) -> Settings:
    where = str(path)
    _refuse_secrets(data, where)
    allowed = {"warehouse", "sources", "universe", "quality", "features", "calendars", "risk", "sql", "status"}
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
    if "sql" in data:
        changes["sql"] = _sql_section(data["sql"], where)
    if "status" in data:
        changes["status"] = _status(data["status"], where)
    return replace(settings, **changes)


def _sql_section(data: Any, where: str) -> SqlSettings:
    sql = _section(SqlSettings, dict(data) if isinstance(data, dict) else {}, f"{where} [sql]")
    if not isinstance(sql.timeout, (int, float)) or sql.timeout <= 0:
        raise ConfigError(f"{where} [sql] timeout must be a positive number of seconds, got {sql.timeout!r}")
    if not isinstance(sql.threads, int) or sql.threads < 1:
        raise ConfigError(f"{where} [sql] threads must be a positive integer, got {sql.threads!r}")
    import re

    if not isinstance(sql.memory_limit, str) or not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", sql.memory_limit):
        raise ConfigError(f"{where} [sql] memory_limit must look like '2GB' or '512MB', got {sql.memory_limit!r}")
    return sql
