"""The registry over both store kinds: layout, visibility, integrity, concurrency, aliases."""

import json
import multiprocessing
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fraud_detection import registry as registry_module
from fraud_detection.config import Settings
from fraud_detection.errors import IntegrityError, NotFoundError, StoreError, UsageError
from fraud_detection.registry import Registry, open_registry, sha256_hex
from fraud_detection.store import open_store

NAME = "fraud-detector"


def sample_files(tag: str) -> dict[str, bytes]:
    """Artifacts whose bytes differ per tag."""
    return {"model.onnx": f"onnx-{tag}".encode(), "reference.json": b'{"bins": []}'}


def sample_manifest(pr_auc: float = 0.8, **extra: Any) -> dict[str, Any]:
    """The kind of manifest the trainer hands over."""
    return {
        "threshold": 0.42,
        "features": ["Time", "V1", "Amount"],
        "metrics": {"test": {"pr_auc": pr_auc, "precision": 0.9, "recall": 0.7}},
        "data": {"rows": 1000, "synthetic": True},
        **extra,
    }


def register(registry: Registry, tag: str = "a", **extra: Any) -> str:
    """Register sample artifacts; returns the new version."""
    return str(registry.register(sample_files(tag), sample_manifest(**extra))["version"])


def register_in_process(store_uri: str, writer: int, barrier: Any) -> None:
    """Child-process body: wait for the sibling, then register."""
    barrier.wait(timeout=60)
    Registry(open_store(store_uri), NAME).register(sample_files(str(writer)), {"writer": writer})


@pytest.fixture
def registry(store_uri: str) -> Registry:
    return Registry(open_store(store_uri), NAME)


def normalised_keys(registry: Registry) -> list[str]:
    """All keys with event timestamps blanked, so two stores can be compared."""
    keys = registry.store.list_keys("")
    return [re.sub(r"events/[0-9T.]+Z-", "events/<stamp>-", k) for k in keys]


def exercise(registry: Registry) -> None:
    """The same sequence of operations, for comparing layouts."""
    register(registry, "a")
    register(registry, "b")
    registry.promote("1", reason="first")
    registry.stage("2", reason="try")


def test_register_writes_the_documented_layout(registry: Registry) -> None:
    exercise(registry)
    assert normalised_keys(registry) == [
        "models/fraud-detector/aliases/challenger.json",
        "models/fraud-detector/aliases/champion.json",
        "models/fraud-detector/events/<stamp>-registered.json",
        "models/fraud-detector/events/<stamp>-registered.json",
        "models/fraud-detector/events/<stamp>-promoted.json",
        "models/fraud-detector/events/<stamp>-staged.json",
        "models/fraud-detector/versions/1/.claim.json",
        "models/fraud-detector/versions/1/manifest.json",
        "models/fraud-detector/versions/1/model.onnx",
        "models/fraud-detector/versions/1/reference.json",
        "models/fraud-detector/versions/2/.claim.json",
        "models/fraud-detector/versions/2/manifest.json",
        "models/fraud-detector/versions/2/model.onnx",
        "models/fraud-detector/versions/2/reference.json",
    ]


def test_layout_is_identical_on_local_and_s3(tmp_path: Path, s3_bucket: str) -> None:
    local = Registry(open_store(str(tmp_path / "store")), NAME)
    s3 = Registry(open_store(f"s3://{s3_bucket}/models-prefix"), NAME)
    exercise(local)
    exercise(s3)
    assert normalised_keys(local) == normalised_keys(s3)
    assert local.list_versions() != [] and [
        {k: v for k, v in m.items() if k != "created_at"} for m in local.list_versions()
    ] == [{k: v for k, v in m.items() if k != "created_at"} for m in s3.list_versions()]


def test_register_returns_the_manifest_with_version_time_and_hashes(registry: Registry) -> None:
    manifest = registry.register(sample_files("a"), sample_manifest(params={"n_estimators": 5}))
    assert manifest["version"] == "1"
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert manifest["files"] == {n: sha256_hex(b) for n, b in sample_files("a").items()}
    assert manifest["threshold"] == 0.42 and manifest["params"] == {"n_estimators": 5}
    assert registry.manifest("1") == manifest
    assert register(registry, "b") == "2"
    assert registry.aliases() == {}


def test_version_is_visible_only_once_its_manifest_exists(registry: Registry) -> None:
    store, base = registry.store, "models/fraud-detector/versions/1"
    store.put_bytes(f"{base}/.claim.json", b'{"token": "x"}')
    store.put_bytes(f"{base}/model.onnx", b"half-written")
    assert registry.list_versions() == []
    with pytest.raises(NotFoundError, match="version 1 of fraud-detector not found"):
        registry.manifest("1")
    with pytest.raises(NotFoundError):
        registry.resolve("latest")
    manifest = {"version": "1", "files": {"model.onnx": sha256_hex(b"half-written")}}
    store.put_bytes(f"{base}/manifest.json", json.dumps(manifest).encode())
    assert [m["version"] for m in registry.list_versions()] == ["1"]
    assert registry.read_file("latest", "model.onnx") == b"half-written"


def test_crashed_writer_leaves_an_invisible_claim_that_is_skipped(registry: Registry) -> None:
    registry.store.put_bytes("models/fraud-detector/versions/1/.claim.json", b'{"token": "x"}')
    assert register(registry) == "2"
    assert [m["version"] for m in registry.list_versions()] == ["2"]


def test_a_registration_that_fails_part_way_removes_what_it_wrote(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(registry, "a")
    real_put = registry.store.put_bytes

    def disk_full_on_reference(key: str, data: bytes, **conditions: Any) -> bool:
        if key.endswith("/reference.json"):
            raise StoreError(f"local store: cannot write {key}: No space left on device")
        return real_put(key, data, **conditions)

    monkeypatch.setattr(registry.store, "put_bytes", disk_full_on_reference)
    with pytest.raises(StoreError, match=r"No space left on device; version 2 was not registered"):
        register(registry, "b")
    assert registry.store.list_keys("models/fraud-detector/versions/2/") == []
    assert [e["version"] for e in registry.events()] == ["1"]
    monkeypatch.setattr(registry.store, "put_bytes", real_put)
    assert register(registry, "c") == "2", "the freed number is claimed again"
    assert registry.read_file("2", "model.onnx") == b"onnx-c"


def test_an_unfinished_version_that_cannot_be_removed_says_so(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = registry.store.put_bytes

    def fail_on_reference(key: str, data: bytes, **conditions: Any) -> bool:
        if key.endswith("/reference.json"):
            raise StoreError("cannot write: No space left on device")
        return real_put(key, data, **conditions)

    def access_denied(key: str) -> None:
        raise StoreError(f"{key}: AccessDenied")

    monkeypatch.setattr(registry.store, "put_bytes", fail_on_reference)
    monkeypatch.setattr(registry.store, "delete", access_denied)
    with pytest.raises(StoreError, match=r"version 1 is left unfinished and invisible.*Denied"):
        register(registry, "a")
    assert registry.list_versions() == []


def test_corrupted_artifact_is_refused(registry: Registry, tmp_path: Path) -> None:
    register(registry, "a")
    registry.store.put_bytes("models/fraud-detector/versions/1/model.onnx", b"tampered")
    assert registry.read_file("1", "reference.json") == b'{"bins": []}'
    with pytest.raises(IntegrityError, match=r"versions/1/model\.onnx: sha256 .* does not match"):
        registry.read_file("1", "model.onnx")
    with pytest.raises(IntegrityError):
        registry.verify("1")
    with pytest.raises(IntegrityError):
        registry.download("1", tmp_path / "dl")
    assert not (tmp_path / "dl").exists()
    with pytest.raises(IntegrityError):
        registry.promote("1", reason="should be refused")
    assert registry.aliases() == {}
    assert [e["action"] for e in registry.events()] == ["registered"]


def test_download_writes_verified_files_and_manifest(registry: Registry, tmp_path: Path) -> None:
    register(registry, "a")
    registry.promote("1", reason="r")
    dest = registry.download("champion", tmp_path / "model")
    assert (dest / "model.onnx").read_bytes() == b"onnx-a"
    assert json.loads((dest / "manifest.json").read_text()) == registry.manifest("1")


def test_reading_a_file_the_manifest_does_not_list_is_not_found(registry: Registry) -> None:
    register(registry)
    with pytest.raises(NotFoundError, match=r"has no file 'weights\.bin'"):
        registry.read_file("1", "weights.bin")


def test_concurrent_registrations_in_threads_get_distinct_complete_versions(
    registry: Registry,
) -> None:
    writers = 4
    barrier = threading.Barrier(writers)

    def write(i: int) -> str:
        barrier.wait(timeout=10)
        return str(registry.register(sample_files(str(i)), {"writer": i})["version"])

    with ThreadPoolExecutor(writers) as pool:
        versions = list(pool.map(write, range(writers)))
    assert sorted(versions, key=int) == ["1", "2", "3", "4"]
    for writer, version in enumerate(versions):
        assert registry.verify(version)["writer"] == writer
        assert registry.read_file(version, "model.onnx") == f"onnx-{writer}".encode()


def test_concurrent_registrations_in_processes_get_distinct_complete_versions(
    tmp_path: Path,
) -> None:
    store_uri = str(tmp_path / "store")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    workers = [
        ctx.Process(target=register_in_process, args=(store_uri, i, barrier)) for i in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    registry = Registry(open_store(store_uri), NAME)
    manifests = registry.list_versions()
    assert [m["version"] for m in manifests] == ["1", "2"]
    assert sorted(m["writer"] for m in manifests) == [0, 1]
    for m in manifests:
        registry.verify(m["version"])


def test_resolve_accepts_numbers_aliases_and_latest(registry: Registry) -> None:
    register(registry, "a")
    register(registry, "b")
    registry.promote("1", reason="r")
    assert registry.resolve("champion") == "1"
    assert registry.resolve("latest") == "2"
    assert registry.resolve("02") == "2"
    with pytest.raises(NotFoundError, match="has no challenger"):
        registry.resolve("challenger")
    with pytest.raises(NotFoundError, match="unknown model reference 'best'"):
        registry.resolve("best")
    with pytest.raises(NotFoundError, match="version 3 of fraud-detector not found"):
        registry.resolve("3")


def test_promote_sets_champion_and_records_who_why_and_details(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    registry = open_registry(Settings(model_store=store_uri, model_name=NAME))
    register(registry)
    event = registry.promote("1", reason="first model", details={"pr_auc": 0.8})
    assert registry.aliases() == {"champion": "1"}
    assert event is not None
    assert registry.events()[-1] == event
    assert event["action"] == "promoted" and event["alias"] == "champion"
    assert event["version"] == "1" and event["previous_version"] is None
    assert event["actor"] == "github:octocat" and event["reason"] == "first model"
    assert event["details"] == {"pr_auc": 0.8}
    assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None


def test_promoting_the_current_champion_changes_nothing(registry: Registry) -> None:
    register(registry)
    registry.promote("1", reason="r")
    assert registry.promote("champion", reason="again") is None
    assert [e["action"] for e in registry.events()] == ["registered", "promoted"]


def test_stage_then_promote_moves_challenger_to_champion(registry: Registry) -> None:
    register(registry, "a")
    register(registry, "b")
    registry.promote("1", reason="first")
    staged = registry.stage("2", reason="retrained", details={"pr_auc_delta": 0.01})
    assert staged["action"] == "staged" and staged["alias"] == "challenger"
    assert registry.aliases() == {"champion": "1", "challenger": "2"}
    assert [m["aliases"] for m in registry.list_versions()] == [["champion"], ["challenger"]]
    promoted = registry.promote("challenger", reason="better")
    assert promoted is not None and promoted["previous_version"] == "1"
    assert registry.aliases() == {"champion": "2"}


def test_the_first_version_becomes_champion_and_later_ones_challenger(
    registry: Registry,
) -> None:
    for tag in "abc":
        register(registry, tag)
    assert registry.promote_or_stage("1", reason="trained") == "champion"
    assert registry.promote_or_stage("2", reason="trained", details={"f1": 0.5}) == "challenger"
    assert registry.aliases() == {"champion": "1", "challenger": "2"}
    assert registry.events()[-1]["details"] == {"f1": 0.5}
    assert registry.promote_or_stage("3", reason="asked", promote=True) == "champion"
    assert registry.aliases() == {"champion": "3", "challenger": "2"}
    assert registry.promote_or_stage("1", reason="asked", promote=False) == "challenger"
    assert registry.aliases() == {"champion": "3", "challenger": "1"}


def test_rollback_restores_the_previous_champion(registry: Registry) -> None:
    for tag in "abc":
        register(registry, tag)
        registry.promote("latest", reason=f"promote {tag}")
    assert registry.rollback(reason="bad model", actor="oncall") == "2"
    assert registry.resolve("champion") == "2"
    event = registry.events()[-1]
    assert event["action"] == "rolled_back" and event["actor"] == "oncall"
    assert (event["from_version"], event["to_version"]) == ("3", "2")
    assert (event["previous_version"], event["version"]) == ("3", "2")
    assert registry.rollback(reason="still bad") == "1"
    with pytest.raises(NotFoundError, match="no previous champion to roll back to"):
        registry.rollback(reason="nothing left")


def test_rollback_without_a_previous_champion_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match=r"no previous champion .*current champion: none"):
        registry.rollback(reason="panic")
    register(registry)
    registry.promote("1", reason="r")
    with pytest.raises(NotFoundError, match="current champion: 1"):
        registry.rollback(reason="panic")
    assert registry.aliases() == {"champion": "1"}


def test_events_at_the_same_instant_get_distinct_keys(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "FrozenClock":
            return cls.fromtimestamp(frozen.timestamp(), tz)

    monkeypatch.setattr(registry_module, "datetime", FrozenClock)
    register(registry)
    for reason in ("one", "two", "three"):
        registry.stage("1", reason=reason)
    keys = registry.store.list_keys("models/fraud-detector/events/")
    assert [k.rsplit("/", 1)[1] for k in keys] == [
        "20300102T030405.600000Z-registered.json",
        "20300102T030405.600000Z-staged.json",
        "20300102T030405.600001Z-staged.json",
        "20300102T030405.600002Z-staged.json",
    ]
    assert [e["reason"] for e in registry.events()] == ["registered", "one", "two", "three"]


def test_reserved_file_names_are_refused(registry: Registry) -> None:
    files: Mapping[str, bytes] = {"manifest.json": b"{}"}
    with pytest.raises(UsageError, match="reserved"):
        registry.register(files, {})
    assert registry.store.list_keys("") == []


def test_a_caller_s_bad_name_is_a_usage_error(registry: Registry) -> None:
    with pytest.raises(UsageError, match="invalid model name"):
        Registry(registry.store, "../other")
    with pytest.raises(UsageError, match="invalid store key"):
        registry.register({"../model.onnx": b"x"}, {})
    assert registry.store.list_keys("") == []


def test_last_registered_at_is_the_newest_versions_time(registry: Registry) -> None:
    assert registry.last_registered_at() is None
    register(registry, "a")
    newest = registry.manifest(register(registry, "b"))["created_at"]
    assert registry.last_registered_at() == datetime.fromisoformat(newest).timestamp()
