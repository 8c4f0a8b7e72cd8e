"""Checking the lake against its catalog: ``alphatwin verify`` and the build's refusal.

:func:`verify` re-reads every file ``meta.lake_files`` lists and compares it with what the
ingest recorded when it wrote it: the size and the SHA-256 of the bytes (``quick``: the size and
a readable Parquet footer with the catalogued row count). It reports

- **missing**: catalogued, not on disk;
- **corrupt**: on disk, but the size, the checksum or the footer disagrees;
- **unknown**: a file under ``lake/`` that the catalog does not list (never read by any query;
  recovery only deletes files of ingests that never committed, so anything else stays for a
  person to look at).

Like every writer it first recovers after killed writers (:func:`~alphatwin.lake.ingest.recover`),
and it records its outcome in ``meta.audit`` (action ``verify``, the findings in ``detail``).

:func:`check_lake_files` is the build's pre-flight: every catalogued file exists with its
catalogued size (a ``stat`` each) and none was found corrupt by the last verification; a build
refuses to start otherwise, naming the file, its ingest and ``alphatwin verify``.
:func:`lake_read_error` turns a DuckDB error that names a lake file into the same kind of error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alphatwin.errors import CatalogError, LakeError
from alphatwin.lake import audit, catalog
from alphatwin.lake.lock import write_lock
from alphatwin.log import get_logger
from alphatwin.paths import WarehousePaths

__all__ = ["Finding", "VerifyReport", "verify", "check_lake_files", "lake_read_error"]

log = get_logger("verify")

CHUNK = 1 << 20
LISTED = 1000  # findings of each kind kept in the audit row's detail
KINDS = ("missing", "corrupt", "unknown")
ProgressFn = Callable[..., None]


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the lake: ``kind`` is missing, corrupt or unknown."""

    kind: str
    path: str  # relative to the warehouse root
    ingest_id: str | None
    detail: str

    def line(self) -> str:
        owner = f" (ingest {self.ingest_id})" if self.ingest_id else ""
        return f"{self.kind}: {self.path}{owner}: {self.detail}"


@dataclass
class VerifyReport:
    """What :func:`verify` checked and found."""

    files: int = 0          # catalogued files checked
    bytes: int = 0          # bytes read (full) or catalogued bytes checked (quick)
    quick: bool = False
    wall_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        return {k: sum(f.kind == k for f in self.findings) for k in KINDS}

    def summary(self) -> str:
        c = self.counts()
        mode = "sizes and footers" if self.quick else "sizes and sha256"
        verdict = "clean" if self.ok else ", ".join(f"{n} {k}" for k, n in c.items() if n)
        return (f"verify: {self.files:,} lake file(s), {self.bytes:,} bytes checked ({mode}) "
                f"in {self.wall_s:.2f}s: {verdict}")

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": self.files, "bytes": self.bytes, "quick": self.quick,
                "wall_s": round(self.wall_s, 3), **self.counts(),
                "findings": [f.__dict__ for f in self.findings]}


def verify(paths: WarehousePaths, *, quick: bool = False, progress: ProgressFn | None = None) -> VerifyReport:
    """Check every lake file against ``meta.lake_files``; see the module docstring.

    ``progress(n, total=...)`` is called with the bytes checked. Holds the write lock (no ingest
    may publish or commit meanwhile) but not the catalog, so readers keep working.

    Examples
    --------
    >>> verify(WarehousePaths(Path("warehouse"))).findings  # doctest: +SKIP
    []
    """
    from alphatwin.lake.ingest import recover

    if not paths.db.exists():
        raise CatalogError(f"no warehouse at {paths.root} (run `alphatwin init` or an ingest first)")
    t0 = time.perf_counter()
    report = VerifyReport(quick=quick)
    query = "SELECT path, ingest_id, bytes, sha256, rows FROM meta.lake_files ORDER BY path"
    with write_lock(paths):
        writable = True
        try:
            with catalog.connect(paths) as con:
                recover(con, paths)
                listed = con.execute(query).fetchall()
        except Exception as exc:  # opening for writing re-binds raw.bars when the warehouse moved
            if lake_read_error(exc, paths) is None:
                raise
            writable = False
            with catalog.connect(paths, read_only=True) as con:
                listed = con.execute(query).fetchall()
        if progress is not None:
            progress(0, total=sum(r[2] for r in listed))
        for path, ingest_id, size, sha256, rows in listed:
            problem, read = _check(paths, path, size, sha256, rows, quick, progress)
            report.files += 1
            report.bytes += read
            if problem is not None:
                kind = "missing" if problem.startswith("not on disk") else "corrupt"
                report.findings.append(Finding(kind, path, ingest_id, problem))
        known = {r[0] for r in listed}
        for f in sorted(paths.lake.rglob("*")) if paths.lake.exists() else []:
            rel = paths.relative(f)
            if rel not in known and not f.is_dir():
                report.findings.append(Finding("unknown", rel, _owner(f.name),
                                               "on disk under lake/ but not in the catalog (never read)"))
        report.wall_s = time.perf_counter() - t0
        if not writable:
            log.warning("the catalog cannot be opened for writing while a lake file is damaged: "
                        "this verification is not recorded in meta.audit")
            return report
        with catalog.connect(paths) as con:
            con.execute("BEGIN TRANSACTION")
            audit.record(con, "verify", object="lake", files=report.files, bytes=report.bytes,
                         status="ok" if report.ok else "failed", detail=_detail(report))
            con.execute("COMMIT")
    return report


def _check(paths: WarehousePaths, rel: str, size: int, sha256: str, rows: int, quick: bool,
           progress: ProgressFn | None) -> tuple[str | None, int]:
    """What is wrong with one catalogued file (None when nothing), and the bytes read."""
    full = paths.root / rel
    try:
        actual = full.stat().st_size
    except FileNotFoundError:
        _advance(progress, size)
        return "not on disk", 0
    except OSError as exc:
        _advance(progress, size)
        return f"cannot stat: {exc.strerror}", 0
    if actual != size:
        _advance(progress, size)
        return f"size {actual:,} bytes, catalogued {size:,}", 0
    try:
        if quick:
            _advance(progress, size)
            return _footer_problem(full, rows), size
        digest = hashlib.sha256()
        with full.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                _advance(progress, len(chunk))
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}", 0
    if digest.hexdigest() != sha256:
        return f"sha256 {digest.hexdigest()[:16]}..., catalogued {sha256[:16]}...", size
    return None, size


def _footer_problem(path: os.PathLike[str], rows: int) -> str | None:
    """A Parquet file's magic bytes, footer and row count (``--quick``)."""
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(-8, os.SEEK_END)
        tail = fh.read(8)
    if head != b"PAR1" or tail[4:] != b"PAR1":
        return "not a Parquet file (magic bytes missing)"
    try:
        found = pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # pyarrow raises several kinds on a damaged footer
        return f"unreadable Parquet footer: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if found != rows:
        return f"footer says {found:,} rows, catalogued {rows:,}"
    return None


def _advance(progress: ProgressFn | None, n: int) -> None:
    if progress is not None and n:
        progress(n)


_OWNER = re.compile(r"^(ing-.+)-\d{5}\.parquet$")


def _owner(name: str) -> str | None:
    match = _OWNER.match(name)
    return match.group(1) if match else None


def _detail(report: VerifyReport) -> dict[str, Any]:
    detail: dict[str, Any] = {"quick": report.quick, "wall_s": round(report.wall_s, 3), **report.counts()}
    for kind in KINDS:
        detail[f"{kind}_files"] = [f.path for f in report.findings if f.kind == kind][:LISTED]
    return detail


def check_lake_files(con: Any, paths: WarehousePaths) -> None:
    """The build's pre-flight: raise :class:`LakeError` unless every catalogued lake file exists
    with its catalogued size and the last verification found none of them corrupt."""
    rows = con.execute("SELECT path, ingest_id, bytes FROM meta.lake_files ORDER BY path").fetchall()
    bad: list[str] = []
    for path, ingest_id, size in rows:
        try:
            actual = os.stat(paths.root / path).st_size
        except FileNotFoundError:
            bad.append(f"lake file {path} (ingest {ingest_id}) is missing")
            continue
        except OSError as exc:
            bad.append(f"lake file {path} (ingest {ingest_id}) cannot be read ({exc.strerror})")
            continue
        if actual != size:
            bad.append(f"lake file {path} (ingest {ingest_id}) is corrupt: {actual:,} bytes, catalogued {size:,}")
    if not bad:
        owners = {r[0]: r[1] for r in rows}
        for path in sorted(_last_verified_corrupt(con)):
            if path in owners and (paths.root / path).exists():
                bad.append(f"lake file {path} (ingest {owners[path]}) failed its checksum at the last "
                           "`alphatwin verify`")
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise LakeError(f"{bad[0]}{more}; the build reads it and refuses to run: restore the file, "
                        "then run `alphatwin verify`")


def _last_verified_corrupt(con: Any) -> set[str]:
    """Files found corrupt by the latest full verification or by a quick one since (a quick one
    cannot clear a checksum finding: it does not read the bytes)."""
    found: set[str] = set()
    for (raw,) in con.execute("SELECT detail FROM meta.audit WHERE action = 'verify' ORDER BY seq DESC").fetchall():
        detail = raw if isinstance(raw, dict) else json.loads(raw or "{}")
        found.update(detail.get("corrupt_files", []))
        if not detail.get("quick", False):
            break
    return found


def lake_read_error(exc: BaseException, paths: WarehousePaths) -> LakeError | None:
    """A DuckDB error that names a lake file, as a one-line :class:`LakeError` naming the file and
    its ingest (None when ``exc`` names no lake file)."""
    text = str(exc)
    prefix = re.escape(paths.bars.as_posix())
    match = re.search(prefix + r"""/[^"'\s,\]]+\.parquet""", text)
    if match is None:
        return None
    rel = match.group(0)[len(paths.root.as_posix()) + 1:]
    owner = _owner(rel.rsplit("/", 1)[-1])
    ingest = f" (ingest {owner})" if owner else ""
    first = text.strip().split("\n", 1)[0]
    return LakeError(f"cannot read lake file {rel}{ingest}: {first}; run `alphatwin verify`")
