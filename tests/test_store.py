"""The object store behaves the same on a local folder and on S3 (moto over HTTP)."""

import os
import socket
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fraud_detection.errors import NotFoundError, StoreError
from fraud_detection.store import LocalStore, S3Store, open_store


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_open_store_picks_the_kind_from_the_uri(s3_bucket: str, tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"s3://{s3_bucket}/prefix"), S3Store)


def test_put_then_get_round_trips_bytes(store_uri: str) -> None:
    store = open_store(store_uri)
    assert store.put_bytes("a/b/c.bin", b"\x00payload") is True
    assert store.get_bytes("a/b/c.bin") == b"\x00payload"
    assert store.exists("a/b/c.bin")
    assert store.put_bytes("a/b/c.bin", b"replaced") is True
    assert store.get_bytes("a/b/c.bin") == b"replaced"


def test_missing_key_raises_not_found(store_uri: str) -> None:
    store = open_store(store_uri)
    assert not store.exists("nope.json")
    with pytest.raises(NotFoundError, match=r"nope\.json"):
        store.get_bytes("nope.json")


def test_if_absent_keeps_the_first_write(store_uri: str) -> None:
    store = open_store(store_uri)
    assert store.put_bytes("claim.json", b"first", if_absent=True) is True
    assert store.put_bytes("claim.json", b"second", if_absent=True) is False
    assert store.get_bytes("claim.json") == b"first"


@pytest.mark.parametrize("condition", ["if_absent", "if_match"])
def test_concurrent_conditional_writes_have_exactly_one_winner(
    store_uri: str, condition: str
) -> None:
    store = open_store(store_uri)
    conditions: dict[str, Any] = {"if_absent": True}
    if condition == "if_match":
        store.put_bytes("race.json", b"start")
        conditions = {"if_match": store.get_tagged("race.json")[1]}
    writers = 8
    barrier = threading.Barrier(writers)

    def write(i: int) -> bool:
        barrier.wait(timeout=10)
        won: bool = store.put_bytes("race.json", str(i).encode(), **conditions)
        return won

    with ThreadPoolExecutor(writers) as pool:
        wins = list(pool.map(write, range(writers)))
    assert wins.count(True) == 1
    assert store.get_bytes("race.json") == str(wins.index(True)).encode()


def test_if_match_writes_only_over_the_tag_it_read(store_uri: str) -> None:
    store = open_store(store_uri)
    store.put_bytes("alias.json", b"one")
    data, tag = store.get_tagged("alias.json")
    assert data == b"one"
    assert store.put_bytes("alias.json", b"two", if_match=tag) is True
    assert store.put_bytes("alias.json", b"three", if_match=tag) is False
    assert store.get_bytes("alias.json") == b"two"
    assert store.put_bytes("absent.json", b"x", if_match=tag) is False
    assert not store.exists("absent.json")


def test_delete_removes_the_key_and_a_missing_key_is_no_error(store_uri: str) -> None:
    store = open_store(store_uri)
    store.put_bytes("v/1/a", b"1")
    store.put_bytes("v/2/a", b"2")
    store.delete("v/1/a")
    store.delete("v/1/a")
    assert store.list_keys("") == ["v/2/a"]


def test_local_delete_leaves_no_empty_folder(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    store.put_bytes("v/1/a", b"1")
    store.put_bytes("v/1/b", b"1")
    store.delete("v/1/a")
    assert (tmp_path / "v/1").is_dir()
    store.delete("v/1/b")
    assert not (tmp_path / "v/1").exists()


def test_list_keys_is_sorted_relative_and_filtered_by_prefix(store_uri: str) -> None:
    store = open_store(store_uri)
    for key in ("m/v/2/x", "m/v/10/x", "m/v/1/x", "m/vv/1/x", "other/y"):
        store.put_bytes(key, b".")
    assert store.list_keys("m/v/") == ["m/v/1/x", "m/v/10/x", "m/v/2/x"]
    assert store.list_keys("m/v") == ["m/v/1/x", "m/v/10/x", "m/v/2/x", "m/vv/1/x"]
    assert store.list_keys("") == ["m/v/1/x", "m/v/10/x", "m/v/2/x", "m/vv/1/x", "other/y"]
    assert store.list_keys("absent/") == []


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_unsafe_keys_are_rejected(store_uri: str, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        open_store(store_uri).put_bytes(key, b".")


def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    store.put_bytes("k/a", b"1")
    store.put_bytes("k/a", b"2", if_absent=True)
    store.put_bytes("k/a", b"3")
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["a"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
@pytest.mark.parametrize("if_absent", [False, True])
def test_local_files_get_the_usual_mode_under_the_umask(
    tmp_path: Path, umask: int, mode: int, if_absent: bool
) -> None:
    previous = os.umask(umask)
    try:
        open_store(str(tmp_path)).put_bytes(
            "models/m/aliases/champion.json", b"{}", if_absent=if_absent
        )
    finally:
        os.umask(previous)
    written = tmp_path / "models/m/aliases/champion.json"
    assert written.stat().st_mode & 0o777 == mode
    assert written.parent.stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as another uid needs root")
def test_another_account_reads_what_the_store_wrote() -> None:
    """The image's uid 10001 serves a store that root (or any other account) trained into."""
    # pytest's tmp_path sits under a 0700 folder of this user: use a world-traversable one.
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        previous = os.umask(0o022)
        try:
            open_store(folder).put_bytes("k/champion.json", b"{}")
        finally:
            os.umask(previous)
        done = subprocess.run(
            ["cat", f"{folder}/k/champion.json"], user=10001, capture_output=True, text=True
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{}"


def test_unreachable_s3_endpoint_raises_store_error(
    s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_store("s3://some-bucket/models")
    with pytest.raises(StoreError, match=r"s3://some-bucket/models/k\.json: Could not connect"):
        store.get_bytes("k.json")
    with pytest.raises(StoreError, match="Could not connect"):
        store.list_keys("models/")


def test_missing_bucket_raises_store_error(s3_env: str) -> None:
    with pytest.raises(StoreError, match="s3://no-such-bucket/p/k: NoSuchBucket") as info:
        open_store("s3://no-such-bucket/p").get_bytes("k")
    assert not isinstance(info.value, NotFoundError)
