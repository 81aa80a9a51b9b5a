"""The `tether` command: the Typer app and its subcommands, in the order help lists them.
Each subcommand is a module of this package; the CLI is the only place that sets up logging
(`tether.cli.log_setup`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tether import __version__
from tether.cli import doctor, drain, pipelines, run, status, studio, up, worker

app = typer.Typer(
    help="Tether: keep a live video stream tethered to a remote GPU worker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (
    worker.worker,
    studio.studio,
    up.up,
    run.run,
    drain.drain,
    status.status,
    doctor.doctor,
    pipelines.pipelines,
):
    app.command()(command)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


def _plain_flags(command: Any) -> Any:
    """Flags take no value, so their help shows none (typer prints `<bool>`)."""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    get_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    return command


def main() -> None:
    command = _plain_flags(typer.main.get_command(app))
    doctor.json_usage_errors(command.commands["doctor"])
    command()
