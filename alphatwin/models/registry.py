"""Find every model, SQL and Python, and check that the graph they form is complete.

SQL models
    ``sql/<schema>/<table>.sql`` builds ``<schema>.<table>``. The folder and the file stem must
    be lower-case identifiers (``[a-z_][a-z0-9_]*``); a ``.sql`` file anywhere else under
    ``sql/`` is an error. Hidden folders are skipped.

Python models (the Hamilton rule)
    A function decorated with :func:`model` whose name is ``<schema>__<table>`` (the first
    double underscore separates the schema from the table) builds ``<schema>.<table>``; each of
    its parameters, named the same way, is a table it reads. It receives one Polars
    ``LazyFrame`` per parameter and returns a ``LazyFrame`` or ``DataFrame``::

        @model
        def features__range(clean__bars: pl.LazyFrame) -> pl.LazyFrame:
            '''One row per (symbol, ts): the bar's high-low range.'''
            return clean__bars.select("symbol", "ts", (pl.col("high") - pl.col("low")).alias("range"))

    The decorator only marks the function (it stays a plain function, easy to unit-test);
    :func:`discover` imports the modules of ``alphatwin.transforms`` and collects the marked
    functions defined in them.

Upstream tables that are not models (``raw.bars``, ``quality.accepted_bars``, ``meta.*``) are
external sources: valid when they exist in the warehouse (:meth:`Registry.validate`). Models
may not build tables in the schemas the lake and the quality gate own (:data:`RESERVED_SCHEMAS`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from alphatwin.errors import ModelError
from alphatwin.models.dag import DAG
from alphatwin.models.parse import parse_sql_file

__all__ = ["Model", "Registry", "model", "discover", "sql_models", "python_model", "warehouse_relations",
           "default_sql_root", "RESERVED_SCHEMAS", "DEFAULT_PYTHON_MODULES"]

RESERVED_SCHEMAS = frozenset({"meta", "raw", "quality", "main", "information_schema", "pg_catalog"})
DEFAULT_PYTHON_MODULES = ("alphatwin.transforms",)
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_MARK = "__alphatwin_model__"
_OPTIONS = "__alphatwin_model_options__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Model:
    """One model: the table it builds, what it reads and how it is computed.

    ``inputs`` lists the tables a Python model reads in parameter order (empty for SQL);
    ``sha256`` hashes the SQL file or the function's source.
    """

    name: str
    kind: str
    depends_on: frozenset[str]
    path: Path | None
    description: str
    sha256: str
    sql: str | None = None
    func: Callable[..., Any] | None = None
    inputs: tuple[str, ...] = ()
    line: int | None = None
    materialized: str = "table"
    partition_by: str | None = None
    order_by: tuple[str, ...] = ()
    virtual: tuple[tuple[str, str], ...] = ()
    updater: Callable[..., Any] | None = None
    wants_settings: bool = False
    fingerprint: Callable[..., str] | None = None

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


def model(func: F | None = None, *, partition_by: str | None = None, order_by: tuple[str, ...] = (),
          virtual: dict[str, str] | None = None,
          incremental: Callable[..., Any] | None = None,
          fingerprint: Callable[..., str] | None = None) -> Any:
    """Mark ``func`` as a Python model (see the module docstring for the naming rule).

    The name is checked at once, so a badly named model fails at import with its file and line.

    Parameters
    ----------
    partition_by
        A column (``symbol``) the model's output depends on one value at a time: a full build
        then reads its inputs and runs the function one range of values at a time, appending
        each result, which bounds memory on large warehouses.
    order_by
        Columns the inputs are read sorted by (DuckDB sorts them, faster than Polars would).
    virtual
        Output columns stored as DuckDB virtual generated columns (name -> SQL expression over the
        other columns): computed when read, never written (``clean.bars``' adjusted prices).
    incremental
        ``update(ctx: IncrementalContext) -> Changes``: brings the model's table up to date with
        what changed in the lake since its last build (see :mod:`alphatwin.models.incremental`).
        Used by ``build`` unless ``--full-refresh``, when the table exists and the model's code
        and settings are those of its last build.
    fingerprint
        ``fingerprint(settings) -> str``: the part of the settings the model's output depends
        on; a change forces a full refresh.

    A parameter named ``settings`` (not a table) receives the :class:`~alphatwin.config.Settings`.
    """
    def mark(f: F) -> F:
        setattr(f, _OPTIONS, {"partition_by": partition_by, "order_by": tuple(order_by), "updater": incremental,
                              "fingerprint": fingerprint, "virtual": tuple((virtual or {}).items())})
        python_model(f)
        setattr(f, _MARK, True)
        return f

    return mark(func) if func is not None else mark


def _table_of(identifier: str) -> str | None:
    """``clean__bars`` -> ``clean.bars``; None when ``identifier`` does not follow the rule."""
    schema, sep, table = identifier.partition("__")
    if not sep or not _IDENT.fullmatch(schema) or not _IDENT.fullmatch(table):
        return None
    return f"{schema}.{table}"


def python_model(func: Callable[..., Any]) -> Model:
    """The :class:`Model` of a Python model function (marked with :func:`model` or not).

    Raises
    ------
    ModelError
        If the function's name or a parameter does not follow ``<schema>__<table>``, or a
        parameter is ``*args``/``**kwargs`` or has a default.
    """
    path = inspect.getsourcefile(func) or getattr(func, "__module__", "<python>")
    line = func.__code__.co_firstlineno
    name = _table_of(func.__name__)
    if name is None:
        raise ModelError(f"Python model {func.__name__!r} must be named <schema>__<table> "
                         "(lower case, e.g. features__returns)", path=str(path), line=line)
    _check_schema(name, str(path), line)
    inputs: list[str] = []
    wants_settings = False
    for param in inspect.signature(func).parameters.values():
        if param.name == "settings":
            wants_settings = True
            continue
        table = _table_of(param.name)
        plain = param.kind in (param.POSITIONAL_OR_KEYWORD, param.POSITIONAL_ONLY, param.KEYWORD_ONLY)
        if table is None or not plain or param.default is not param.empty:
            raise ModelError(f"parameter {param.name!r} of Python model {name} must name a table it reads "
                             "as <schema>__<table> (e.g. clean__bars), without a default", path=str(path),
                             table=name, line=line)
        inputs.append(table)
    options = getattr(func, _OPTIONS, {})
    try:  # the whole module: a helper it calls changes the model's output as much as the function does
        module = inspect.getmodule(func)
        source = inspect.getsource(module) if module is not None else inspect.getsource(func)
    except (OSError, TypeError):
        source = func.__code__.co_code.hex()
    doc = inspect.getdoc(func) or ""
    return Model(name=name, kind="python", depends_on=frozenset(inputs), path=Path(path),
                 description=doc.split("\n\n", 1)[0].strip(), sha256=hashlib.sha256(source.encode()).hexdigest(),
                 func=func, inputs=tuple(inputs), line=line, partition_by=options.get("partition_by"),
                 order_by=options.get("order_by", ()), virtual=options.get("virtual", ()),
                 updater=options.get("updater"), wants_settings=wants_settings,
                 fingerprint=options.get("fingerprint"))


def _check_schema(name: str, path: str, line: int | None = None) -> None:
    schema = name.split(".", 1)[0]
    if schema in RESERVED_SCHEMAS:
        raise ModelError(f"a model may not build {name}: schema {schema!r} belongs to the lake "
                         f"(reserved: {', '.join(sorted(RESERVED_SCHEMAS))})", path=path, table=name, line=line)


def sql_models(root: Path) -> list[Model]:
    """Every SQL model under ``root`` (``<root>/<schema>/<table>.sql``), sorted by name.

    A missing ``root`` holds no models.
    """
    if not root.is_dir():
        return []
    out: list[Model] = []
    for path in sorted(root.rglob("*.sql")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if len(rel.parts) != 2 or not _IDENT.fullmatch(rel.parts[0]) or not _IDENT.fullmatch(path.stem):
            raise ModelError(f"a SQL model lives at {root.name}/<schema>/<table>.sql with lower-case identifiers "
                             "(e.g. sql/clean/bars.sql)", path=str(path))
        name = f"{rel.parts[0]}.{path.stem}"
        _check_schema(name, str(path))
        parsed = parse_sql_file(path, table=name)
        out.append(Model(name=name, kind="sql", depends_on=parsed.depends_on, path=path,
                         description=parsed.description, sha256=parsed.sha256, sql=parsed.sql,
                         materialized=parsed.materialized))
    return out


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ModelError(f"cannot import Python models from {name}: {exc}") from None


def _modules(spec: str | ModuleType) -> Iterator[ModuleType]:
    """``spec`` and, when it is a package, every module below it."""
    module = _import(spec) if isinstance(spec, str) else spec
    yield module
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{module.__name__}."):
        yield _import(info.name)


def _python_models(sources: Iterable[str | ModuleType | Callable[..., Any]]) -> list[Model]:
    out: list[Model] = []
    for source in sources:
        if callable(source) and not isinstance(source, ModuleType):
            out.append(python_model(source))
            continue
        for module in _modules(source):
            for obj in vars(module).values():
                if getattr(obj, _MARK, False) and getattr(obj, "__module__", None) == module.__name__:
                    out.append(python_model(obj))
    return out


@dataclass
class Registry:
    """Every model by name, with the DAG they form (external sources included as nodes)."""

    models: dict[str, Model]

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def __getitem__(self, name: str) -> Model:
        return self.models[name]

    def dag(self) -> DAG:
        """Models and the sources they read, as a :class:`DAG`."""
        return DAG({name: m.depends_on for name, m in self.models.items()})

    def sources(self) -> set[str]:
        """The upstream tables that are not models (``raw.bars``, ``quality.accepted_bars`` ...)."""
        return {dep for m in self.models.values() for dep in m.depends_on} - set(self.models)

    def validate(self, existing: Iterable[str] | None) -> None:
        """Check every upstream table and the absence of cycles.

        Parameters
        ----------
        existing
            ``schema.table`` names of the warehouse's tables and views (see
            :func:`warehouse_relations`); None skips the check of external sources (no
            warehouse yet).

        Raises
        ------
        ModelError
            Naming the model's file and the unknown table, or printing the cycle.
        """
        known = None if existing is None else {e.lower() for e in existing}
        for name in sorted(self.models):
            m = self.models[name]
            if name in m.depends_on:
                raise ModelError(f"cycle in the model graph: {name} -> {name} ({name} reads itself)",
                                 path=_where(m), table=name, line=m.line)
            for dep in sorted(m.depends_on):
                if known is not None and dep not in self.models and dep not in known:
                    raise ModelError(
                        f"{name} reads unknown table {dep}: it is neither a model (sql/{dep.replace('.', '/')}.sql "
                        f"or a @model function {dep.replace('.', '__')}) nor a table or view in the warehouse",
                        path=_where(m), table=dep, line=m.line)
        self.dag().sorted()


def _where(m: Model) -> str | None:
    return str(m.path) if m.path is not None else None


def discover(sql_root: Path | None, *, python: Iterable[str | ModuleType | Callable[..., Any]] | None = None) -> Registry:
    """Collect the SQL models under ``sql_root`` and the Python models in ``python``.

    Parameters
    ----------
    sql_root
        The ``sql/`` folder (None: no SQL models).
    python
        Module names, modules (packages are walked) or model functions; default
        :data:`DEFAULT_PYTHON_MODULES`.

    Raises
    ------
    ModelError
        On an invalid model, or two models building the same table (naming both files).
    """
    found = sql_models(sql_root) if sql_root is not None else []
    found += _python_models(python_modules() if python is None else python)
    models: dict[str, Model] = {}
    for m in found:
        if m.name in models:
            other = models[m.name]
            if other.func is not None and other.func is m.func:
                continue  # the same function reached twice (a module and its package)
            raise ModelError(f"{m.name} is built by two models: {_where(other)} and {_where(m)}",
                             path=_where(m), table=m.name, line=m.line)
        models[m.name] = m
    return Registry(models)


def python_modules() -> tuple[str, ...]:
    """Where Python models are: ``$ALPHATWIN_PYTHON_MODELS`` (comma-separated module names; empty
    for none), else :data:`DEFAULT_PYTHON_MODULES`."""
    value = os.environ.get("ALPHATWIN_PYTHON_MODELS")
    if value is None:
        return DEFAULT_PYTHON_MODULES
    return tuple(part.strip() for part in value.split(",") if part.strip())


def warehouse_relations(con: Any) -> set[str]:
    """``schema.table`` of every table and view in the connection's current database."""
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND NOT temporary UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
    ).fetchall()
    return {f"{s}.{t}".lower() for s, t in rows}


def default_sql_root(config_file: Path | None = None) -> Path:
    """``sql/`` beside the configuration file when there is one, else ``./sql`` when it exists,
    else the project's own ``sql/`` (beside the ``alphatwin`` package), which holds the models the
    rest of AlphaTwin relies on (``clean.latest_bars`` ...)."""
    base = config_file.parent if config_file is not None else Path.cwd()
    here = (base / "sql").absolute()
    if here.is_dir() or config_file is not None:
        return here
    shipped = Path(__file__).resolve().parents[2] / "sql"
    return shipped if shipped.is_dir() else here
