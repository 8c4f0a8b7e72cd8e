"""API keys for sources that need one: from the environment or the OS keyring, never from files.

``get_secret("tiingo")`` reads ``$ALPHATWIN_TIINGO_API_KEY`` first, then the OS keyring entry
``("alphatwin", "tiingo")`` when the optional ``keyring`` package is installed. The value is
registered with the log redaction (:func:`alphatwin.log.register_secret`), so it never reaches
a log line, the stderr error line or an error stored in the catalog. ``alphatwin.toml``
refuses secret-looking keys (see :mod:`alphatwin.config`).
"""

from __future__ import annotations

import os
import re

from alphatwin.errors import ConfigError
from alphatwin.log import get_logger, register_secret

__all__ = ["get_secret", "env_var", "KEYRING_SERVICE"]

KEYRING_SERVICE = "alphatwin"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

log = get_logger("secrets")


def env_var(name: str) -> str:
    """The environment variable holding ``name``'s key: ``ALPHATWIN_<NAME>_API_KEY``."""
    if not _NAME.match(name):
        raise ConfigError(f"a secret name must be letters, digits and _ (like `tiingo`), got {name!r}")
    return f"ALPHATWIN_{name.upper()}_API_KEY"


def _from_keyring(name: str) -> str | None:
    try:
        import keyring  # optional: only when installed
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, name) or None
    except Exception as exc:  # no backend, locked keychain, D-Bus down: as if not set
        log.debug("OS keyring unavailable for %s: %s", name, type(exc).__name__)
        return None


def get_secret(name: str) -> str:
    """The API key ``name`` (environment first, then the OS keyring), registered for redaction.

    Raises :class:`ConfigError` naming both ways to set it when neither has it.

    Examples
    --------
    >>> import os; os.environ["ALPHATWIN_DEMO_API_KEY"] = "k-1234"
    >>> get_secret("demo")
    'k-1234'
    """
    var = env_var(name)
    value = os.environ.get(var, "").strip() or _from_keyring(name)
    if not value:
        raise ConfigError(
            f"no API key for {name}: set ${var} in the environment, or store it in the OS keyring with "
            f"`keyring set {KEYRING_SERVICE} {name}` (pip install keyring); keys never go in alphatwin.toml"
        )
    register_secret(value)
    return value
