"""Regenerate the generated parts of docs/models.md: the lineage (Mermaid) and the column lists."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from alphatwin.models.lineage import lineage_mermaid
from alphatwin.models.registry import discover
from alphatwin.transforms.clean import COLUMNS
from alphatwin.transforms.features import BAR_COLUMNS
from alphatwin.transforms.indicators import DEFAULT_SPECS, column_names

ROOT = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).with_name("models.md")


def _block(name: str, body: str, text: str) -> str:
    return re.sub(rf"<!-- {name}:start -->.*<!-- {name}:end -->",
                  lambda _: f"<!-- {name}:start -->\n{body}<!-- {name}:end -->", text, flags=re.S)


def render(text: str) -> str:
    os.environ.pop("ALPHATWIN_PYTHON_MODELS", None)
    mermaid = lineage_mermaid(discover(ROOT / "sql"))
    text = _block("lineage", f"```mermaid\n{mermaid}\n```\n", text)
    text = _block("clean-columns", ", ".join(f"`{c}`" for c in COLUMNS) + "\n", text)
    features = [*BAR_COLUMNS, *column_names(DEFAULT_SPECS)]
    return _block("features-columns", ", ".join(f"`{c}`" for c in features) + "\n", text)


if __name__ == "__main__":
    new = render(PAGE.read_text())
    if "--check" in sys.argv:
        sys.exit(0 if new == PAGE.read_text() else 1)
    PAGE.write_text(new)
