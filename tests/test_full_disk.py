"""`fraud train` into a folder store on a disk that fills up part-way: the unfinished
version is removed, its space and number freed, and the error says so."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.registry import Registry
from fraud_detection.store import open_store
from serving_helpers import train_into

# Room for a small first version (about 80 KB with its plots) but not for a 300-tree one.
DISK = "300k"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 KB tmpfs of the test's own (mounting needs root; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def used_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def test_a_full_disk_during_train_leaves_no_unfinished_version(small_disk: Path) -> None:
    store = small_disk / "store"
    train_into(store, promote=True)
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    used = used_bytes(small_disk)

    args = ["train", "--synthetic", "--synthetic-rows", "20000", "--trees", "300"]
    result = CliRunner().invoke(cli, [*args, "--store", str(store)])

    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output
    assert "version 2 was not registered, and what it had written was removed" in result.output
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    assert used_bytes(small_disk) == used
    train_into(store)
    assert [m["version"] for m in Registry(open_store(str(store))).list_versions()] == ["1", "2"]
