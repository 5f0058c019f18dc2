"""The rich consoles the product prints through, with markup off: text from users, the store
or an error is shown as it is (`pip install 'fraud-detection[mlflow]'` keeps its `[mlflow]`,
a data path `day[1].csv` its `[1]`). Colour is asked for with `style=` or a `rich.text.Text`,
never with markup in a string."""

from rich.console import Console


def console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console on stdout (or stderr) that prints every string literally."""
    return Console(stderr=stderr, width=width, markup=False)
