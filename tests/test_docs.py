"""The docs stay true: the CLI reference is regenerated from the Typer app and must match."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "alphatwin.cli.main", "utils", "docs", "--name", "alphatwin",
         "--title", "CLI reference", "--output", str(out)],
        check=True, capture_output=True, cwd=ROOT,
    )
    assert out.read_text() == (ROOT / "docs" / "cli.md").read_text(), (
        "docs/cli.md is stale: regenerate with `make cli-docs`"
    )


def test_every_doc_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages missing from mkdocs.yml nav: {missing}"


def test_models_page_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_models.py"), "--check"], cwd=ROOT)
    assert out.returncode == 0, "docs/models.md is stale: regenerate with `make models-docs`"


def test_quality_rules_table_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_quality.py"), "--check"], cwd=ROOT)
    assert out.returncode == 0, "docs/quality.md is stale: regenerate with `make quality-docs`"


def test_strategy_pages_are_current():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_strategies.py"), "--check"], cwd=ROOT)
    assert out.returncode == 0, "docs/strategies/ is stale: regenerate with `make strategy-docs`"


def test_every_strategy_and_risk_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(f"{d}/{p.name}" for d in ("strategies", "risk") for p in (ROOT / "docs" / d).glob("*.md"))
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages missing from mkdocs.yml nav: {missing}"
