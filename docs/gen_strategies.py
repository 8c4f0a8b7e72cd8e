"""Regenerate docs/strategies/: a page per registered strategy (Python modules and
sql/signals/*.sql) from the registry and the module docstrings, and the index table.

Run ``make strategy-docs``; ``--check`` exits 1 when a page is stale (tests/test_docs.py).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from alphatwin.signals.base import Strategy, all_strategies

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).with_name("strategies")
FAMILIES = {"trend": "Trend following", "mean_reversion": "Mean reversion", "momentum": "Momentum",
            "ml": "Machine learning", "sql": "SQL strategies"}
#: Symbols used in the generated example commands (the demo warehouse has ^GSPC, ^IXIC, SYN*).
EXAMPLE_SYMBOLS = {1: "^GSPC", 2: "^GSPC,^IXIC"}


def _md(text: str) -> str:
    """NumPy-docstring reST to Markdown: ``code`` -> `code`, underlined headings -> ###,
    the Examples section -> a pycon block."""
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", nxt.strip()) and len(nxt.strip()) >= len(line.strip()) - 1:
            if line.strip() == "Examples":
                out.append("### Examples\n")
                out.extend(_examples(lines[i + 2:]))
                break
            out.append(f"### {line.strip()}")
            i += 2
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip() + "\n"


def _examples(lines: list[str]) -> list[str]:
    """Prose stays prose; each run of doctest lines (>>> and their output) becomes a pycon block."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.extend(["```pycon", *block, "```", ""])
            block.clear()

    in_code = False
    for line in lines:
        if line.startswith(">>>") or line.startswith("..."):
            in_code = True
            block.append(line)
        elif in_code and line.strip():
            block.append(line)
        else:
            in_code = False
            flush()
            out.append(line)
    flush()
    return out


def _example_command(s: Strategy) -> str:
    n = s.min_symbols if s.max_symbols == s.min_symbols else max(1, s.min_symbols)
    symbols = EXAMPLE_SYMBOLS.get(n, ",".join(f"SYN{i:05d}" for i in range(1, 11)))
    if s.panel and s.max_symbols is None:
        symbols = ",".join(f"SYN{i:05d}" for i in range(1, 11))
    params = " ".join(f"--param {p.name}={p.default}" for p in s.params)
    return f"alphatwin backtest {s.name} --symbols {symbols} {params} --direction both --fees-bps 10".replace("  ", " ")


def _sql_doc(name: str) -> tuple[str, str]:
    path = ROOT / "sql" / "signals" / f"{name}.sql"
    text = path.read_text(encoding="utf-8")
    header = "\n".join(line[2:].strip() for line in text.splitlines() if line.startswith("--"))
    return header, text


def page(s: Strategy) -> str:
    kind = "panel (the whole universe at once: portfolio weights)" if s.panel else \
        "series (each symbol on its own: a direction in [-1, 1], sized and allocated by the risk manager)"
    symbols = (f"exactly {s.min_symbols}" if s.max_symbols == s.min_symbols
               else f"at least {s.min_symbols}" if s.max_symbols is None else f"{s.min_symbols} to {s.max_symbols}")
    lines = [f"# `{s.name}`", "", f"{s.summary}.", "", "| | |", "|---|---|",
             f"| family | {FAMILIES[s.family]} |", f"| shape | {kind} |", f"| symbols | {symbols} |"]
    if s.source == "python":
        module = importlib.import_module(s.compute.__module__)
        src = Path(module.__file__).relative_to(ROOT)
        inputs = ", ".join(f"`{c}`" + (" (adjusted)" if c in ("open", "high", "low", "close", "volume")
                                       else " (features.bars)") for c in s.inputs)
        lines += [f"| inputs | {inputs} |", f"| signal column | {s.signal_doc} |",
                  f"| source | `{src}` |", f"| signals table | `signals.{s.name}` (written by every saved backtest) |", ""]
        if s.params:
            lines += ["## Parameters", "", "| name | type | default | range | meaning |", "|---|---|---|---|---|"]
            lines += [f"| `{p.name}` | {p.kind.__name__} | `{p.default}` | [{p.low}, {p.high}] | {p.help} |"
                      for p in s.params]
            lines.append("")
        lines += ["Every strategy also takes `--direction long|short|both` (a forbidden side gives 0, never the",
                  "opposite side) and the risk settings of [the risk manager](../risk/index.md).", "",
                  "## Example", "", "```bash", _example_command(s), "```", "",
                  "## Definition", "", _md(module.__doc__ or "")]
    else:
        header, sql = _sql_doc(s.name)
        lines += [f"| source | `sql/signals/{s.name}.sql`, built into `signals.{s.name}` by `alphatwin build` |", "",
                  "No parameters: edit the SQL (or copy it under a new name) to change the rule. Every strategy",
                  "also takes `--direction` and the risk settings of [the risk manager](../risk/index.md).", "",
                  "## Example", "", "```bash", f"alphatwin build --select signals.{s.name}",
                  f"alphatwin backtest {s.name} --symbols ^GSPC --direction both --fees-bps 10", "```", "",
                  "## Definition", "", header, "", "```sql", sql.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def index(strategies: dict[str, Strategy]) -> str:
    lines = ["# Strategies", "",
             "Every strategy turns warehouse columns into targets at each bar's close, point in time (row t",
             "reads rows <= t only; each page says why). `alphatwin strategies` lists them; `alphatwin backtest",
             "NAME` and `alphatwin sweep NAME` run any of them; each saved backtest stores what the strategy",
             "wanted at every bar in `signals.<name>` (`symbol, interval, ts, signal, target, strategy, params`).",
             "The [risk manager](../risk/index.md) sizes and allocates the targets before the engine trades them.",
             "", "The protocol (`alphatwin/signals/base.py`): a name, parameters with defaults and ranges, the input",
             "columns (`open high low close volume` are the backward-adjusted bar, any other name a",
             "`features.bars` column), and a vectorized `compute(*columns, **params, direction)` returning",
             "`(signal, target)`. A *series* strategy sees one symbol at a time and returns a direction in",
             "[-1, 1]; a *panel* strategy sees the universe and returns portfolio weights. A module in",
             "`alphatwin/signals/` that calls `register(Strategy(...))` is found automatically; a query in",
             "`sql/signals/` is a strategy too ([SQL strategies](sql.md)).", ""]
    for fam, title in FAMILIES.items():
        members = [s for s in strategies.values() if s.family == fam]
        if not members:
            continue
        lines += [f"## {title}", "", "| strategy | shape | rule |", "|---|---|---|"]
        lines += [f"| [`{s.name}`]({s.name}.md) | {'panel' if s.panel else 'series'} | {s.summary} |" for s in members]
        lines.append("")
    return "\n".join(lines)


def render() -> dict[Path, str]:
    strategies = all_strategies(ROOT / "sql")
    pages = {OUT / f"{name}.md": page(s) for name, s in strategies.items()}
    pages[OUT / "index.md"] = index(strategies)
    return pages


if __name__ == "__main__":
    pages = render()
    if "--check" in sys.argv:
        stale = [p.name for p, text in pages.items() if not p.exists() or p.read_text() != text]
        stale += [p.name for p in OUT.glob("*.md") if p not in pages and p.name != "sql.md"]
        if stale:
            print(f"stale: {', '.join(sorted(stale))}")
        sys.exit(1 if stale else 0)
    OUT.mkdir(exist_ok=True)
    for path, text in pages.items():
        path.write_text(text)
