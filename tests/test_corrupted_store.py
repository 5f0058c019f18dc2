"""A corrupted alias, manifest or event file: every `fraud models` command that needs it
exits 1 with one line naming the file and what is wrong (never a traceback), `list` still
shows every version it can read, and the commands that do not need it work."""

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from fraud_detection.cli import cli
from fraud_detection.errors import StoreError
from fraud_detection.registry import Registry
from fraud_detection.store import open_store

NAME = "fraud-detector"
CHAMPION_KEY = f"models/{NAME}/aliases/champion.json"
MANIFEST_KEY = f"models/{NAME}/versions/2/manifest.json"

# How a file goes bad, and the words the error line must use for it.
CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated JSON": (lambda data: data[: len(data) // 2], "not valid JSON, truncated"),
    "empty file": (lambda data: b"", "empty file"),
    "wrong JSON type": (lambda data: b'["2"]', "expected a JSON object, found a list"),
}


@pytest.fixture
def registry(store_uri: str) -> Registry:
    """Versions 1, 2 and 3: 2 is champion (1 before it), 3 the challenger."""
    registry = Registry(open_store(store_uri), NAME)
    for tag in "abc":
        registry.register({"model.onnx": f"onnx-{tag}".encode()}, {"threshold": 0.4})
    registry.promote("1", reason="first")
    registry.promote("2", reason="better")
    registry.stage("3", reason="retrained")
    return registry


def run(registry: Registry, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "160"}).invoke(
        cli, ["models", *args, "--store", registry.store.uri]
    )


def corrupt(registry: Registry, key: str, how: str) -> str:
    """Spoil the file at `key` as `how` says; the words its error line must use."""
    spoil, words = CORRUPTIONS[how]
    registry.store.put_bytes(key, spoil(registry.store.get_bytes(key)))
    return words


def assert_one_error_line(result: Result, key: str, words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert key in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in result.output


def listed_versions(result: Result) -> list[str]:
    """The version column of `fraud models list`'s table."""
    rows = (line.split() for line in result.stdout.splitlines())
    return [row[0] for row in rows if row and row[0].isdigit()]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupted_alias_fails_each_command_that_reads_it_in_one_line(
    registry: Registry, how: str
) -> None:
    words = corrupt(registry, CHAMPION_KEY, how)
    for args in (
        ("list",),
        ("list", "--json"),
        ("show", "champion"),
        ("show", "1"),
        ("promote", "3"),
        ("rollback",),
    ):
        assert_one_error_line(run(registry, *args), CHAMPION_KEY, words)
    listed = run(registry, "list")
    assert listed_versions(listed) == ["1", "2", "3"]
    assert [m["version"] for m in json.loads(run(registry, "list", "--json").stdout)] == [
        "1",
        "2",
        "3",
    ]
    assert run(registry, "diff", "1", "2").exit_code == 0, "diff reads no alias"


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupted_manifest_fails_each_command_that_reads_it_and_list_shows_the_rest(
    registry: Registry, how: str
) -> None:
    words = corrupt(registry, MANIFEST_KEY, how)
    listed = run(registry, "list")
    assert_one_error_line(listed, MANIFEST_KEY, words)
    assert listed_versions(listed) == ["1", "3"]
    for args in (("show", "2"), ("show", "champion"), ("diff", "1", "2"), ("promote", "2")):
        assert_one_error_line(run(registry, *args), MANIFEST_KEY, words)
    assert run(registry, "show", "3").exit_code == 0
    assert run(registry, "rollback").exit_code == 0, "version 1 is intact"


def test_an_alias_naming_a_version_that_does_not_exist_is_one_line(registry: Registry) -> None:
    record = json.loads(registry.store.get_bytes(CHAMPION_KEY))
    registry.store.put_bytes(CHAMPION_KEY, json.dumps({**record, "version": "42"}).encode())
    words = "names version 42, which is not in the store"
    listed = run(registry, "list")
    assert_one_error_line(listed, CHAMPION_KEY, words)
    assert listed_versions(listed) == ["1", "2", "3"]
    assert_one_error_line(run(registry, "show", "champion"), CHAMPION_KEY, words)


def test_a_rollback_to_a_version_that_does_not_exist_changes_nothing(registry: Registry) -> None:
    record = json.loads(registry.store.get_bytes(CHAMPION_KEY))
    registry.store.put_bytes(CHAMPION_KEY, json.dumps({**record, "history": ["42"]}).encode())
    result = run(registry, "rollback")
    assert_one_error_line(result, CHAMPION_KEY, "names version 42, which is not in the store")
    assert registry.aliases()["champion"] == "2"


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupted_event_is_named_by_whoever_reads_the_trail(
    registry: Registry, how: str
) -> None:
    key = registry.store.list_keys(f"models/{NAME}/events/")[-1]
    words = corrupt(registry, key, how)
    with pytest.raises(StoreError, match=words) as raised:
        registry.events()
    assert key in str(raised.value)
    assert listed_versions(run(registry, "list")) == ["1", "2", "3"]
    assert run(registry, "list").exit_code == 0, "list reads no event"
