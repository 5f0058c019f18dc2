"""The README documents what the code reads: every setting's variable in its configuration
table, every `fraud` command group in its command list."""

import re

from conftest import REPO
from fraud_detection.cli import cli
from fraud_detection.config import variable_names

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    """The README's text under `## title`, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = [line for line in section("Configuration").splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
    missing = sorted(set(variable_names().values()) - documented)
    assert not missing, f"README.md's Configuration table lacks {missing}"


def test_every_command_is_in_the_command_list() -> None:
    rows = section("The `fraud` command")
    missing = [name for name in cli.commands if f"`fraud {name}" not in rows]
    assert not missing, f"README.md's command table lacks {missing}"
