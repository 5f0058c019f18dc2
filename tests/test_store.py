"""The object store behaves the same on a local folder and on S3 (moto over HTTP)."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def test_concurrent_if_absent_writes_have_exactly_one_winner(store_uri: str) -> None:
    store = open_store(store_uri)
    writers = 6
    barrier = threading.Barrier(writers)

    def write(i: int) -> bool:
        barrier.wait(timeout=10)
        return store.put_bytes("race.json", str(i).encode(), if_absent=True)

    with ThreadPoolExecutor(writers) as pool:
        wins = list(pool.map(write, range(writers)))
    assert wins.count(True) == 1
    assert store.get_bytes("race.json") == str(wins.index(True)).encode()


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
