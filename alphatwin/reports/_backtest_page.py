"""The backtest report's HTML page: one Jinja2 template; charts embedded as
:mod:`alphatwin.reports._html` describes (Vega inlined once, so the file opens offline)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import polars as pl

from alphatwin.reports._html import BASE_CSS, PAGE_HEAD, PAGE_SCRIPTS

if TYPE_CHECKING:
    from alphatwin.reports.backtest import RunData

__all__ = ["render_page"]

_PERCENT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "exposure", "risk_free"}
_CURRENCY = {"avg_win", "avg_loss", "expectancy", "best_trade", "worst_trade", "final_equity", "total_fees",
             "total_slippage", "total_impact"}
_COUNTS = {"n_trades", "n_closed_trades", "n_bars", "max_drawdown_duration"}
_CARDS = (("total_return", "Total return"), ("cagr", "CAGR"), ("sharpe", "Sharpe"), ("sortino", "Sortino"),
          ("max_drawdown", "Max drawdown"), ("n_trades", "Trades"), ("win_rate", "Win rate"),
          ("profit_factor", "Profit factor"))
_SWEEP_SHOWN = 25

_TEMPLATE = PAGE_HEAD + """\
<meta name="generator" content="alphatwin backtest report">
<title>{{ title }}</title>
<style>
{{ base_css }}
  code { background: #eee; padding: 0 .25rem; border-radius: 3px; }
  .pos { color: #2e7d32; } .neg { color: #c62828; }
  .pair { display: flex; flex-wrap: wrap; gap: .8rem; } .pair .chart { flex: 1 1 360px; }
  .tablewrap { overflow-x: auto; max-height: 32rem; overflow-y: auto; border: 1px solid #ddd; border-radius: 6px; background: #fff; }
  td.long { max-width: 40rem; overflow-wrap: anywhere; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.2rem; font-size: .88rem; background: #fff;
       border: 1px solid #ddd; border-radius: 6px; padding: .8rem 1rem; }
  dt { color: #555; font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
</style>
</head>
<body>
<main>
<header>
  <h1>{{ title }}</h1>
  <p class="meta">Run <code>{{ info.run_id }}</code> ({{ info.kind }}) &middot; {{ period }} &middot;
    warehouse <code>{{ data.warehouse }}</code> &middot; generated {{ generated }}</p>
  <nav>{% for id, label in sections %}<a href="#{{ id }}">{{ label }}</a>{% endfor %}</nav>
</header>
{% for text in notices %}<p class="notice">{{ text }}</p>{% endfor %}
<section id="summary">
  <h2>Summary</h2>
  {% if cards %}<div class="cards">{% for c in cards %}
    <div class="card"><div class="label">{{ c.label }}</div><div class="value {{ c.tone }}">{{ c.value }}</div><div class="sub">{{ c.sub }}</div></div>{% endfor %}
  </div>{% endif %}
  {{ table(tables.metrics) }}
</section>
{% for id, label in chart_sections %}
<section id="{{ id }}">
  <h2>{{ label }}</h2>
  {% if id == "trades-dist" %}<div class="pair">{{ chart("trade_pnl") }}{{ chart("holding_periods") }}</div>
  {% else %}{{ chart(id) }}{% endif %}
  {% if id in captions %}<p class="caption">{{ captions[id] }}</p>{% endif %}
</section>
{% endfor %}
{% if tables.trades %}<section id="trades">
  <h2>Trades</h2>
  {{ table(tables.trades) }}
</section>{% endif %}
{% if tables.sweep %}<section id="best">
  <h2>Best combinations</h2>
  {{ table(tables.sweep) }}
</section>{% endif %}
<section id="provenance">
  <h2>Provenance</h2>
  <dl>{% for k, v in provenance %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
  {{ table(tables.ingests) }}
</section>
<footer>Written by <code>alphatwin report {{ info.run_id }}</code> (AlphaTwin {{ info.alphatwin_version }}).
  Query the run: <code>alphatwin sql "select * from backtest.trades where run_id = '{{ info.run_id }}'"</code>.
  Metric definitions: the Metrics page of the documentation.</footer>
</main>
""" + PAGE_SCRIPTS

_MACROS = """\
{% macro chart(id) -%}
{% if "chart-" ~ id in specs %}<div class="chart"><div id="chart-{{ id }}"></div></div>{% else %}<p class="none">{{ empty[id] }}</p>{% endif %}
{%- endmacro %}
{% macro table(t) -%}
{% if t and t.rows %}<p class="caption">{{ t.caption }}</p>
<div class="tablewrap"><table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for text, cls in row %}<td{% if cls %} class="{{ cls }}"{% endif %}>{{ text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>{% endif %}
{%- endmacro %}
"""

_EMPTY = {
    "equity": "No equity recorded.", "drawdown": "No equity recorded.", "exposure": "No equity recorded.",
    "price": "No prices to draw.", "monthly_returns": "No equity recorded.",
    "rolling_sharpe": "No trailing window with varying returns (too few bars, or never in the market).", "trade_pnl": "No closed trade.",
    "holding_periods": "No closed trade.", "sweep_heatmap": "The sweep recorded no combination.",
}


def fmt_metric(name: str, value: Any) -> str:
    """A metric for people: percentages, currency with separators, whole counts, 'n/a' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if name in _PERCENT:
        return f"{value:.2%}"
    if name in _CURRENCY:
        return f"{value:,.2f}"
    if name in _COUNTS:
        return f"{value:,.0f}"
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def _tone(name: str, value: Any) -> str:
    if not isinstance(value, (int, float)) or name not in {"total_return", "cagr", "sharpe", "sortino"}:
        return ""
    return "pos" if value > 0 else "neg" if value < 0 else ""


def _cards(data: RunData) -> list[dict[str, str]]:
    m, b = data.metrics, data.benchmark_metrics
    out = []
    for key, label in _CARDS:
        sub = f"buy and hold {fmt_metric(key, b[key])}" if key in b else ""
        if key == "n_trades":
            sub = f"{fmt_metric('n_closed_trades', m.get('n_closed_trades'))} closed"
        out.append({"label": label, "value": fmt_metric(key, m.get(key)), "tone": _tone(key, m.get(key)), "sub": sub})
    return out


def _sweep_cards(data: RunData) -> list[dict[str, str]]:
    s = data.sweep
    if s.height == 0:
        return []
    best = s.sort("sharpe", descending=True, nulls_last=True).row(0, named=True)
    where = ", ".join(f"{n} = {best[n]}" for n in data.sweep_params)
    sharpe = s["sharpe"].drop_nulls()
    positive = (sharpe > 0).sum() / sharpe.len() if sharpe.len() else None
    return [
        {"label": "Combinations", "value": f"{s.height:,}", "tone": "",
         "sub": f"{s['symbol'].n_unique()} symbol(s), kernel {s['kernel'][0] if 'kernel' in s.columns else ''}"},
        {"label": "Best Sharpe", "value": fmt_metric("sharpe", best["sharpe"]), "tone": _tone("sharpe", best["sharpe"]),
         "sub": f"{where} on {best['symbol']}"},
        {"label": "Its total return", "value": fmt_metric("total_return", best["total_return"]),
         "tone": _tone("total_return", best["total_return"]),
         "sub": f"max drawdown {fmt_metric('max_drawdown', best['max_drawdown'])}"},
        {"label": "Median Sharpe", "value": fmt_metric("sharpe", sharpe.median()), "tone": "",
         "sub": f"{fmt_metric('win_rate', positive)} of combinations above 0"},
    ]


def _cell(name: str, value: Any) -> tuple[str, str]:
    if value is None:
        return "", ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M" if (value.hour or value.minute) else "%Y-%m-%d"), ""
    if isinstance(value, (int, float)):
        key = {"return": "total_return", "pnl": "final_equity"}.get(name, name)
        return fmt_metric(key, value), "num"
    text = str(value)
    return text, "long" if len(text) > 40 else ""


def _table(frame: pl.DataFrame, caption: str) -> dict[str, Any]:
    names = frame.columns
    rows = [[_cell(n, v) for n, v in zip(names, row, strict=True)] for row in frame.iter_rows()]
    return {"columns": [n.replace("_", " ") for n in names], "rows": rows, "caption": caption}


def _metrics_table(data: RunData) -> dict[str, Any] | None:
    from alphatwin.metrics.summary import METRIC_DOCS, METRIC_KEYS

    keys = [k for k in METRIC_KEYS if k in data.metrics] + sorted(set(data.metrics) - set(METRIC_KEYS))
    rows = [[(k, ""), (fmt_metric(k, data.metrics[k]), "num"),
             (fmt_metric(k, data.benchmark_metrics[k]) if k in data.benchmark_metrics else "", "num"),
             (METRIC_DOCS.get(k, ""), "long")] for k in keys]
    caption = ("Every metric of the run (backtest.metrics) beside buy and hold of the same symbols (equal cash at "
               "the first traded bar, dividends reinvested, no costs), annualized with the run's periods per year.")
    if data.is_sweep:
        return None
    return {"columns": ["metric", "strategy", "buy and hold", "definition"], "rows": rows, "caption": caption}


def _trades_table(data: RunData) -> dict[str, Any] | None:
    from alphatwin.reports.backtest import TRADES_SHOWN

    if data.trades.height == 0:
        return None
    t = data.trades.sort("trade_no").tail(TRADES_SHOWN).select(
        "trade_no", "symbol", "direction", "entry_ts", "exit_ts", "quantity", "entry_price", "exit_price", "pnl",
        "return", "bars_held", "exit_reason", (pl.col("fees") + pl.col("slippage") + pl.col("impact")).alias("costs"))
    shown = "All" if t.height == data.trades.height else f"The last {t.height:,} of"
    return _table(t, f"{shown} {data.trades.height:,} trades (backtest.trades); an open trade has no exit and is "
                     "marked at the last close.")


def _sweep_table(data: RunData) -> dict[str, Any] | None:
    if data.sweep.height == 0:
        return None
    cols = [c for c in (*data.sweep_params, "symbol", "total_return", "cagr", "sharpe", "sortino", "max_drawdown",
                        "n_trades", "win_rate", "profit_factor", "exposure") if c in data.sweep.columns]
    top = data.sweep.sort("sharpe", descending=True, nulls_last=True).head(_SWEEP_SHOWN).select(cols)
    return _table(top, f"The best {top.height} of {data.sweep.height:,} combinations by Sharpe (backtest.sweeps).")


def _ingests_table(data: RunData) -> dict[str, Any] | None:
    rows = data.info.get("validation") or []
    if not rows:
        return None
    return _table(pl.DataFrame(rows), "The ingests the run read and their validation verdicts when it ran.")


def _grid(params: dict[str, Any]) -> str:
    """A sweep's grid: each parameter's range and count of values."""
    parts = []
    for name, vals in params.items():
        vals = list(vals) if isinstance(vals, list) else [vals]
        if len(vals) > 6:
            parts.append(f"{name} = {min(vals)}..{max(vals)} ({len(vals)} values)")
        else:
            parts.append(f"{name} = {', '.join(str(v) for v in vals)}")
    return "; ".join(parts)


def _json(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_json(v)}" for k, v in value.items() if v is not None) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _provenance(data: RunData) -> list[tuple[str, str]]:
    i = data.info
    return [
        ("strategy", f"{i['strategy']} ({i['direction']})"),
        ("parameters", _grid(i["params"] or {}) if data.is_sweep else _json(i["params"])),
        ("symbols", _json(i["symbols"])), ("interval", str(i["interval"])),
        ("data read", f"{_cell('', i['data_start'])[0]} to {_cell('', i['data_end'])[0]} (signal history included)"),
        ("traded", f"{_cell('', i['run_start'])[0]} to {_cell('', i['data_end'])[0]}, {i['n_bars']:,} bars"),
        ("calendars", _json(i["calendars"])),
        ("annualization", f"{i['periods_per_year']:g} periods per year, risk-free {fmt_metric('risk_free', i['risk_free'])}"),
        ("execution", _json(i["execution"])), ("costs", _json(i["cost_model"])), ("stops", _json(i["stops"])),
        ("risk", _json(i.get("risk"))), ("data quality", _json(i["data_quality"])),
        ("ingests", _json(i["ingest_ids"])), ("data sha256", str(i["data_sha256"])),
        ("command", str(i["command"] or "")),
        ("created", f"{_cell('', i['created'])[0]} UTC in {i['wall_s']:.2f}s by AlphaTwin {i['alphatwin_version']}"),
    ]


def _notices(data: RunData) -> list[str]:
    out = []
    if data.rebuilt_since:
        out.append("clean.bars was rebuilt after this run: rerunning it may give different results.")
    failed = [v["ingest_id"] for v in data.info.get("validation") or [] if v.get("validation") != "passed"]
    if failed:
        out.append(f"The run read ingests whose validation did not pass: {', '.join(failed)}.")
    return out


def _sections(data: RunData, specs: dict[str, Any]) -> list[tuple[str, str]]:
    from alphatwin.reports._backtest_charts import CHART_TITLES

    if data.is_sweep:
        return [("sweep_heatmap", CHART_TITLES["sweep_heatmap"])]
    names = ["equity", "drawdown", "exposure", "price", "monthly_returns", "rolling_sharpe"]
    return [(n, CHART_TITLES[n]) for n in names] + [("trades-dist", "Trade P&L and holding periods")]


def render_page(data: RunData) -> str:
    """The report of ``data`` as one self-contained HTML document."""
    import jinja2
    from markupsafe import Markup

    from alphatwin.reports._backtest_charts import report_charts
    from alphatwin.reports._html import EMBED_SCRIPT, share_datasets, spec_json, vega_bundle, versions

    specs, datasets = share_datasets(report_charts(data))
    info = data.info
    symbols = list(info["symbols"])
    chart_sections = _sections(data, specs)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    tables = {"metrics": _metrics_table(data), "trades": _trades_table(data), "sweep": _sweep_table(data),
              "ingests": _ingests_table(data)}
    sections = [("summary", "Summary"), *chart_sections]
    sections += [(k, v) for k, v in (("trades", "Trades"), ("best", "Best combinations")) if tables[
        "trades" if k == "trades" else "sweep"]] + [("provenance", "Provenance")]
    title = f"{info['strategy']} {'sweep ' if data.is_sweep else ''}on {', '.join(symbols[:4])}" + (
        f" and {len(symbols) - 4} more" if len(symbols) > 4 else "")
    period = f"{_cell('', info['run_start'])[0]} to {_cell('', info['data_end'])[0]}, {info['interval']} bars"
    captions = {
        "equity": "Buy and hold: the run's symbols bought with equal cash at the first traded bar and held, dividends "
                  "reinvested, no costs. Drag to pan, scroll to zoom, double-click to reset.",
        "price": "Pick a symbol in the dropdown under the chart (the symbols with the most trades). Under the price: "
                 "the position's share of equity at each close" + ("" if data.weights.height == 0 or data.weights["signal"].null_count()
                                           == data.weights.height else ", and the strategy's signal") + ".",
        "rolling_sharpe": "Annualized like the Sharpe metric, over a trailing window of half a year of bars.",
        "trades-dist": "Closed trades only; a trade's return is its P&L over its entry notional.",
    }
    return env.from_string(_MACROS + _TEMPLATE).render(
        data=data, info=info, title=title, period=period,
        generated=data.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC"), sections=sections,
        chart_sections=chart_sections, notices=_notices(data), cards=_sweep_cards(data) if data.is_sweep else _cards(data),
        tables=tables, provenance=_provenance(data), captions=captions, empty=_EMPTY,
        specs={f"chart-{k}": Markup(spec_json(v)) for k, v in specs.items()}, datasets=Markup(spec_json(datasets)),
        bundle=Markup(vega_bundle()) if specs else "", embed=Markup(EMBED_SCRIPT), versions=versions(),
        base_css=Markup(BASE_CSS),
    )

