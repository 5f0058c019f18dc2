"""Datasets: load from a path or s3:// URI, validate the schema, split by time, synthesise."""

import gzip
import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .errors import DataValidationError, StoreError
from .progress import description_column, progress_display
from .schema import COLUMNS, FEATURES, LABEL
from .terminal import console

GZIP_MAGIC = b"\x1f\x8b"
FEATURE_DTYPES = dict.fromkeys(FEATURES, np.float64)
CHUNK = 1 << 20
SHOWN_ROWS = 5
"""How many faulty rows an error message lists before it only counts them."""
ROW_NUMBERING = "numbered from 1 after the header"
EXPECTED = "expected exactly: Time, V1..V28, Amount, Class"
NOT_FOUND_CODES = ("NoSuchKey", "NoSuchBucket", "404")
# Errors that mean the bytes are not a CSV (or not a whole gzip), as opposed to a bad value.
UNREADABLE = (
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
)

err = console(stderr=True)

MIN_SAMPLES = 1000
"""The fewest rows a dataset may have to be trained on."""


def load_dataset(uri: str, progress: bool = False) -> pd.DataFrame:
    """A CSV or gzipped CSV (told by its magic bytes, not its name) from a path or s3:// URI.

    Values are returned as read: call `validate` next. `progress` shows bytes read on stderr.
    """
    with _progress_bar(progress) as bar, _opened(uri, bar) as source:
        name = uri.rsplit("/", 1)[-1]
        task = bar.add_task(f"Reading {name}", total=os.fstat(source.fileno()).st_size)
        df = _read_csv(bar.wrap_file(source, task_id=task), uri)
        bar.update(task, description=f"Read {len(df):,} rows of {name}")
    return df


def _progress_bar(show: bool) -> Progress:
    """Bytes read so far, on stderr; a disabled bar costs nothing, so callers need no branch."""
    columns = (description_column(), BarColumn(), DownloadColumn())
    speed = (TransferSpeedColumn(), TimeRemainingColumn())
    return progress_display(err, *columns, *speed, show=show, in_bytes=True)


@contextmanager
def _opened(uri: str, bar: Progress) -> Iterator[BinaryIO]:
    """A seekable binary file with the bytes behind `uri` (an S3 object goes to a temp file)."""
    if uri.startswith("s3://"):
        with tempfile.TemporaryFile() as copy:
            _download(uri, copy, bar)
            copy.seek(0)
            yield copy
        return
    path = Path(uri)
    if not path.is_file():
        raise DataValidationError(f"dataset not found: {uri} (no such file)")
    with path.open("rb") as source:
        yield source


def _download(uri: str, target: BinaryIO, bar: Progress) -> None:
    """Copy the S3 object at `uri` into `target` (standard credential chain, AWS_ENDPOINT_URL)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise DataValidationError(f"not an s3://bucket/key URI: {uri}")
    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        task = bar.add_task(f"Downloading {key}", total=response["ContentLength"])
        for chunk in response["Body"].iter_chunks(CHUNK):
            target.write(chunk)
            bar.advance(task, len(chunk))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in NOT_FOUND_CODES:
            raise DataValidationError(f"dataset not found: {uri} ({code})") from exc
        raise StoreError(f"cannot read dataset {uri}: {_one_line(exc)}") from exc
    except BotoCoreError as exc:
        raise StoreError(f"cannot read dataset {uri}: {_one_line(exc)}") from exc


def _read_csv(source: BinaryIO, uri: str) -> pd.DataFrame:
    """Parse the CSV; a file that is not CSV (or a broken gzip) is a DataValidationError."""
    try:
        return _typed_or_as_found(source)
    except UNREADABLE as exc:
        raise DataValidationError(f"{uri}: not a readable CSV ({_one_line(exc)})") from exc


def _typed_or_as_found(source: BinaryIO) -> pd.DataFrame:
    """Features parsed straight to float64 in one fast pass; re-read as found if one is text."""
    try:
        return pd.read_csv(_decompressed(source), dtype=FEATURE_DTYPES)
    except UNREADABLE:
        raise
    except ValueError:
        # Text in a numeric column: keep it so validate() can name the column and rows.
        return pd.read_csv(_decompressed(source), low_memory=False)


def _decompressed(source: BinaryIO) -> BinaryIO | gzip.GzipFile:
    """`source` from its start, gunzipped when it begins with the gzip magic bytes."""
    source.seek(0)
    magic = source.read(len(GZIP_MAGIC))
    source.seek(0)
    return gzip.GzipFile(fileobj=source, mode="rb") if magic == GZIP_MAGIC else source


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def validate(df: pd.DataFrame, min_samples: int = MIN_SAMPLES) -> None:
    """Raise DataValidationError naming the column and rows at fault; return None when valid."""
    _check_columns(df)
    for column in COLUMNS:
        _check_numbers(df[column], column)
    _check_rows(df["Amount"] < 0, "Amount", "negative amount")
    _check_rows(~df[LABEL].isin([0, 1]), LABEL, "value not 0 or 1")
    if len(df) < min_samples:
        raise DataValidationError(
            f"too few rows: {len(df):,}, need at least {min_samples:,} (--min-samples)"
        )
    frauds = int(df[LABEL].sum())
    if frauds == 0:
        raise DataValidationError(f"column {LABEL}: no frauds (1) in {len(df):,} rows")
    if frauds == len(df):
        raise DataValidationError(f"column {LABEL}: no legitimate rows (0) in {len(df):,} rows")


def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(missing)} ({EXPECTED})")
    extra = [str(c) for c in df.columns if c not in COLUMNS]
    if extra:
        raise DataValidationError(f"unexpected column(s): {', '.join(extra)} ({EXPECTED})")


def _check_numbers(values: "pd.Series[Any]", column: str) -> None:
    """Every value of the column is a finite number."""
    _check_rows(values.isna(), column, "empty or NaN")
    numbers = values
    if not pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        _check_rows(numbers.isna(), column, "text instead of a number")
    _check_rows(~np.isfinite(numbers.to_numpy(dtype=np.float64)), column, "infinite value")


def _check_rows(bad: "pd.Series[bool] | np.ndarray[Any, Any]", column: str, problem: str) -> None:
    """Raise when any row is bad: 'column V3: empty or NaN in 2 rows: data rows 42, 1001 (...)'."""
    rows = np.flatnonzero(np.asarray(bad))
    if len(rows) == 0:
        return
    shown = ", ".join(str(r + 1) for r in rows[:SHOWN_ROWS])
    more = ", ..." if len(rows) > SHOWN_ROWS else ""
    s = "s" if len(rows) > 1 else ""
    raise DataValidationError(
        f"column {column}: {problem} in {len(rows):,} row{s}: data row{s} {shown}{more} "
        f"({ROW_NUMBERING})"
    )


def time_split(
    df: pd.DataFrame, history_fraction: float = 0.8
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first `history_fraction` of rows by Time (history) and the rest (new data)."""
    if not 0 < history_fraction < 1:
        raise ValueError(f"history_fraction must be between 0 and 1, not {history_fraction}")
    ordered = df.sort_values("Time", kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * history_fraction)
    return ordered.iloc[:cut], ordered.iloc[cut:]


def dataset_fingerprint(df: pd.DataFrame) -> dict[str, Any]:
    """Rows, frauds, and the sha256 of the values as little-endian float64 in schema order.

    Row by row over COLUMNS, so it ignores the file format, compression and column order.
    """
    values = np.ascontiguousarray(df.loc[:, list(COLUMNS)].to_numpy(dtype="<f8"))
    return {
        "rows": len(df),
        "frauds": int(df[LABEL].sum()),
        "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
    }


def make_synthetic(rows: int = 50_000, fraud_rate: float = 0.00173, seed: int = 0) -> pd.DataFrame:
    """Generated data of the real schema, for offline use only (marked `attrs['synthetic']`)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=np.int64)
    y[rng.choice(rows, size=max(2, round(rows * fraud_rate)), replace=False)] = 1
    v = rng.normal(size=(rows, 28))
    # Frauds shift the components that separate best in the real data (V14, V17, V12, V10,
    # V4), each fraud by its own random strength, so weak frauds overlap legitimate rows.
    shift = np.zeros(28)
    shift[[13, 16, 11, 9, 3]] = [-4.0, -3.5, -3.0, -2.5, 2.5]
    v += np.outer(y, shift) * rng.uniform(0.3, 1.2, size=(rows, 1))
    frame = pd.DataFrame(v, columns=[f"V{i}" for i in range(1, 29)])
    frame.insert(0, "Time", np.sort(rng.uniform(0, 172_792, rows)).round())
    frame["Amount"] = np.round(rng.lognormal(3.0, 1.3, rows) * np.where(y == 1, 1.5, 1.0), 2)
    frame[LABEL] = y
    frame.attrs["synthetic"] = True
    return frame
