"""The data-quality report's HTML page: one Jinja2 template, cells formatted for people.

Charts are embedded as :mod:`alphatwin.reports._html` describes (Vega inlined once, so the
file opens offline).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alphatwin.reports._html import BASE_CSS, PAGE_HEAD, PAGE_SCRIPTS

if TYPE_CHECKING:
    import polars as pl

    from alphatwin.reports.quality import QualityData


__all__ = ["render_page"]

RUNS_SHOWN = 100  # validation runs listed in the runs table

_TEMPLATE = PAGE_HEAD + """\
<meta name="generator" content="alphatwin quality report">
<title>Data quality: {{ scope }}</title>
<style>
{{ base_css }}
  .meta code { background: #eee; padding: 0 .25rem; border-radius: 3px; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .7rem 1rem; min-width: 9.5rem; }
  .card.bad .value { color: #c62828; } .card.warn .value { color: #e65100; } .card.good .value { color: #2e7d32; }
  .notice { background: #fff8e1; border: 1px solid #ffe082; border-radius: 6px; padding: 1rem 1.2rem; }
  .tablewrap { overflow-x: auto; max-height: 36rem; overflow-y: auto; border: 1px solid #ddd; border-radius: 6px; background: #fff; }
  td.time { white-space: nowrap; }
  td.long { max-width: 28rem; overflow-wrap: anywhere; }
  .badge { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .75rem; font-weight: 600; color: #fff; }
  .badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; }
  .badge.error { background: #6a1b9a; } .badge.incomplete { background: #757575; }
</style>
</head>
<body>
<main>
<header>
  <h1>Data quality: {{ scope }}</h1>
  <p class="meta">Warehouse <code>{{ data.warehouse }}</code> &middot; generated {{ generated }}</p>
  {% if suites %}<p class="meta">Suites:
    {% for s in suites %}<code>{{ s.suite }}</code> (sha256 <code>{{ s.suite_sha256 }}</code>, {{ s.runs }} run{{ "s" if s.runs != 1 }}){{ "; " if not loop.last }}{% endfor %}
  </p>{% endif %}
  {% if not data.empty %}<nav><a href="#summary">Summary</a><a href="#over-time">Over time</a><a href="#runs">Runs</a>
    <a href="#expectations">Expectations</a><a href="#symbols">Worst symbols</a><a href="#quarantine">Quarantine</a><a href="#flags">Flags</a></nav>{% endif %}
</header>
{% if data.empty %}
<section id="summary">
  <p class="notice"><strong>No validation runs yet.</strong> Validation runs are recorded when data is ingested
  (each batch is checked against the expectation suites). Ingest some data, then run
  <code>alphatwin quality report</code> again.</p>
</section>
{% else %}
<section id="summary">
  <h2>Summary</h2>
  <div class="cards">{% for c in cards %}
    <div class="card {{ c.tone }}"><div class="label">{{ c.label }}</div><div class="value">{{ c.value }}</div><div class="sub">{{ c.sub }}</div></div>{% endfor %}
  </div>
  <p class="caption">Batches are ingests; numbers use each batch's latest (current) validation run.
  Quarantined rows are excluded downstream (<code>quality.accepted_bars</code>); flagged rows are kept.</p>
</section>
<section id="over-time">
  <h2>Pass rate over time</h2>
  {{ chart("chart-pass-rate", "No runs to plot.") }}
</section>
<section id="runs">
  <h2>Validation runs</h2>
  {{ table(tables.runs) }}
</section>
<section id="expectations">
  <h2>Expectations</h2>
  {{ chart("chart-expectations", "No expectation results recorded.") }}
  {{ table(tables.expectations) }}
</section>
<section id="symbols">
  <h2>Worst symbols</h2>
  {{ chart("chart-worst-symbols", "No symbol has quarantined or flagged rows.") }}
  {{ table(tables.worst_symbols) }}
</section>
<section id="quarantine">
  <h2>Quarantined rows</h2>
  {{ chart("chart-reasons", "No row was quarantined or flagged.") }}
  {{ table(tables.quarantine) }}
</section>
<section id="flags">
  <h2>Flagged rows</h2>
  {{ table(tables.flags) }}
</section>
{% endif %}
<footer>Written by <code>alphatwin quality report</code>; list quarantined rows in a terminal with
<code>alphatwin quality quarantine --symbol SYMBOL</code>.</footer>
</main>
""" + PAGE_SCRIPTS

_MACROS = """\
{% macro chart(id, empty_text) -%}
{% if id in specs %}<div class="chart"><div id="{{ id }}"></div></div>{% else %}<p class="none">{{ empty_text }}</p>{% endif %}
{%- endmacro %}
{% macro table(t) -%}
{% if t.rows %}<p class="caption">{{ t.caption }}</p>
<div class="tablewrap"><table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for text, cls in row %}<td{% if cls %} class="{{ cls }}"{% endif %}>{% if cls == "result" %}<span class="badge {{ text }}">{{ text }}</span>{% else %}{{ text }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>{% else %}<p class="none">{{ t.empty_text }}</p>{% endif %}
{%- endmacro %}
"""


@dataclass(frozen=True)
class _Table:
    columns: list[str]
    rows: list[list[tuple[str, str]]]
    caption: str
    empty_text: str


def _cell(name: str, value: Any) -> tuple[str, str]:
    """``(text, css class)`` of one table cell."""
    if value is None:
        return "", ""
    if name == "result":
        return str(value), "result"
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if isinstance(value, int):
        return f"{value:,}", "num"
    if isinstance(value, float):
        text = f"{value:.1%}" if name.endswith("_rate") else f"{value:.4g}"
        return text, "num"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S"), "time"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value), "long"
    text = str(value)
    return text, "long" if len(text) > 40 else ""


def _table(frame: pl.DataFrame, caption: str, empty_text: str) -> _Table:
    names = frame.columns
    rows = [[_cell(n, v) for n, v in zip(names, row, strict=True)] for row in frame.iter_rows()]
    return _Table([n.replace("_", " ") for n in names], rows, caption, empty_text)


def _shown(total: int, shown: int, noun: str) -> str:
    return f"All {total:,} {noun}." if shown >= total else f"The latest {shown:,} of {total:,} {noun}."


def _tables(data: QualityData) -> dict[str, _Table]:
    runs = data.runs.head(RUNS_SHOWN)
    s = data.summary
    return {
        "runs": _table(runs.drop("batch_error") if runs["batch_error"].null_count() == runs.height else runs,
                       _shown(data.runs.height, runs.height, "validation runs, newest first")
                       + " A batch fails when any error-severity expectation fails.", "No validation runs."),
        "expectations": _table(data.expectations,
                               "Per expectation over current runs: unexpected values summed over batches, "
                               "samples from the latest failing run.", "No expectation results."),
        "worst_symbols": _table(data.worst_symbols, "Symbols ranked by quarantined + flagged rows; "
                                "reasons with their row counts.", "No symbol has quarantined or flagged rows."),
        "quarantine": _table(data.quarantine, _shown(s["quarantine_total"], data.quarantine.height,
                                                     "quarantined rows"), "No quarantined rows."),
        "flags": _table(data.flags, _shown(s["flags_total"], data.flags.height, "flagged rows"), "No flagged rows."),
    }


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%} of received" if whole else ""


def _cards(s: dict[str, Any]) -> list[dict[str, str]]:
    received = s["rows_received"]
    rate = s["batch_pass_rate"]
    exp_rate = s["expectation_pass_rate"]
    return [
        {"label": "Batches", "value": f"{s['batches']:,}", "tone": "",
         "sub": f"{s['validation_runs']:,} validation run(s) in all"},
        {"label": "Batch pass rate", "value": "n/a" if rate is None else f"{rate:.1%}",
         "tone": "good" if rate == 1 else "bad", "sub": f"{s['batches_passed']:,} of {s['batches']:,} passed"},
        {"label": "Expectations passed", "value": "n/a" if exp_rate is None else f"{exp_rate:.1%}",
         "tone": "good" if exp_rate == 1 else "warn",
         "sub": f"{s['expectations_passed']:,} of {s['expectations']:,} checks"},
        {"label": "Rows received", "value": f"{received:,}", "tone": "", "sub": "in current batches"},
        {"label": "Rows accepted", "value": f"{s['rows_accepted']:,}", "tone": "good",
         "sub": _pct(s["rows_accepted"], received)},
        {"label": "Rows quarantined", "value": f"{s['rows_quarantined']:,}",
         "tone": "bad" if s["rows_quarantined"] else "good",
         "sub": f"{_pct(s['rows_quarantined'], received)}; {s['rows_collapsed']:,} duplicate copies"},
        {"label": "Rows flagged", "value": f"{s['rows_flagged']:,}", "tone": "warn" if s["rows_flagged"] else "good",
         "sub": _pct(s["rows_flagged"], received)},
        {"label": "Rows restated", "value": f"{s['rows_restated']:,}", "tone": "",
         "sub": "superseding earlier ingests"},
    ]


def render_page(data: QualityData) -> str:
    """The report for ``data`` as one self-contained HTML document."""
    import jinja2
    from markupsafe import Markup

    from alphatwin.reports._html import EMBED_SCRIPT, spec_json, vega_bundle, versions
    from alphatwin.reports._quality_charts import quality_charts

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.from_string(_MACROS + _TEMPLATE)
    specs = {} if data.empty else {k: v for k, v in quality_charts(data).items() if v is not None}
    return template.render(
        data=data,
        scope=f"ingest {data.ingest_id}" if data.ingest_id else "all ingests",
        generated=data.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        suites=data.suites.to_dicts(),
        cards=[] if data.empty else _cards(data.summary),
        tables={} if data.empty else _tables(data),
        specs={k: Markup(spec_json(v)) for k, v in specs.items()},
        bundle=Markup(vega_bundle()) if specs else "",
        embed=Markup(EMBED_SCRIPT), base_css=Markup(BASE_CSS),
        versions=versions(),
    )
