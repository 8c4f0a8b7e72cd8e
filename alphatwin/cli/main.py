"""The ``alphatwin`` command: one sub-command module per pipeline stage.

Heavy libraries (Polars, DuckDB, yfinance) are imported inside the commands so ``--help``
stays fast. Any :class:`~alphatwin.errors.AlphaTwinError` becomes one ``Error: ...`` line on
stderr and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from alphatwin.cli import backtest, demo, ingest, init, models, quality, report, sql, status, strategies, validate, verify
from alphatwin.cli.common import State
from alphatwin.errors import AlphaTwinError

__all__ = ["app", "run"]


def _log_error(exc: BaseException, message: str, **kwargs: Any) -> None:
    """The error in the JSON log (file only: stderr gets the one red line)."""
    from alphatwin.log import file_logging

    if file_logging() is not None:
        import logging

        logging.getLogger("alphatwin.cli").error(
            message, type(exc).__name__, exc, extra={"file_only": True, "error_type": type(exc).__name__,
                                                    "status": "failed"}, **kwargs)


def _finished(ctx: click.Context, code: int | None, t0: float) -> None:
    """The command's last JSON record (exit code, wall time); then the log handlers close."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State) or not obj.logging_started:
        return
    from alphatwin.log import detach, file_logging

    code = 0 if code is None else code
    if file_logging() is not None:
        import logging

        wall = time.perf_counter() - t0
        logging.getLogger("alphatwin.cli").info(
            "finished: exit %d in %.2fs", code, wall,
            extra={"file_only": True, "status": "ok" if code == 0 else "failed", "exit_code": code,
                   "wall_s": round(wall, 4)})
    detach()
    obj.logging_started = False


class _ErrorsAsOneLine(TyperGroup):
    """Turns AlphaTwin errors raised by any sub-command into one line on stderr, exit 1; logs the
    command's start, errors and end in the JSON log."""

    def invoke(self, ctx: click.Context) -> Any:
        t0 = time.perf_counter()
        ctx.meta["alphatwin.args"] = [*getattr(ctx, "_protected_args", []), *ctx.args]  # gone by the callback
        try:
            result = self._invoke(ctx)
        except click.exceptions.Exit as exc:
            _finished(ctx, exc.exit_code, t0)
            raise
        except click.ClickException as exc:
            _finished(ctx, exc.exit_code, t0)
            raise
        except BaseException:
            _finished(ctx, 1, t0)
            raise
        _finished(ctx, 0, t0)
        return result

    def _invoke(self, ctx: click.Context) -> Any:
        from alphatwin.log import redact

        try:
            return super().invoke(ctx)
        except AlphaTwinError as exc:
            _log_error(exc, "%s: %s")
            obj = ctx.find_root().obj
            if isinstance(obj, State) and obj.debug:
                raise
            typer.secho(f"Error: {redact(str(exc))}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("Error: interrupted", fg="red", err=True)
            raise typer.Exit(130) from None
        except (click.exceptions.Exit, click.ClickException, typer.Exit, typer.Abort, TyperException):
            raise  # usage errors (bad or missing flags) keep Typer's own message and exit code 2
        except BrokenPipeError:  # `alphatwin sql ... | head`: the reader left; not an error
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except BaseException as exc:  # a bug, not a bad input: say so in one line, keep the traceback in the log
            if isinstance(exc, (SystemExit, GeneratorExit)):
                raise
            obj = ctx.find_root().obj
            if isinstance(obj, State) and obj.debug:
                raise
            _log_error(exc, "unexpected %s: %s", exc_info=True)  # the JSON log keeps the traceback
            text = redact(str(exc))
            typer.secho(f"Error: unexpected {type(exc).__name__}: {text.splitlines()[0] if text else ''} "
                        "(this is a bug; rerun with --debug for the traceback)", fg="red", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_ErrorsAsOneLine,
    name="alphatwin",
    help=(
        "AlphaTwin: raw market data -> immutable Parquet lake -> DuckDB warehouse -> research.\n\n"
        "Example: alphatwin demo"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"alphatwin {version('alphatwin')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    warehouse: Annotated[str | None, typer.Option("--warehouse", "-w", help="Warehouse directory (default: $ALPHATWIN_WAREHOUSE, then [warehouse] path in alphatwin.toml, then ./warehouse).", show_default=False)] = None,
    config: Annotated[str | None, typer.Option("--config", help="Configuration file (default: $ALPHATWIN_CONFIG, then ./alphatwin.toml).", show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log lines on stderr: -v info, -vv debug (debug also in the JSON log). Default: warnings and errors.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr (the JSON log under <warehouse>/logs/ is unchanged).")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Wait up to SECONDS for another writer to finish instead of failing with 'warehouse busy'.", min=0, show_default=False)] = 0.0,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """AlphaTwin command line."""
    from alphatwin.lake.lock import set_default_wait

    set_default_wait(wait)  # always: CliRunner runs many commands in one process
    st = State(warehouse=warehouse, config=config, debug=debug, verbosity=-1 if quiet else verbose)
    ctx.obj = st
    rest = ctx.meta.get("alphatwin.args", [])
    if ctx.resilient_parsing or not rest or any(a in ("-h", "--help") for a in rest):
        return  # help: nothing to log
    st.begin_logging(rest)


app.command("init")(init.init_command)
app.add_typer(ingest.app, name="ingest")
app.command("status")(status.status_command)
app.command("sql")(sql.sql_command)
app.command("validate")(validate.validate_command)
app.command("build")(models.build_command)
app.command("models")(models.models_command)
app.add_typer(quality.app, name="quality")
app.command("backtest")(backtest.backtest_command)
app.command("sweep")(backtest.sweep_command)
app.command("strategies")(strategies.strategies_command)
app.command("pairs")(strategies.pairs_command)
app.command("report")(report.report_command)
app.command("verify")(verify.verify_command)
app.command("demo")(demo.demo_command)


def run() -> None:
    """Console-script entry point."""
    app()
