"""Regenerate the counts block of docs/reliability.md from the tests themselves: the bad-input
corpus (tests/corpus/cases.toml), the SQL sandbox attempts, the fault points and the random
SIGKILL trials. `--check` exits 1 when the page is stale (tests/test_docs.py)."""

from __future__ import annotations

import re
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).with_name("reliability.md")
sys.path.insert(0, str(ROOT))


def counts() -> str:
    from alphatwin.lake.faults import POINTS
    from tests.lake.test_faults import ALL_TRIALS, DEFAULT_TRIALS
    from tests.lake.test_query_sandbox import CASES

    cases = tomllib.loads((ROOT / "tests" / "corpus" / "cases.toml").read_text())["case"]
    by = Counter(c["outcome"] for c in cases)
    writers = Counter(p.split(":")[0] for p in POINTS)
    rows = [
        ("bad-input corpus (`tests/corpus/cases.toml`, `tests/test_corpus.py`)",
         f"{len(cases)} cases: " + ", ".join(f"{by[k]} {k}" for k in ("error", "quarantine", "flag", "ok"))),
        ("SQL sandbox escape attempts (`tests/lake/test_query_sandbox.py`)", f"{len(CASES)} refused"),
        ("named fault points, each SIGKILLed (`alphatwin/lake/faults.py`)",
         f"{len(POINTS)}: " + ", ".join(f"{n} {w}" for w, n in writers.items())),
        ("SIGKILL at a random moment of `alphatwin ingest csv` (gate on)",
         f"{DEFAULT_TRIALS} trials by default, {ALL_TRIALS} with `-m slow`"),
        ("SIGKILL at a random moment of `alphatwin build` (incremental / full, alternating)",
         f"{DEFAULT_TRIALS} trials by default, {ALL_TRIALS} with `-m slow`"),
    ]
    return "| what | count |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def render(text: str) -> str:
    return re.sub(r"<!-- counts:start -->.*<!-- counts:end -->",
                  lambda _: f"<!-- counts:start -->\n{counts()}<!-- counts:end -->", text, flags=re.S)


if __name__ == "__main__":
    new = render(PAGE.read_text())
    if "--check" in sys.argv:
        sys.exit(0 if new == PAGE.read_text() else 1)
    PAGE.write_text(new)
