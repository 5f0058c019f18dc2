"""Progress of the long steps: a live bar on a terminal, plain lines in a log or CI output."""

import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID, TextColumn

STEP = 0.1
"""A line at every tenth of the work..."""
QUIET_SECONDS = 5.0
"""...or after this long without one, whichever comes first."""


def description_column() -> TextColumn:
    """The task's description, shown literally (it may name a user's file)."""
    return TextColumn("{task.description}", markup=False)


def progress_display(
    console: Console,
    *columns: ProgressColumn,
    show: bool = True,
    transient: bool = False,
    in_bytes: bool = False,
) -> Progress:
    """A rich bar when `console` is a terminal; otherwise plain progress lines (no bar, no
    carriage returns, no escape codes), so a piped log shows the step is alive."""
    if show and not console.is_terminal:
        return LineProgress(console, in_bytes=in_bytes)
    return Progress(*columns, console=console, disable=not show, transient=transient)


class LineProgress(Progress):
    """Rich's Progress with its live display off, printing a line per tenth of each task, when
    its description changes, or every few seconds while the total is unknown or the work slow."""

    def __init__(self, console: Console, in_bytes: bool = False) -> None:
        super().__init__(console=console, disable=True)
        self._in_bytes = in_bytes
        self._said: dict[TaskID, tuple[int, str, float]] = {}  # last tenth, description, when

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._say(task_id)

    def update(self, task_id: TaskID, **changes: Any) -> None:
        super().update(task_id, **changes)
        self._say(task_id)

    def _say(self, task_id: TaskID) -> None:
        task = next(t for t in self.tasks if t.id == task_id)
        now = time.monotonic()
        tenth = int(task.completed / task.total / STEP) if task.total else -1
        said = (tenth, task.description)
        if task_id not in self._said and task.completed == 0 and not task.total:
            self._said[task_id] = (*said, now)  # nothing to report yet
            return
        last_tenth, last_description, last_time = self._said.get(task_id, (-2, "", now))
        if said == (last_tenth, last_description) and now - last_time < QUIET_SECONDS:
            return
        self._said[task_id] = (*said, now)
        self.console.print(
            f"{task.description}: {self._amount(task.completed, task.total)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    def _amount(self, completed: float, total: float | None) -> str:
        done = f"{completed / 1e6:.1f} MB" if self._in_bytes else f"{completed:,.0f}"
        if not total:
            return done
        whole = f"{total / 1e6:.1f} MB" if self._in_bytes else f"{total:,.0f}"
        return f"{100 * completed / total:.0f}% ({done} of {whole})"
