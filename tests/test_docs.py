"""The docs stay true: the CLI reference is regenerated from the Typer app and must match."""

from __future__ import annotations

import os
import re
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


def test_catalog_page_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_catalog.py"), "--check"], cwd=ROOT)
    assert out.returncode == 0, "docs/catalog.md is stale: regenerate with `make catalog-docs`"


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


#: What makes a browser fetch from the network on page load: scripts, stylesheets, CSS imports
#: and web fonts from another host (links for people, ``<a href="https://...">``, are fine).
EXTERNAL_ASSETS = [
    re.compile(r"<script\b[^>]*\bsrc=[\"']?(https?:)?//", re.I),
    re.compile(r"<link\b(?=[^>]*\bhref=[\"']?(https?:)?//)(?=[^>]*(stylesheet|preload|modulepreload|\.css))[^>]*>", re.I),
    re.compile(r"@import\s+(url\()?[\"']?(https?:)?//", re.I),
    re.compile(r"fonts\.(googleapis|gstatic)\.com", re.I),
]


def test_site_has_no_external_assets(tmp_path):
    """The built site works offline: no Google Fonts, no Mermaid, require.js or MathJax from a CDN."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    offending = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        offending += [f"{page.relative_to(site)}: {m.group(0)[:120]}" for rx in EXTERNAL_ASSETS for m in rx.finditer(text)]
    assert not offending, "the site loads assets from the network:\n" + "\n".join(offending[:20])
    assert (site / "assets" / "javascripts" / "mermaid.min.js").is_file(), "the vendored Mermaid is missing"


def test_reliability_counts_are_current():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_reliability.py"), "--check"], cwd=ROOT)
    assert out.returncode == 0, "docs/reliability.md is stale: regenerate with `make reliability-docs`"
