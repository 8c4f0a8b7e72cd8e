"""Expectation suites: GX ``ExpectationSuite`` JSON files in ``expectations/<name>.json``, versioned in git.

A suite file is what GX's ``ExpectationSuite.to_json_dict()`` writes, plus AlphaTwin's notes in
each expectation's ``meta``: ``name`` (a short stable name, used in quarantine and flag tables),
``rule`` (the issue rule it implements) and ``severity``:

* ``error``: the row is quarantined (GX severity ``critical``);
* ``warning``: the row is kept and flagged (GX severity ``warning``);
* ``info``: recorded only (GX severity ``info``);
* ``batch``: a table-level expectation; failing it rejects the whole batch (GX ``critical``).

The suite's own ``meta.parameters`` holds the defaults of its ``$PARAMETER`` placeholders
(outlier ``k`` and window, jump threshold...); the runner fills in the run-time ones (``now``,
the requested range, the interval).

Every validation run records the suite's :attr:`LoadedSuite.sha256`: the SHA-256 of the file's
canonical JSON bytes (keys sorted, no whitespace, UTF-8), so reformatting or line endings do
not change it but any change of content does. Loading and hashing never import GX.

>>> spec = load_suite("raw_bars")
>>> spec.name, len(spec.sha256)
('raw_bars', 64)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphatwin.errors import QualityError

__all__ = ["LoadedSuite", "SEVERITIES", "expectations_dir", "load_suite", "canonical_sha256"]

#: AlphaTwin severity -> GX ``severity`` it must be paired with in the suite file.
SEVERITIES: dict[str, str] = {"error": "critical", "warning": "warning", "info": "info", "batch": "critical"}

_ENV = "ALPHATWIN_EXPECTATIONS"
_REPO_DIR = Path(__file__).resolve().parents[2] / "expectations"


@dataclass(frozen=True)
class LoadedSuite:
    """One suite file, parsed and checked (GX is not imported until :meth:`to_gx`)."""

    name: str
    path: Path
    sha256: str
    document: dict[str, Any] = field(repr=False, compare=False)

    @property
    def expectations(self) -> list[dict[str, Any]]:
        """The expectation entries (``type``, ``kwargs``, ``meta``, ``severity``) in file order."""
        return list(self.document["expectations"])

    @property
    def parameters(self) -> dict[str, Any]:
        """Defaults of the suite's ``$PARAMETER`` placeholders (``meta.parameters``)."""
        return dict(self.document.get("meta", {}).get("parameters", {}))

    def to_gx(self) -> Any:
        """A GX ``ExpectationSuite`` of this file (imports GX and the custom expectations).

        Raises
        ------
        QualityError
            GX rejects the suite (an unknown expectation type, a bad keyword).
        """
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        import alphatwin.quality.custom_expectations  # noqa: F401 - registers the custom types

        # ExpectationSuite(expectations=[...]) logs and drops an invalid expectation; build each
        # one here so that a bad entry is an error naming it.
        expectations = []
        for entry in copy.deepcopy(self.expectations):
            try:
                expectations.append(ExpectationConfiguration(**entry).to_domain_obj())
            except Exception as exc:  # GX raises a mix of pydantic and its own errors
                raise QualityError(
                    f"suite {self.name!r} ({self.path}) is not a valid GX suite: {entry['meta']['name']} "
                    f"({entry['type']}): {exc}", suite=self.name, path=str(self.path),
                ) from None
        meta = copy.deepcopy(self.document.get("meta"))
        return gx.ExpectationSuite(name=self.name, expectations=expectations, meta=meta, notes=self.document.get("notes"))


def expectations_dir(directory: str | Path | None = None) -> Path:
    """The folder holding the suites.

    Looked up as ``directory`` (when given), then ``$ALPHATWIN_EXPECTATIONS``, then the
    repository's ``expectations/`` next to the ``alphatwin`` package (a clone, installed
    editable), then ``./expectations``.

    Raises
    ------
    QualityError
        None of them is a folder.
    """
    if directory is not None:
        candidates = [Path(directory)]
    else:
        candidates = [Path(p) for p in (os.environ.get(_ENV),) if p] + [_REPO_DIR, Path.cwd() / "expectations"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise QualityError(f"no expectations folder found (looked in {tried}); set ${_ENV} or pass `directory`")


def canonical_sha256(document: Any) -> str:
    """SHA-256 of ``document`` as canonical JSON (sorted keys, compact separators, UTF-8)."""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def load_suite(name: str = "raw_bars", *, directory: str | Path | None = None) -> LoadedSuite:
    """Load and check ``<expectations>/<name>.json``.

    Parameters
    ----------
    name
        Suite name: the file's stem and its ``name`` field.
    directory
        Folder of the suites (default: see :func:`expectations_dir`).

    Raises
    ------
    QualityError
        The file is missing, not JSON, or not a suite AlphaTwin can run (see the module docstring).
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise QualityError(f"`suite` must be a plain suite name like 'raw_bars', got {name!r}", suite=name)
    folder = expectations_dir(directory)
    path = folder / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json"))
        raise QualityError(
            f"suite {name!r} not found: no {path} (known suites: {', '.join(known) or 'none'})", suite=name, path=str(path)
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise QualityError(f"cannot read suite {path}: {exc}", suite=name, path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise QualityError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}", suite=name, path=str(path)) from None
    _check_document(document, name, path)
    return LoadedSuite(name=name, path=path, sha256=canonical_sha256(document), document=document)


def _check_document(doc: Any, name: str, path: Path) -> None:
    """Structural checks GX does not make: names, severities, AlphaTwin's meta notes."""

    def fail(message: str) -> QualityError:
        return QualityError(f"{path}: {message}", suite=name, path=str(path))

    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise fail("a suite must be a JSON object with an `expectations` list")
    if doc.get("name") != name:
        raise fail(f"suite `name` is {doc.get('name')!r}; it must match the file name {name!r}")
    if not isinstance(doc.get("meta", {}).get("parameters", {}), dict):
        raise fail("`meta.parameters` must be an object of parameter defaults")
    seen: set[str] = set()
    for i, exp in enumerate(doc["expectations"]):
        where = f"expectation #{i + 1}"
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str) or not isinstance(exp.get("kwargs"), dict):
            raise fail(f"{where}: needs a `type` string and a `kwargs` object")
        meta = exp.get("meta") or {}
        short = meta.get("name")
        if not isinstance(short, str) or not short:
            raise fail(f"{where} ({exp['type']}): `meta.name` (a short stable name) is missing")
        if short in seen:
            raise fail(f"{where}: `meta.name` {short!r} is used twice")
        seen.add(short)
        severity = meta.get("severity")
        if severity not in SEVERITIES:
            raise fail(f"{short}: `meta.severity` must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        if exp.get("severity", "critical") != SEVERITIES[severity]:
            raise fail(f"{short}: GX `severity` {exp.get('severity')!r} does not match meta severity {severity!r} "
                       f"(expected {SEVERITIES[severity]!r})")
        if not isinstance(meta.get("rule"), str):
            raise fail(f"{short}: `meta.rule` (the issue rule it implements) is missing")


def rules_markdown(name: str = "raw_bars", *, directory: str | Path | None = None) -> str:
    """The suite as a Markdown table (name, severity, GX expectation, rule), for the docs.

    ``docs/quality.md`` embeds this table; a test regenerates it so the docs never drift from
    ``expectations/``.
    """
    spec = load_suite(name, directory=directory)
    lines = [
        f"<!-- generated from expectations/{name}.json (sha256 {spec.sha256[:12]}); "
        "regenerate with `make quality-docs` -->",
        "",
        "| # | name | severity | GX expectation | rule |",
        "|---|---|---|---|---|",
    ]
    for i, exp in enumerate(spec.document["expectations"], 1):
        meta = exp.get("meta", {})
        rule = str(meta.get("rule", "")).replace("|", "\\|")
        lines.append(f"| {i} | `{meta.get('name', '')}` | {meta.get('severity', '')} | `{exp['type']}` | {rule} |")
    params = spec.document.get("meta", {}).get("parameters", {})
    if params:
        lines += ["", "Parameters: " + ", ".join(f"`{k}` = {v}" for k, v in params.items()) + "."]
    return "\n".join(lines) + "\n"
