"""Loading (local and S3), validation, the time split, the fingerprint and synthetic data."""

import gzip
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from fraud_detection.data import (
    dataset_fingerprint,
    load_dataset,
    make_synthetic,
    time_split,
    validate,
)
from fraud_detection.errors import DataValidationError, StoreError
from fraud_detection.schema import COLUMNS

ROWS_NOTE = "(numbered from 1 after the header)"


@pytest.fixture(scope="module")
def real(real_data: Path) -> pd.DataFrame:
    return load_dataset(str(real_data))


@pytest.fixture
def small() -> pd.DataFrame:
    return make_synthetic(rows=3000, seed=5)


def written(df: pd.DataFrame, path: Path) -> Path:
    """`df` as a CSV file (gzipped when the name ends in .gz), the way users hand it over."""
    df.to_csv(path, index=False)
    return path


def refusal(df: pd.DataFrame, **kwargs: int) -> str:
    """The one-line message validate() refuses `df` with."""
    with pytest.raises(DataValidationError) as info:
        validate(df, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_real_dataset_loads_with_its_documented_shape(real: pd.DataFrame) -> None:
    assert list(real.columns) == list(COLUMNS)
    assert len(real) == 284_807
    assert int(real["Class"].sum()) == 492
    assert real["Amount"].sum() == pytest.approx(25_162_590.01)
    assert (real.dtypes[list(COLUMNS[:-1])] == np.float64).all()
    validate(real)


def test_time_split_of_the_real_data_matches_the_spec(real: pd.DataFrame) -> None:
    history, new = time_split(real)
    assert (len(history), len(new)) == (227_845, 56_962)
    assert int(new["Class"].sum()) == 75
    assert history["Time"].max() <= new["Time"].min()


def test_time_split_sorts_by_time_and_keeps_the_order_of_ties() -> None:
    df = pd.DataFrame({"Time": [5.0, 1.0, 5.0, 3.0, 1.0], "Amount": [0.0, 1.0, 2.0, 3.0, 4.0]})
    history, new = time_split(df, history_fraction=0.6)
    assert history["Amount"].tolist() == [1.0, 4.0, 3.0]
    assert new["Amount"].tolist() == [0.0, 2.0]


def test_progress_display_reports_the_rows_read(
    small: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load_dataset(str(written(small, tmp_path / "cc.csv.gz")), progress=True)
    assert dataset_fingerprint(loaded) == dataset_fingerprint(small)
    assert "Read 3,000 rows of cc.csv.gz" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["data/cc.csv.gz", "data/gzipped-but-named.csv"])
def test_gzipped_dataset_loads_from_s3(s3_bucket: str, small: pd.DataFrame, key: str) -> None:
    body = gzip.compress(small.to_csv(index=False).encode())
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=key, Body=body)
    loaded = load_dataset(f"s3://{s3_bucket}/{key}")
    assert dataset_fingerprint(loaded) == dataset_fingerprint(small)


def test_plain_csv_loads_from_s3(s3_bucket: str, small: pd.DataFrame) -> None:
    body = small.to_csv(index=False).encode()
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="cc.csv", Body=body)
    loaded = load_dataset(f"s3://{s3_bucket}/cc.csv", progress=True)
    assert dataset_fingerprint(loaded) == dataset_fingerprint(small)


def test_missing_s3_object_is_a_clear_data_error(s3_bucket: str) -> None:
    with pytest.raises(DataValidationError, match=r"dataset not found: s3://.*/nothing\.csv"):
        load_dataset(f"s3://{s3_bucket}/nothing.csv")


def test_unreachable_s3_is_a_one_line_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreError, match=r"cannot read dataset s3://bucket/key\.csv") as info:
        load_dataset("s3://bucket/key.csv")
    assert "\n" not in str(info.value)


def test_missing_file_is_a_clear_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"dataset not found: .*absent\.csv"):
        load_dataset(str(tmp_path / "absent.csv"))


@pytest.mark.parametrize(
    "content", [b"", b"\x1f\x8b\x08\x00truncated gzip", b'"Time","V1"\n1,2,3,4\n5\n\xff\xfe']
)
def test_a_file_that_is_not_a_csv_is_a_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=r"broken\.csv: not a readable CSV"):
        load_dataset(str(path))


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("V3", "abc", "text instead of a number"),
        ("V3", np.nan, "empty or NaN"),
        ("V5", np.inf, "infinite value"),
        ("Time", -np.inf, "infinite value"),
        ("Amount", -1.0, "negative amount"),
        ("Class", 2, "value not 0 or 1"),
    ],
)
def test_bad_value_in_a_file_names_the_column_and_rows(
    small: pd.DataFrame, tmp_path: Path, column: str, value: object, problem: str
) -> None:
    small[column] = small[column].astype(object)
    small.loc[[41, 1000], column] = value
    loaded = load_dataset(str(written(small, tmp_path / "bad.csv")))
    assert (
        refusal(loaded) == f"column {column}: {problem} in 2 rows: data rows 42, 1001 {ROWS_NOTE}"
    )


def test_text_in_a_few_real_rows_is_found_by_line(real_data: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(real_data, nrows=1500, dtype=str)
    rows.loc[699, "V17"] = "1.2.3"
    loaded = load_dataset(str(written(rows, tmp_path / "real-head.csv")))
    expected = f"column V17: text instead of a number in 1 row: data row 700 {ROWS_NOTE}"
    assert refusal(loaded) == expected


def test_many_bad_rows_are_counted_and_the_first_few_listed(small: pd.DataFrame) -> None:
    small.loc[10:19, "Amount"] = -3.0
    assert refusal(small) == (
        f"column Amount: negative amount in 10 rows: data rows 11, 12, 13, 14, 15, ... {ROWS_NOTE}"
    )


def test_missing_and_extra_columns_are_named(small: pd.DataFrame) -> None:
    assert refusal(small.drop(columns=["V9", "Amount"])).startswith(
        "missing column(s): V9, Amount (expected exactly: Time, V1..V28, Amount, Class)"
    )
    assert refusal(small.assign(merchant="x")).startswith("unexpected column(s): merchant")


def test_too_few_rows_are_refused(small: pd.DataFrame) -> None:
    assert refusal(small, min_samples=5000) == (
        "too few rows: 3,000, need at least 5,000 (--min-samples)"
    )


def test_data_without_frauds_or_without_legit_rows_is_refused(small: pd.DataFrame) -> None:
    assert refusal(small.assign(Class=0)) == "column Class: no frauds (1) in 3,000 rows"
    assert refusal(small.assign(Class=1)) == "column Class: no legitimate rows (0) in 3,000 rows"


def test_synthetic_data_is_valid_marked_and_shaped_like_the_real_data() -> None:
    df = make_synthetic(rows=20_000, seed=9)
    validate(df)
    assert df.attrs["synthetic"] is True
    assert list(df.columns) == list(COLUMNS)
    assert int(df["Class"].sum()) == round(20_000 * 0.00173)
    assert df["Time"].is_monotonic_increasing and df["Time"].max() <= 172_800
    assert (df["Amount"] >= 0).all()


def test_synthetic_data_is_deterministic_for_a_seed() -> None:
    a, b = make_synthetic(rows=5000, seed=9), make_synthetic(rows=5000, seed=9)
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_fingerprint(a) != dataset_fingerprint(make_synthetic(rows=5000, seed=10))


def test_fingerprint_is_stable_and_changes_with_any_value(small: pd.DataFrame) -> None:
    before = dataset_fingerprint(small)
    assert dataset_fingerprint(small[list(reversed(COLUMNS))]) == before
    assert before == {"rows": 3000, "frauds": 5, "sha256": before["sha256"]}
    small.loc[5, "V20"] += 1e-9
    assert dataset_fingerprint(small)["sha256"] != before["sha256"]
