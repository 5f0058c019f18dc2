"""Loading, validation, the time split and the synthetic generator."""

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


@pytest.fixture(scope="module")
def real(real_data: Path) -> pd.DataFrame:
    return load_dataset(str(real_data))


@pytest.fixture
def small() -> pd.DataFrame:
    return make_synthetic(rows=3000, seed=5)


def test_real_dataset_loads_with_its_documented_shape(real: pd.DataFrame) -> None:
    assert list(real.columns) == list(COLUMNS)
    assert len(real) == 284_807
    assert int(real["Class"].sum()) == 492
    assert real["Amount"].sum() == pytest.approx(25_162_590.01)
    validate(real)


def test_time_split_of_the_real_data_matches_the_spec(real: pd.DataFrame) -> None:
    history, new = time_split(real)
    assert (len(history), len(new)) == (227_845, 56_962)
    assert int(new["Class"].sum()) == 75
    assert history["Time"].max() <= new["Time"].min()


def test_dataset_loads_from_s3(s3_bucket: str, tmp_path: Path, small: pd.DataFrame) -> None:
    body = gzip.compress(small.to_csv(index=False).encode())
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="data/cc.csv.gz", Body=body)
    loaded = load_dataset(f"s3://{s3_bucket}/data/cc.csv.gz")
    assert dataset_fingerprint(loaded) == dataset_fingerprint(small)


def test_missing_s3_object_is_a_clear_data_error(s3_bucket: str) -> None:
    with pytest.raises(DataValidationError, match="not found"):
        load_dataset(f"s3://{s3_bucket}/nothing.csv")


def test_unreachable_s3_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreError, match="cannot read dataset"):
        load_dataset("s3://bucket/key.csv")


def test_missing_file_is_a_clear_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="not found"):
        load_dataset(str(tmp_path / "absent.csv"))


def _written(df: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return load_dataset(str(path))


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("V3", "abc", "text"),
        ("V3", np.nan, "NaN"),
        ("V5", np.inf, "infinite"),
        ("Amount", -1.0, "negative"),
        ("Class", 2, "not 0 or 1"),
    ],
)
def test_bad_value_names_column_and_row(
    small: pd.DataFrame, tmp_path: Path, column: str, value: object, words: str
) -> None:
    small[column] = small[column].astype(object)
    small.loc[41, column] = value
    small.loc[1000, column] = value
    with pytest.raises(DataValidationError) as info:
        validate(_written(small, tmp_path))
    message = str(info.value)
    assert f"column {column}" in message and words in message
    assert "data rows 42, 1001 (2 rows)" in message


def test_missing_and_extra_columns_are_named(small: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"missing column.*V9"):
        validate(small.drop(columns=["V9"]))
    with pytest.raises(DataValidationError, match=r"unexpected column.*merchant"):
        validate(small.assign(merchant="x"))


def test_too_few_rows_and_no_frauds_are_refused(small: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="too few rows: 3000 < --min-samples 5000"):
        validate(small, min_samples=5000)
    with pytest.raises(DataValidationError, match="column Class: no frauds"):
        validate(small.assign(Class=0))


def test_synthetic_data_is_valid_marked_and_deterministic() -> None:
    a, b = make_synthetic(rows=20_000, seed=9), make_synthetic(rows=20_000, seed=9)
    validate(a)
    assert a.attrs["synthetic"] is True
    assert 0.0005 < a["Class"].mean() < 0.004
    assert a["Time"].is_monotonic_increasing
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_fingerprint(a) != dataset_fingerprint(make_synthetic(rows=20_000, seed=10))


def test_fingerprint_changes_with_any_value(small: pd.DataFrame) -> None:
    before = dataset_fingerprint(small)
    small.loc[5, "V20"] += 1e-9
    assert dataset_fingerprint(small)["sha256"] != before["sha256"]
