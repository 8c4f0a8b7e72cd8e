"""What every HTML report shares: the inlined Vega bundle, spec embedding, cell formatting and
atomic writes.

The Vega, Vega-Lite and Vega-Embed scripts come from ``vl_convert.javascript_bundle`` and are
inlined once per page; each chart's Vega-Lite spec sits in its own
``<script type="application/json" data-chart="...">`` block and :data:`EMBED_SCRIPT` embeds
them all; data that several charts read can sit once in a page-level ``datasets`` block
(:func:`share_datasets`). Nothing is fetched over the network, so a report opens offline.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = ["PAGE_HEAD", "BASE_CSS", "PAGE_SCRIPTS", "vega_bundle", "vegalite_version", "spec_json", "write_atomic", "values", "versions", "share_datasets",
           "EMBED_SCRIPT"]

#: Embeds every ``<script type="application/json" data-chart="ID">`` spec into the element ``#ID``;
#: a chart that fails says so in place (and on the console, where a browser test sees it).
EMBED_SCRIPT = """\
(function () {
  var shared = document.getElementById('datasets');
  var datasets = shared ? JSON.parse(shared.textContent) : {};
  document.querySelectorAll('script[data-chart]').forEach(function (el) {
    var spec = JSON.parse(el.textContent);
    if (Array.isArray(spec.datasets)) {
      var own = {};
      spec.datasets.forEach(function (name) { own[name] = datasets[name]; });
      spec.datasets = own;
    }
    vegaEmbed('#' + el.dataset.chart, spec, {actions: false, renderer: 'svg'}).catch(function (err) {
      document.getElementById(el.dataset.chart).textContent = 'Chart failed to render: ' + err;
      console.error('chart ' + el.dataset.chart + ' failed: ' + err);
    });
  });
})();"""


#: The start of a report page, up to its own ``<meta name="generator">`` and ``<title>``.
PAGE_HEAD = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
"""

#: Styles both report pages share (each adds its own after these).
BASE_CSS = """\
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #fafafa; }
  main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
  header { border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
  h1 { margin: 0 0 .4rem; font-size: 1.6rem; }
  h2 { margin-top: 2.2rem; font-size: 1.25rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
  .meta { color: #555; font-size: .9rem; margin: .15rem 0; }
  nav a { margin-right: 1rem; font-size: .9rem; }
  .cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .7rem 1rem; min-width: 8.5rem; }
  .card .label { font-size: .8rem; color: #666; text-transform: uppercase; letter-spacing: .03em; }
  .card .value { font-size: 1.5rem; font-weight: 600; margin: .15rem 0; }
  .card .sub { font-size: .8rem; color: #666; }
  .chart { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .8rem; margin: .8rem 0; overflow-x: auto; }
  .notice { background: #fff8e1; border: 1px solid #ffe082; border-radius: 6px; padding: .8rem 1.2rem; }
  .none { color: #666; font-style: italic; }
  table { border-collapse: collapse; font-size: .82rem; width: 100%; }
  th { position: sticky; top: 0; background: #f0f0f0; text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ccc; white-space: nowrap; }
  td { padding: .3rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .caption { color: #666; font-size: .85rem; margin: .3rem 0 .6rem; }
  footer { margin-top: 3rem; color: #777; font-size: .8rem; }"""

#: The end of a report page (Jinja): the shared datasets, one JSON block per chart, the Vega
#: bundle and the embedding script. Needs ``specs`` (id -> spec JSON), ``bundle``, ``embed``,
#: ``versions`` and optionally ``datasets``.
PAGE_SCRIPTS = """\
{% if datasets is defined %}<script type="application/json" id="datasets">{{ datasets }}</script>{% endif %}
{% for id, spec in specs.items() %}
<script type="application/json" data-chart="{{ id }}">{{ spec }}</script>{% endfor %}
{% if specs %}
<script>
// Vega {{ versions.vega }}, Vega-Lite {{ versions.vegalite }}, Vega-Embed {{ versions.embed }} (inlined by vl-convert)
{{ bundle }}
</script>
<script>
{{ embed }}
</script>
{% endif %}
</body>
</html>
"""


@functools.cache
def vega_bundle() -> str:
    """The Vega + Vega-Lite + Vega-Embed JavaScript bundle, safe to inline in a ``<script>``."""
    import vl_convert

    major, minor = vegalite_version().split(".")[:2]
    bundle = vl_convert.javascript_bundle(vl_version=f"v{major}_{minor}")
    return bundle.replace("</script", "<\\/script")


def vegalite_version() -> str:
    """The Vega-Lite version Altair writes specs for, e.g. ``6.4.1``."""
    import altair as alt

    return alt.SCHEMA_VERSION.lstrip("v")


def versions() -> dict[str, str]:
    """Versions of the inlined libraries, for the page's comment."""
    import vl_convert

    return {"vega": vl_convert.get_vega_version(), "embed": vl_convert.get_vega_embed_version(),
            "vegalite": vegalite_version()}


def spec_json(spec: dict[str, Any]) -> str:
    """A spec as JSON that cannot end its ``<script>`` element early."""
    text = json.dumps(spec, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def values(frame: pl.DataFrame, *, digits: int | None = None, wall_clock: bool = False) -> list[dict[str, Any]]:
    """Rows as dicts for Vega: timestamps as UTC ISO strings, lists joined with commas, floats
    rounded to ``digits`` significant digits when given (smaller pages), NaN as null.

    ``wall_clock`` writes timestamps without the ``Z``: the browser then shows the UTC wall-clock
    time as it is (a daily bar stays on its date in any time zone) instead of converting it."""
    import polars as pl

    stamp = "%Y-%m-%dT%H:%M:%S" if wall_clock else "%Y-%m-%dT%H:%M:%SZ"
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name).dt.convert_time_zone("UTC") if dtype.time_zone else pl.col(name)
            exprs.append(col.dt.to_string(stamp).alias(name))
        elif isinstance(dtype, pl.Date):
            exprs.append(pl.col(name).dt.to_string("%Y-%m-%d").alias(name))
        elif isinstance(dtype, pl.List):
            exprs.append(pl.col(name).list.join(", ").alias(name))
        elif dtype.is_float():
            col = pl.col(name).fill_nan(None)
            exprs.append((col.round_sig_figs(digits) if digits else col).alias(name))
    return frame.with_columns(exprs).to_dicts()


def share_datasets(specs: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Move the specs' ``datasets`` into one page-level mapping (each dataset once, however many
    charts read it); a spec keeps the list of the names it needs, which :data:`EMBED_SCRIPT`
    resolves from ``<script type="application/json" id="datasets">``."""
    shared: dict[str, Any] = {}
    out = {}
    for name, spec in specs.items():
        own = spec.get("datasets") or {}
        shared.update(own)
        out[name] = {**spec, "datasets": sorted(own)} if own else spec
    return out, shared


def write_atomic(out: Path, data: str | bytes) -> None:
    """Write ``out`` through a temporary file and a rename: readers see the old file or the new
    one, never half of one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
