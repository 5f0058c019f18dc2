"""Write one benchmark's section of benchmarks/RESULTS.md, leaving the others as they are."""

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by the script named in it; rerun it to refresh.\n"
)


def machine() -> str:
    """One line describing where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(name: str, command: str, body: str) -> None:
    """Replace (or add) the section `name` with `body`, stamped with the command and date."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- {name}:start -->\n## {name}\n\n"
        f"Command: `{command}` — run {stamp} on {machine()}.\n\n{body.strip()}\n"
        f"<!-- {name}:end -->\n"
    )
    pattern = re.compile(
        rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->\n", re.S
    )
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    RESULTS.write_text(text)


def figures_of_test(test: str, variable: str) -> dict[str, Any]:
    """Run one end-to-end test with `variable` naming a file, and return the figures (JSON)
    it leaves there: the benchmark and the test measure one and the same run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:logging", test],
            cwd=RESULTS.parents[1],
            env={**os.environ, variable: str(out)},
            check=True,
        )
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures
