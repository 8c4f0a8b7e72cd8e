"""Regenerate the rules table in docs/quality.md from expectations/raw_bars.json."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from alphatwin.quality.suites import rules_markdown

PAGE = Path(__file__).with_name("quality.md")


def render(text: str) -> str:
    return re.sub(r"<!-- rules:start -->.*<!-- rules:end -->",
                  lambda _: "<!-- rules:start -->\n" + rules_markdown() + "<!-- rules:end -->", text, flags=re.S)


if __name__ == "__main__":
    new = render(PAGE.read_text())
    if "--check" in sys.argv:
        sys.exit(0 if new == PAGE.read_text() else 1)
    PAGE.write_text(new)
