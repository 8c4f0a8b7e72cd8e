"""The reports and the docs site in a real browser: headless Chromium (the system one, through
Playwright) opens a backtest report, a sweep report, the data-quality report and the built MkDocs
site, and fails on any console error, uncaught page error or request that leaves the machine
(both must work offline). Every chart must have rendered an SVG with marks; the price chart's
symbol dropdown and the equity chart's tooltip are exercised. Full-page screenshots land in
``tests/artifacts/screenshots/`` (git-ignored) for a person to look at.

Chromium comes from the OS (``apt-get install chromium``; ``.ci/run`` installs it): without it
the tests skip locally and fail on CI (``CI=true``).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from alphatwin.lake import catalog
from alphatwin.paths import WarehousePaths
from alphatwin.reports.backtest import write_backtest_report
from alphatwin.reports.quality import write_quality_report
from tests.models.market import build_all, load, market
from tests.reports.runs import SYMBOLS, store_runs

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"

TIMEOUT_MS = 30_000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM = "/usr/bin/chromium"  # Debian's; else whatever `chromium` is on PATH

#: Material for MkDocs draws each Mermaid diagram into a *closed* shadow root, which no selector
#: reaches; the test pages open shadow roots instead so ``.mermaid svg`` finds the drawing.
OPEN_SHADOW_ROOTS = """
const attachShadow = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) { return attachShadow.call(this, {...init, mode: "open"}); };
"""

#: Number of ``svg`` elements inside ``.chart`` and of chart specs in the page; a chart that
#: failed writes "Chart failed to render" in place, which ends the wait early.
CHARTS_DONE = """n => document.querySelectorAll('.chart svg').length >= n
    || document.body.innerText.includes('Chart failed to render')"""

# --- the browser ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    for candidate in (CHROMIUM, shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing on CI: .ci/run installs it (apt-get install chromium chromium-driver)")
    pytest.skip("chromium not installed: apt-get install chromium chromium-driver")

@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])  # we run as root
        yield b
        b.close()

@dataclass
class Watched:
    """A page with everything that went wrong on it: console errors (warnings are kept for the
    message only), uncaught exceptions and requests to anything but files and this machine."""

    page: Page
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return ([f"console error: {e}" for e in self.errors] + [f"page error: {e}" for e in self.page_errors]
                + [f"blocked network request: {u}" for u in self.blocked])

    def assert_clean(self, what: str) -> None:
        problems = self.problems()
        context = [f"(console warning: {w})" for w in self.warnings]
        assert not problems, f"{what}:\n  " + "\n  ".join(problems + context)

@pytest.fixture
def open_page(browser) -> Iterator:
    """``open_page(open_shadow_roots=False)`` -> a fresh :class:`Watched` page in its own browser context."""
    contexts = []

    def _open(*, open_shadow_roots: bool = False) -> Watched:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        ctx.set_default_timeout(TIMEOUT_MS)
        if open_shadow_roots:
            ctx.add_init_script(OPEN_SHADOW_ROOTS)
        page = ctx.new_page()
        w = Watched(page)

        def route(r, request):
            url = urlsplit(request.url)
            if url.scheme in ("file", "data", "blob") or url.hostname in LOCAL_HOSTS:
                r.continue_()
            else:
                w.blocked.append(request.url)
                r.abort()

        ctx.route("**/*", route)
        page.on("console", lambda m: (w.errors if m.type == "error" else w.warnings if m.type == "warning" else [])
                .append(f"{m.text} [{m.location.get('url', '')}:{m.location.get('lineNumber', '')}]"))
        page.on("pageerror", lambda e: w.page_errors.append(str(e)))
        return w

    yield _open
    for ctx in contexts:
        ctx.close()

def screenshot(w: Watched, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / f"{name}.png"
    out.unlink(missing_ok=True)
    for warning in w.warnings:  # shown with `pytest -s`; only errors fail a test
        print(f"console warning on {name}: {warning}")
    w.page.evaluate("window.scrollTo(0, 0)")  # else Material's sticky header lands mid-page
    w.page.screenshot(path=str(out), full_page=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000, out
    return out

def test_the_guard_sees_network_requests_and_console_errors(open_page):
    """A test that cannot fail is a defect: a page reaching for the network and logging an error
    is caught."""
    w = open_page()
    w.page.set_content('<img src="https://example.com/x.png"><script>console.error("boom")</script>'
                       '<iframe srcdoc="<script>null.x</script>"></iframe>')
    w.page.wait_for_load_state("load")
    assert w.blocked == ["https://example.com/x.png"]
    assert any("boom" in e for e in w.errors)
    assert any("null" in e for e in w.page_errors), "an error inside an iframe is missed"
    with pytest.raises(AssertionError, match="blocked network request"):
        w.assert_clean("guard")

# --- the report pages ----------------------------------------------------------------------------------------------

def check_report(w: Watched, url: str, what: str) -> list[str]:
    """Open a report and check every chart rendered an SVG with marks; return the chart ids."""
    w.page.goto(url)
    ids = w.page.locator("script[type='application/json'][data-chart]").evaluate_all(
        "els => els.map(e => e.dataset.chart)")
    assert ids, f"{what}: no chart in the page"
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        w.page.wait_for_function(CHARTS_DONE, arg=len(ids), timeout=TIMEOUT_MS)
    except PlaywrightTimeout:  # say what was drawn and what went wrong
        drawn = w.page.locator(".chart svg").count()
        pytest.fail(f"{what}: {drawn} of {len(ids)} charts rendered in {TIMEOUT_MS / 1000:.0f} s; {w.problems()}")
    w.assert_clean(what)
    assert w.page.locator(".chart svg").count() == len(ids), what
    assert "Chart failed to render" not in w.page.inner_text("body"), what
    for chart in ids:
        marks = w.page.locator(f"#{chart} svg g.role-mark path, #{chart} svg g.role-mark line").count()
        assert marks > 0, f"{what}: chart #{chart} has no marks"
    return ids

@pytest.fixture(scope="module")
def wh(chromium, tmp_path_factory) -> tuple[WarehousePaths, str, str]:
    """A fixture market (dividends, splits, gaps) through the gate and the models, one two-symbol
    long/short backtest and one sweep (as tests/reports/test_backtest_report.py builds them).
    Needs ``chromium`` only to skip before the work when there is no browser."""
    paths = WarehousePaths(tmp_path_factory.mktemp("browser") / "wh")
    load(paths, market(n_symbols=3))
    build_all(paths)
    with catalog.connect(paths) as con:
        bt, sw = store_runs(con)
    return paths, bt, sw

def pick_second_symbol(w: Watched) -> None:
    """The price chart's symbol dropdown (a Vega binding) redraws the chart for the other symbol."""
    select = w.page.locator("#chart-price select")
    assert select.count() == 1, "the price chart has no symbol dropdown"
    options = select.locator("option").all_inner_texts()
    assert sorted(options) == list(SYMBOLS), options  # the symbols with the most trades first
    svg = w.page.locator("#chart-price svg")
    before = svg.inner_html()
    select.select_option(index=1)
    w.page.wait_for_function("before => document.querySelector('#chart-price svg').innerHTML !== before",
                             arg=before, timeout=TIMEOUT_MS)
    assert w.page.locator("#chart-price svg g.role-mark path").count() > 0
    w.assert_clean("backtest report after picking the second symbol")

def hover_equity_line(w: Watched) -> None:
    """Pointing at the equity line shows Vega's tooltip."""
    w.page.locator("#chart-equity").scroll_into_view_if_needed()
    point = w.page.evaluate("""() => {
        const line = document.querySelector('#chart-equity svg g.role-mark path');
        const p = line.getPointAtLength(line.getTotalLength() / 2);
        const s = new DOMPoint(p.x, p.y).matrixTransform(line.getScreenCTM());
        return {x: s.x, y: s.y};
    }""")
    w.page.mouse.move(point["x"] - 5, point["y"] - 40)
    w.page.mouse.move(point["x"], point["y"], steps=5)
    tooltip = w.page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible", timeout=5_000)
    text = tooltip.inner_text()
    assert "bar (UTC)" in text and "equity" in text, text
    w.assert_clean("backtest report after hovering the equity chart")

def test_backtest_report_renders_and_responds(wh, open_page, tmp_path):
    paths, bt, _ = wh
    out = write_backtest_report(paths, bt, tmp_path / "backtest.html")
    w = open_page()
    ids = check_report(w, out.as_uri(), "backtest report")
    assert {"chart-equity", "chart-price", "chart-monthly_returns"} <= set(ids)
    screenshot(w, "report-backtest")
    pick_second_symbol(w)
    hover_equity_line(w)
    screenshot(w, "report-backtest-second-symbol")

def test_sweep_report_renders(wh, open_page, tmp_path):
    paths, _, sw = wh
    out = write_backtest_report(paths, sw, tmp_path / "sweep.html")
    w = open_page()
    assert check_report(w, out.as_uri(), "sweep report") == ["chart-sweep_heatmap"]
    screenshot(w, "report-sweep")

def test_quality_report_renders(wh, open_page, tmp_path):
    out = write_quality_report(wh[0], tmp_path / "quality.html")
    w = open_page()
    check_report(w, out.as_uri(), "data-quality report")
    screenshot(w, "report-quality")

# --- the docs site -------------------------------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

@pytest.fixture(scope="module")
def site(chromium, tmp_path_factory) -> Path:
    """The docs site, built once (strict) as ``make docs`` builds it (after the ``chromium``
    check: no browser, no build)."""
    out = tmp_path_factory.mktemp("site") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
                   cwd=ROOT, env=env, check=True)
    return out

@pytest.fixture(scope="module")
def site_url(site) -> Iterator[str]:
    """The site over http on 127.0.0.1 (Material's search and navigation expect http, not file)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

DOC_PAGES = [  # path, screenshot name, has Mermaid diagrams
    ("/", "home", False),
    ("/architecture/", "architecture", True),
    ("/models/", "models", True),
    ("/catalog/", "catalog", False),
    ("/reference/", "reference", False),
    ("/reports/", "reports", False),
    ("/example/", "example-notebook", False),
    ("/quality/", "quality", False),
]

@pytest.mark.parametrize("path, name, mermaid", DOC_PAGES, ids=[n for _, n, _ in DOC_PAGES])
def test_docs_page_renders_offline(site_url, open_page, path, name, mermaid):
    w = open_page(open_shadow_roots=True)
    response = w.page.goto(site_url + path, wait_until="networkidle")
    assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
    assert w.page.locator("article.md-content__inner").count() == 1, f"{path}: no Material article"
    if mermaid:
        w.page.locator(".mermaid svg").first.wait_for(state="attached", timeout=TIMEOUT_MS)
        drawn = w.page.locator(".mermaid svg").count()
        fences = w.page.locator(".mermaid").count()
        assert drawn == fences > 0, f"{path}: {drawn} of {fences} Mermaid diagrams drawn"
        assert w.page.locator(".mermaid svg g.node").count() > 0, f"{path}: a Mermaid diagram without nodes"
    if path == "/reports/" and w.page.locator("iframe").count():
        frame = w.page.locator("iframe").first
        frame.scroll_into_view_if_needed()  # loading="lazy"
        w.page.frame_locator("iframe").first.locator(".chart svg").first.wait_for(timeout=TIMEOUT_MS)
    w.assert_clean(f"docs page {path}")
    screenshot(w, f"docs-{name}")

def test_docs_search_finds_sharpe(site_url, open_page):
    """The search index loads (a web worker fetching search/search_index.json over http)."""
    w = open_page()
    w.page.goto(site_url + "/", wait_until="networkidle")
    box = w.page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("sharpe", delay=30)
    results = w.page.locator(".md-search-result__item")
    results.first.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert results.count() > 0
    assert "sharpe" in w.page.locator(".md-search-result__list").inner_text().lower()
    w.assert_clean("docs search")
    screenshot(w, "docs-search")

def test_docs_example_reports_render(site, open_page):
    """The example reports the docs hook generates (docs/hooks/examples.py) render like any report."""
    examples = sorted((site / "examples").glob("*.html"))
    assert examples, "the docs site has no example report (docs/hooks/examples.py)"
    for page in examples:
        w = open_page()
        check_report(w, page.as_uri(), f"site example {page.name}")  # from disk, like a download
        screenshot(w, f"docs-example-{page.stem}")
    assert {p.name for p in examples} >= {"backtest-report.html", "sweep-report.html", "quality-report.html"}, (
        f"docs/hooks/examples.py built only {[p.name for p in examples]}")
