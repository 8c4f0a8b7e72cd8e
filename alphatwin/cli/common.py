"""What every command shares: the resolved settings, progress bars on stderr, data output."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from alphatwin.errors import InputError

if TYPE_CHECKING:
    from alphatwin.config import Settings
    from alphatwin.paths import WarehousePaths

__all__ = ["State", "state", "parse_when", "progress_rows", "emit", "stage_command", "FORMATS"]

FORMATS = ("table", "csv", "json", "parquet")
#: Commands that create the warehouse when it does not exist (their JSON log goes into it).
CREATES_WAREHOUSE = ("init", "ingest", "demo")


@dataclass
class State:
    """Options of the top-level command, handed to every sub-command through the context."""

    warehouse: str | None = None
    config: str | None = None
    debug: bool = False
    verbosity: int = 0
    _settings: Any = None
    logging_started: bool = False
    command_line: str = ""

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from alphatwin.config import load_settings

            self._settings = load_settings(self.config, warehouse=self.warehouse)
        return self._settings

    @property
    def paths(self) -> WarehousePaths:
        from alphatwin.paths import WarehousePaths

        return WarehousePaths(self.settings.warehouse)

    def begin_logging(self, args: list[str]) -> None:
        """Start logging for the command ``alphatwin <args>`` (called by the root for every
        command but ``--help``/``--version``): human lines on stderr, JSON lines under
        ``<warehouse>/logs/`` when the warehouse exists or the command creates one."""
        import shlex

        from alphatwin.log import configure, new_run, set_context

        new_run()
        self.command_line = shlex.join(["alphatwin", *args])
        set_context(command=self.command_line)
        configure(None, verbosity=self.verbosity)
        self.logging_started = True
        self.start_logging(create=bool(args) and args[0] in CREATES_WAREHOUSE)

    def start_logging(self, *, create: bool = False) -> None:
        """Attach the JSON log once the warehouse exists (``create``: make its ``logs/`` even
        when it does not yet, for commands that create the warehouse). Never creates a
        warehouse for a command that only reads one."""
        from alphatwin.log import attach_file, configure, get_logger

        if not self.logging_started:
            configure(None, verbosity=self.verbosity)
            self.logging_started = True
        paths = self.paths
        if not (create or paths.db.exists()):
            return
        if attach_file(paths.logs, verbosity=self.verbosity):
            get_logger("cli").info("start: %s", self.command_line or "alphatwin",
                                   extra={"file_only": True, "status": "started"})


def state(ctx: typer.Context) -> State:
    """The :class:`State` of the running command."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def stage_command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command (with a ``ctx`` parameter) so that each run is a stage in
    ``meta.stage_runs`` (wall time, memory, outcome), recorded when the warehouse exists."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from alphatwin.lake.stages import recorded_stage

            st = state(kwargs["ctx"])
            with recorded_stage(name, st.paths, st.command_line):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def parse_when(value: str | None, flag: str) -> dt.datetime | None:
    """Parse a ``--start``/``--end`` value (``2024-01-31`` or ``2024-01-31T14:30``) as naive UTC."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"`{flag}` must be a date like 2020-01-31 (or 2020-01-31T14:30), got {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


@contextmanager
def progress_rows(description: str, total: int | None = None, unit: str = "rows") -> Iterator[Any]:
    """A counting progress bar on stderr; yields ``advance(n, total=None)`` (``total`` sets or
    corrects the bar's total once it is known)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int, total: int | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, n)

        yield advance


def emit(frame: Any, fmt: str, out: Path | None = None) -> None:
    """Write a Polars frame to stdout (or ``out``) as a table, CSV, JSON (records) or Parquet."""
    if fmt not in FORMATS:
        raise InputError(f"`--format` must be one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        _emit(frame, fmt, out)
    except OSError as exc:
        raise InputError(f"cannot write `--out` {out}: {exc.strerror or exc}") from None


def _emit(frame: Any, fmt: str, out: Path | None) -> None:
    if fmt == "parquet":
        if out is None:
            raise InputError("`--format parquet` needs `--out FILE`")
        frame.write_parquet(out)
        return
    if fmt == "csv":
        text = _flat(frame).write_csv()
    elif fmt == "json":
        text = frame.write_json() + "\n"
    else:
        text = _table(frame)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _flat(frame: Any) -> Any:
    """CSV has no nested values: lists become ``a|b|c`` strings, structs JSON."""
    import polars as pl

    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, (pl.List, pl.Array)):
            exprs.append(pl.col(name).list.eval(pl.element().cast(pl.String)).list.join("|").alias(name))
        elif isinstance(dtype, pl.Struct):
            exprs.append(pl.col(name).struct.json_encode().alias(name))
    return frame.with_columns(exprs) if exprs else frame


def _table(frame: Any) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold")
    for name, dtype in frame.schema.items():
        table.add_column(f"{name}\n{dtype}", justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*[Text("NULL" if v is None else _cell(v)) for v in row])  # no markup: data as is
    console = Console(record=True, width=200)
    with console.capture() as cap:
        console.print(table)
        console.print(f"{frame.height} row(s)")
    return cap.get()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)
