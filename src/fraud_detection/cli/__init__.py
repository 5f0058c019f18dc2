"""The `fraud` command: one root group whose subcommands only translate flags into calls on
the package, and the one place product errors become exit codes (SPEC section 11)."""

import sys
from typing import Any

import click

from ..errors import FraudError
from .backtest import backtest_command
from .data import data
from .log import log_group
from .models import models
from .monitor import monitor
from .retrain import retrain_command
from .rollout import rollout_group
from .schedule import schedule_command
from .serve import serve_command
from .simulate import simulate
from .train import train_command

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _report(exc: FraudError) -> None:
    click.echo(f"{click.style('error:', fg='red')} {exc}", err=True)


class ReportingGroup(click.Group):
    """A group whose product errors become one `error:` line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FraudError as exc:
            _report(exc)
            ctx.exit(exc.exit_code)


@click.group(cls=ReportingGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="fraud-detection")
def cli() -> None:
    """Credit-card fraud detection: train, register, serve and monitor a model."""


for command in (
    train_command,
    retrain_command,
    backtest_command,
    models,
    monitor,
    rollout_group,
    simulate,
    serve_command,
    schedule_command,
    data,
    log_group,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the `fraud` console script."""
    cli()


def run_alone(name: str) -> None:
    """The subcommand `name` as a program of its own (model_training.py, retraining.py): usage
    and help name the script alone, and product errors exit as under `fraud`."""
    try:
        cli.commands[name].main(**CONTEXT_SETTINGS)
    except FraudError as exc:
        _report(exc)
        sys.exit(exc.exit_code)
