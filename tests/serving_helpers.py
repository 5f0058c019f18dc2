"""Shared helpers for serving tests: a store made by the training code, app builders."""

from pathlib import Path

from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.schema import FEATURES


def train_into(store: str | Path, *, seed_rows: int = 20_000, promote: bool = False) -> None:
    """Run `fraud train --synthetic` into `store` (fast: few trees)."""
    args = ["train", "--synthetic", "--synthetic-rows", str(seed_rows), "--store", str(store)]
    args += ["--trees", "8", "--promote" if promote else "--no-promote"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def transaction(**overrides: object) -> dict[str, object]:
    """A plausible transaction body with every feature field."""
    body: dict[str, object] = {name: 0.1 * i for i, name in enumerate(FEATURES)}
    body["Amount"] = 42.5
    body.update(overrides)
    return body
