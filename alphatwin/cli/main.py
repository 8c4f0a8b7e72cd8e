"""The ``alphatwin`` command: one sub-command module per pipeline stage.

Heavy libraries (Polars, DuckDB, yfinance) are imported inside the commands so ``--help``
stays fast. Any :class:`~alphatwin.errors.AlphaTwinError` becomes one ``Error: ...`` line on
stderr and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from alphatwin.cli import backtest, demo, ingest, init, models, quality, report, sql, status, strategies, validate
from alphatwin.cli.common import State
from alphatwin.errors import AlphaTwinError

__all__ = ["app", "run"]


class _ErrorsAsOneLine(TyperGroup):
    """Turns AlphaTwin errors raised by any sub-command into one line on stderr, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AlphaTwinError as exc:
            obj = ctx.find_root().obj
            if isinstance(obj, State) and obj.debug:
                raise
            typer.secho(f"Error: {exc}", fg="red", err=True)
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
            import logging

            if logging.getLogger("alphatwin").handlers:  # the JSON log keeps the traceback
                logging.getLogger("alphatwin.cli").error("unexpected error", exc_info=True,
                                                        extra={"file_only": True})
            typer.secho(f"Error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
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
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log lines on stderr (-v info, -vv debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """AlphaTwin command line."""
    ctx.obj = State(warehouse=warehouse, config=config, debug=debug, verbosity=-1 if quiet else verbose)


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
app.command("demo")(demo.demo_command)


def run() -> None:
    """Console-script entry point."""
    app()
