"""`fraud data`: the dataset."""

from pathlib import Path

import click

from ..config import get_settings
from ..fetch import fetch_dataset


@click.group()
def data() -> None:
    """The dataset: fetch the real one into the local cache."""


@data.command("fetch")
@click.option("--data", "data_uri", help="Use this dataset (path or s3:// URI) instead.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Cache folder.")
def data_fetch(data_uri: str | None, cache_dir: Path | None) -> None:
    """Put the real dataset in the local cache (verified by sha256) and print its path."""
    settings = get_settings(data=data_uri, data_cache=cache_dir)
    click.echo(fetch_dataset(settings.data_cache, data=settings.data))
