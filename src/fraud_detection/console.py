"""The consoles every command prints to, and how product errors reach the user."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from .errors import FraudError

err = Console(stderr=True)
out = Console()


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn product errors into one line on stderr and the documented exit code."""
    try:
        yield
    except FraudError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
