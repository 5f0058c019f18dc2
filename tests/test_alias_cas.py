"""Alias moves are compare-and-swap: concurrent promotions, rollbacks and retrains on a
folder and on S3 (moto over HTTP) lose no move, and every event names what it replaced."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fraud_detection import registry as registry_module
from fraud_detection.errors import NotFoundError, StoreError, UsageError
from fraud_detection.registry import CHAMPION, Pointer, Registry
from fraud_detection.store import open_store

NAME = "fraud-detector"
CALLS = 20


def register(registry: Registry, tag: str) -> str:
    files = {"model.onnx": f"onnx-{tag}".encode()}
    return str(registry.register(files, {"threshold": 0.5, "tag": tag})["version"])


@pytest.fixture
def registry(store_uri: str) -> Registry:
    return Registry(open_store(store_uri), NAME)


def champion_moves(registry: Registry) -> list[dict[str, Any]]:
    """The champion's promoted and rolled_back events in the order their moves landed."""
    events = [e for e in registry.events() if e.get("alias") == CHAMPION]
    return sorted(events, key=lambda e: e["alias_revision"])


def replay(moves: list[dict[str, Any]]) -> Pointer:
    """The champion the event trail describes; fails on an event that did not replace the
    champion of the move before it."""
    version: str | None = None
    history: list[str] = []
    for event in moves:
        assert event["previous_version"] == version, event
        if event["action"] == "promoted":
            history += [version] if version is not None else []
        else:
            assert event["action"] == "rolled_back"
            assert history.pop() == event["version"] == event["to_version"], event
            assert event["from_version"] == version
        version = event["version"]
    return Pointer(version, tuple(history), len(moves))


def test_concurrent_promotions_rollbacks_and_retrains_lose_no_move(registry: Registry) -> None:
    for tag in "abcd":
        register(registry, tag)
    registry.promote("1", reason="base")
    registry.promote("2", reason="base")
    rng = random.Random(7)
    kinds = ["promote"] * 7 + ["rollback"] * 6 + ["retrain"] * 7
    rng.shuffle(kinds)
    barrier = threading.Barrier(CALLS)

    def call(i: int) -> str:
        barrier.wait(timeout=30)
        kind = kinds[i]
        if kind == "promote":
            target = str(rng.randint(1, 4))
            changed = registry.promote(target, reason=f"call {i}") is not None
            return f"promote {target} {'changed' if changed else 'unchanged'}"
        if kind == "rollback":
            try:
                return f"rollback to {registry.rollback(reason=f'call {i}')}"
            except NotFoundError:
                return "rollback refused: no previous champion"
        version = register(registry, f"r{i}")
        alias = registry.promote_or_stage(version, reason=f"call {i}", promote=i % 2 == 0)
        return f"retrain {version} {alias}"

    with ThreadPoolExecutor(CALLS) as pool:
        outcomes = list(pool.map(call, range(CALLS)))

    moves = champion_moves(registry)
    final = registry.alias(CHAMPION)
    # Every landed move has its own revision and its event: none was lost or overwritten.
    assert [e["alias_revision"] for e in moves] == list(range(1, final.revision + 1)), outcomes
    assert replay(moves) == final
    changed = [o for o in outcomes if "unchanged" not in o and "refused" not in o]
    retrains_staged = [o for o in outcomes if o.endswith("challenger")]
    assert len(moves) == 2 + len(changed) - len(retrains_staged)
    # Rollback walks back through every earlier champion still on the stack, then refuses.
    reached = []
    while True:
        try:
            reached.append(registry.rollback(reason="walk back"))
        except NotFoundError:
            break
    assert reached == list(reversed(final.history))
    assert replay(champion_moves(registry)) == registry.alias(CHAMPION)
    # Every retrain registered its own complete version.
    versions = [m["version"] for m in registry.list_versions()]
    assert versions == [str(v) for v in range(1, 5 + kinds.count("retrain"))]


def test_two_promotions_at_once_both_land_and_record_what_they_replaced(
    registry: Registry,
) -> None:
    for tag in "abc":
        register(registry, tag)
    registry.promote("1", reason="base")
    barrier = threading.Barrier(2)

    def promote(version: str) -> dict[str, Any] | None:
        barrier.wait(timeout=30)
        return registry.promote(version, reason="race")

    with ThreadPoolExecutor(2) as pool:
        events = [e for e in pool.map(promote, ["2", "3"]) if e is not None]
    assert len(events) == 2
    final = registry.alias(CHAMPION)
    first, second = sorted(events, key=lambda e: e["alias_revision"])
    assert first["previous_version"] == "1"
    assert second["previous_version"] == first["version"] == final.history[-1]
    assert final == Pointer(second["version"], ("1", first["version"]), 3)


def test_a_move_that_keeps_losing_is_refused_and_changes_nothing(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(registry, "a")
    register(registry, "b")
    registry.promote("1", reason="base")
    store = registry.store
    real_put = store.put_bytes
    attempts = []

    def always_beaten(key: str, data: bytes, **conditions: Any) -> bool:
        if "/aliases/" not in key:
            return real_put(key, data, **conditions)
        attempts.append(conditions)
        return False

    monkeypatch.setattr(store, "put_bytes", always_beaten)
    monkeypatch.setattr(registry_module, "_ALIAS_BACKOFF", 0.0)
    with pytest.raises(StoreError, match=r"champion alias .* moved by others 50 times.*try again"):
        registry.promote("2", reason="contended")
    assert len(attempts) == 50 and all(c["if_match"] for c in attempts)
    assert registry.aliases() == {"champion": "1"}
    assert [e["action"] for e in registry.events()] == ["registered", "registered", "promoted"]


def test_any_alias_name_moves_and_resolves(registry: Registry) -> None:
    register(registry, "a")
    register(registry, "b")
    registry.promote("1", reason="base")
    event = registry.stage("2", reason="rollout", alias="canary")
    assert event["alias"] == "canary" and event["alias_revision"] == 1
    assert event["previous_version"] is None
    assert registry.resolve("canary") == "2"
    assert registry.aliases() == {"champion": "1", "canary": "2"}
    move = registry.move_alias(
        "canary", lambda p: Pointer(None, p.history), actor="ci", reason="done"
    )
    assert move.changed and move.before.version == "2"
    assert registry.aliases() == {"champion": "1"}
    with pytest.raises(NotFoundError, match="has no canary"):
        registry.resolve("canary")
    with pytest.raises(UsageError, match="invalid alias name"):
        registry.move_alias("../x", lambda p: p, actor="ci", reason="bad")
