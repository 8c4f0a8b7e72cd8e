"""Secrets: API keys from the environment or the OS keyring, never from alphatwin.toml, never in
logs, stderr, stdout or the catalog; and no key-looking string anywhere in the repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
import uuid
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from alphatwin import secrets as atsecrets
from alphatwin.cli.main import app
from alphatwin.errors import ConfigError
from alphatwin.log import redact
from alphatwin.sources import stooq as stooq_module

runner = CliRunner()
REPO = Path(__file__).parents[1]


def fake_key() -> str:
    return "fk" + uuid.uuid4().hex  # made at run time: never in the repository


def test_environment_first_and_registered_for_redaction(monkeypatch):
    key = fake_key()
    monkeypatch.setenv("ALPHATWIN_TIINGO_API_KEY", key)
    monkeypatch.setitem(sys.modules, "keyring", types.SimpleNamespace(get_password=lambda s, n: "from-keyring"))
    assert atsecrets.get_secret("tiingo") == key
    assert redact(f"GET /daily?x={key}") == "GET /daily?x=***"


def test_keyring_when_the_environment_has_none(monkeypatch):
    key = fake_key()
    monkeypatch.delenv("ALPHATWIN_POLYGON_API_KEY", raising=False)
    calls = []
    fake = types.SimpleNamespace(get_password=lambda service, name: calls.append((service, name)) or key)
    monkeypatch.setitem(sys.modules, "keyring", fake)
    assert atsecrets.get_secret("polygon") == key
    assert calls == [("alphatwin", "polygon")]
    assert key not in redact(f"bearer {key}")


def test_missing_secret_names_both_ways_to_set_it(monkeypatch):
    monkeypatch.delenv("ALPHATWIN_NOPE_API_KEY", raising=False)

    def broken(service, name):
        raise RuntimeError("no keyring backend")

    monkeypatch.setitem(sys.modules, "keyring", types.SimpleNamespace(get_password=broken))
    with pytest.raises(ConfigError) as err:
        atsecrets.get_secret("nope")
    text = str(err.value)
    assert "$ALPHATWIN_NOPE_API_KEY" in text and "keyring set alphatwin nope" in text
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed: import fails
    with pytest.raises(ConfigError, match="ALPHATWIN_NOPE_API_KEY"):
        atsecrets.get_secret("nope")
    with pytest.raises(ConfigError, match="letters, digits"):
        atsecrets.get_secret("../x")


@pytest.mark.parametrize("body", [
    '[sources]\napi_key = "abc"\n',
    '[sources.rate_limit]\ntoken = "abc"\n',
    '[warehouse]\npassword = "abc"\n',
    '[sources]\nclient_secret = "abc"\n',
    'apikey = "abc"\n',
])
def test_a_secret_in_the_toml_is_refused(tmp_path, body):
    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text(body)
    result = runner.invoke(app, ["--config", str(cfg), "--warehouse", str(tmp_path / "wh"), "status"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "looks like a secret" in lines[0]
    assert "ALPHATWIN_<SOURCE>_API_KEY" in lines[0] and "keyring" in lines[0]
    assert "abc" not in result.output


def test_calendar_globs_are_symbols_not_secrets(tmp_path):
    from alphatwin.config import load_settings

    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text('[calendars]\n"KEYS" = "XNYS"\n')
    assert dict(load_settings(cfg).calendars) == {"KEYS": "XNYS"}


def test_a_key_in_a_failing_request_never_reaches_logs_stdout_stderr_or_the_catalog(tmp_path, monkeypatch):
    """A keyed request fails at the library boundary (requests) with the key in the URL and in the
    message; the real stooq source, retries, ingest and CLI run at -vv."""
    key = fake_key()
    monkeypatch.setenv("ALPHATWIN_STOOQ_API_KEY", key)

    class KeyedSession(requests.Session):
        def get(self, url, **kwargs):  # what a keyed provider's client would send and get back
            secret = atsecrets.get_secret("stooq")
            raise requests.ConnectionError(
                f"HTTPSConnectionPool(host='stooq.test'): Max retries exceeded with url: /q/d/l/?s=aapl.us&"
                f"apikey={secret} (Caused by 401: key {secret} rejected)")

    monkeypatch.setattr(stooq_module.requests, "Session", KeyedSession)
    cfg = tmp_path / "alphatwin.toml"
    cfg.write_text("[sources.retry]\nmax_attempts = 2\nbase_delay = 0.001\nmax_delay = 0.002\n")
    root = tmp_path / "wh"
    assert runner.invoke(app, ["--warehouse", str(root), "init"]).exit_code == 0
    result = runner.invoke(app, ["--warehouse", str(root), "--config", str(cfg), "-vv", "ingest", "stooq", "AAPL",
                                 "--start", "2024-01-02", "--end", "2024-01-06", "--no-fallback"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "***" in result.stderr  # the failure was shown, redacted
    logs = "".join(f.read_text() for f in (root / "logs").glob("*.jsonl"))
    errors = [json.loads(line) for line in logs.splitlines() if json.loads(line)["level"] == "error"]
    assert errors and "apikey=***" in errors[-1]["message"] and "key *** rejected" in errors[-1]["message"]
    for text in (result.stdout, result.stderr, logs):
        assert key not in text
    files = [f for f in root.rglob("*") if f.is_file()]
    assert any(f.name.startswith("alphatwin.duckdb") for f in files)
    for f in files:
        assert key.encode() not in f.read_bytes(), f
    stored = runner.invoke(app, ["--warehouse", str(root), "sql", "select error from meta.ingest_runs", "-f", "json"])
    assert "***" in stored.stdout and key not in stored.stdout


# Key-looking strings: an assignment of a long opaque value to a credential-named variable, or a
# well-known token format (AWS, GitHub, Slack, OpenAI-style, private keys). POSIX ERE (git grep -E).
_CRED = r"(api[_-]?key|apikey|secret|token|passw(or)?d)[\"']?[[:space:]]*[:=][[:space:]]*[\"'][A-Za-z0-9_/+-]{16,}[\"']"
_FORMATS = r"AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9]{32,}|" \
           r"-----BEGIN [A-Z ]*PRIVATE KEY-----"


def _git_grep(repo: Path) -> list[str]:
    out = subprocess.run(["git", "grep", "--untracked", "-nIiE", f"{_CRED}|{_FORMATS}", "--", "."],
                         cwd=repo, capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr  # 1: no match
    return out.stdout.splitlines()


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs git and the repo")
def test_the_repository_holds_no_key_looking_string(tmp_path):
    # the scanner finds a planted key (so an empty answer below means something) ...
    planted = tmp_path / "planted"
    planted.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=planted, check=True)
    (planted / "settings.py").write_text('API_KEY = "' + "Zx9" * 8 + '"\n')
    (planted / "clean.py").write_text('api_key = get_secret("tiingo")\n')
    hits = _git_grep(planted)
    assert len(hits) == 1 and hits[0].startswith("settings.py:1:")
    # ... and finds none in this repository (tracked and untracked, .gitignore'd files aside)
    assert _git_grep(REPO) == []
    assert re.search(_CRED.replace("[[:space:]]", r"\s"), 'token = "' + "a" * 20 + '"', re.I)
