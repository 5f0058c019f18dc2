"""Model versions, aliases, an audit trail and integrity checks over an object store.

Layout under the store root (SPEC section 4):
  models/<name>/versions/<n>/...         immutable; visible once manifest.json (written last) exists
  models/<name>/aliases/<alias>.json     champion / challenger pointers with their history
  models/<name>/events/<stamp>-<action>.json   append-only audit trail
"""

import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .config import get_settings
from .errors import IntegrityError, NotFoundError, StoreError, UsageError
from .store import ObjectStore, check_key, open_store

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
MANIFEST = "manifest.json"
CLAIM = ".claim.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAX_ATTEMPTS = 100


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of `data`, as recorded in manifests."""
    return hashlib.sha256(data).hexdigest()


def to_json(obj: Any) -> bytes:
    """The JSON bytes stored for manifests, aliases and events."""
    return json.dumps(obj, indent=2).encode()


def default_actor() -> str:
    """Who is acting: the GitHub Actions user in CI, else user@host."""
    if actor := os.environ.get("GITHUB_ACTOR"):
        return f"github:{actor}"
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return f"{user}@{socket.gethostname()}"


def event_stamp(moment: datetime) -> str:
    """A UTC stamp with microseconds that sorts in time order inside event keys."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def check_integrity(key: str, data: bytes, expected: str) -> bytes:
    """`data` itself if its sha256 is `expected`, else IntegrityError."""
    actual = sha256_hex(data)
    if actual != expected:
        raise IntegrityError(
            f"{key}: sha256 {actual[:12]}… does not match the manifest's {expected[:12]}…; "
            "the artifact was altered or corrupted, refusing to use it"
        )
    return data


class Registry:
    """The versions and aliases of one model name in one store."""

    def __init__(self, store: ObjectStore, name: str = "fraud-detector") -> None:
        if not _NAME.fullmatch(name):
            raise UsageError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-'")
        self.store = store
        self.name = name
        self.root = f"models/{name}"

    # Writing versions

    def register(
        self,
        files: Mapping[str, bytes],
        manifest: Mapping[str, Any],
        *,
        actor: str | None = None,
        reason: str = "registered",
    ) -> dict[str, Any]:
        """Store `files` as the next version, manifest last; returns the final manifest."""
        for file_name in files:
            _check_file_name(file_name)
        actor = actor or default_actor()
        version = self._claim_version(actor)
        final = {
            **manifest,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": {file_name: sha256_hex(data) for file_name, data in sorted(files.items())},
        }
        for file_name, data in files.items():
            self._put_new(self._version_key(version, file_name), data)
        self._put_new(self._version_key(version, MANIFEST), to_json(final))
        self._record("registered", version, actor=actor, reason=reason)
        return final

    def _claim_version(self, actor: str) -> str:
        """Win the next free version number with a create-only claim file."""
        number = self._highest_claimed() + 1
        for _ in range(_MAX_ATTEMPTS):
            key = self._version_key(str(number), CLAIM)
            token = uuid.uuid4().hex
            claim = {"token": token, "actor": actor, "at": datetime.now(UTC).isoformat()}
            if self.store.put_bytes(key, to_json(claim), if_absent=True) and self._owns(key, token):
                return str(number)
            number += 1
        raise StoreError(f"{self.store.uri}: could not claim a version of {self.name}")

    def _owns(self, claim_key: str, token: str) -> bool:
        # Some S3-compatible servers check If-None-Match non-atomically; reading the claim
        # back catches a writer that overwrote ours, and _put_new catches the rest loudly.
        return bool(json.loads(self.store.get_bytes(claim_key))["token"] == token)

    def _highest_claimed(self) -> int:
        prefix = f"{self.root}/versions/"
        numbers = (key.removeprefix(prefix).split("/")[0] for key in self.store.list_keys(prefix))
        return max((int(n) for n in numbers if n.isdigit()), default=0)

    def _put_new(self, key: str, data: bytes) -> None:
        if not self.store.put_bytes(key, data, if_absent=True):
            raise StoreError(f"{self.store.uri}: {key} already exists; versions are immutable")

    # Reading versions

    def resolve(self, ref: str) -> str:
        """The complete version `ref` names: a number, an alias, or `latest`."""
        if ref.isascii() and ref.isdigit():
            version = str(int(ref))
            if not self.store.exists(self._version_key(version, MANIFEST)):
                raise NotFoundError(
                    f"version {version} of {self.name} not found in {self.store.uri}"
                )
            return version
        if ref == "latest":
            versions = self._visible_versions()
            if not versions:
                raise NotFoundError(f"no versions of {self.name} in {self.store.uri}")
            return versions[-1]
        if ref not in ALIASES:
            raise NotFoundError(
                f"unknown model reference {ref!r}: use a version number, 'latest', "
                f"{CHAMPION!r} or {CHALLENGER!r}"
            )
        version = self._read_alias(ref)["version"]
        if version is None:
            raise NotFoundError(f"{self.name} has no {ref} in {self.store.uri}")
        return str(version)

    def manifest(self, ref: str) -> dict[str, Any]:
        """The manifest of the version `ref` names."""
        return self._load_manifest(self.resolve(ref))

    def read_file(self, ref: str, name: str) -> bytes:
        """One artifact's bytes, verified against the manifest's sha256."""
        return self._read_verified(self.manifest(ref), name)

    def verify(self, ref: str) -> dict[str, Any]:
        """Check every artifact of a version; returns its manifest or raises IntegrityError."""
        manifest = self.manifest(ref)
        for name in manifest["files"]:
            self._read_verified(manifest, name)
        return manifest

    def download(self, ref: str, dest_dir: Path | str) -> Path:
        """Write a version's verified artifacts and manifest into `dest_dir`; returns it."""
        manifest = self.manifest(ref)
        # Read and verify everything before writing, so a bad artifact leaves no partial copy.
        contents = {name: self._read_verified(manifest, name) for name in manifest["files"]}
        contents[MANIFEST] = to_json(manifest)
        dest = Path(dest_dir)
        for name, data in contents.items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
        return dest

    def list_versions(self) -> list[dict[str, Any]]:
        """Every complete version's manifest in version order, with an `aliases` list added."""
        aliases = self.aliases()
        return [
            {**self._load_manifest(v), "aliases": [a for a, to in aliases.items() if to == v]}
            for v in self._visible_versions()
        ]

    def note(
        self,
        action: str,
        *,
        version: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Append an event that moves no alias (a retrain triggered or skipped, say)."""
        return self._record(
            action, version, actor=actor or default_actor(), reason=reason, details=details
        )

    def last_registered_at(self) -> float | None:
        """When the newest version was registered (Unix seconds), or None for an empty store."""
        times = [datetime.fromisoformat(m["created_at"]) for m in self.list_versions()]
        return max(times).timestamp() if times else None

    def aliases(self) -> dict[str, str]:
        """Alias name -> version, for the aliases currently set."""
        records = (self._read_alias(alias) for alias in ALIASES)
        return {r["alias"]: r["version"] for r in records if r["version"] is not None}

    def events(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        keys = self.store.list_keys(f"{self.root}/events/")
        return [json.loads(self.store.get_bytes(key)) for key in keys]

    def _load_manifest(self, version: str) -> dict[str, Any]:
        key = self._version_key(version, MANIFEST)
        manifest: dict[str, Any] = json.loads(self.store.get_bytes(key))
        return manifest

    def _visible_versions(self) -> list[str]:
        prefix = f"{self.root}/versions/"
        keys = self.store.list_keys(prefix)
        versions = (k.removeprefix(prefix).removesuffix(f"/{MANIFEST}") for k in keys)
        return sorted((v for v in versions if v.isdigit()), key=int)

    def _read_verified(self, manifest: Mapping[str, Any], name: str) -> bytes:
        version = manifest["version"]
        expected = manifest["files"].get(name)
        if expected is None:
            raise NotFoundError(f"version {version} of {self.name} has no file {name!r}")
        key = self._version_key(version, name)
        return check_integrity(f"{self.store.uri}/{key}", self.store.get_bytes(key), expected)

    # Aliases

    def promote(
        self,
        version: str,
        *,
        reason: str,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Make a verified version champion; returns the event, or None if it already was."""
        version = self.verify(version)["version"]
        champion = self._read_alias(CHAMPION)
        previous = champion["version"]
        if previous == version:
            return None
        history = [*champion["history"], previous] if previous else champion["history"]
        actor = actor or default_actor()
        self._write_alias(CHAMPION, version, history, actor=actor, reason=reason)
        challenger = self._read_alias(CHALLENGER)
        if challenger["version"] == version:
            self._write_alias(CHALLENGER, None, challenger["history"], actor=actor, reason=reason)
        return self._record(
            "promoted",
            version,
            alias=CHAMPION,
            previous=previous,
            actor=actor,
            reason=reason,
            details=details,
        )

    def stage(
        self,
        version: str,
        *,
        reason: str,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Make a version the challenger; returns the event."""
        version = self.resolve(version)
        challenger = self._read_alias(CHALLENGER)
        previous = challenger["version"]
        history = [*challenger["history"], previous] if previous else challenger["history"]
        actor = actor or default_actor()
        self._write_alias(CHALLENGER, version, history, actor=actor, reason=reason)
        return self._record(
            "staged",
            version,
            alias=CHALLENGER,
            previous=previous,
            actor=actor,
            reason=reason,
            details=details,
        )

    def promote_or_stage(
        self,
        version: str,
        *,
        reason: str,
        promote: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Make a new version champion if `promote`, or if there is no champion yet and
        `promote` is None; else the challenger. Returns the alias it now holds."""
        if promote or (promote is None and CHAMPION not in self.aliases()):
            self.promote(version, reason=reason, details=details)
            return CHAMPION
        self.stage(version, reason=reason, details=details)
        return CHALLENGER

    def rollback(self, *, reason: str, actor: str | None = None) -> str:
        """Make the previous champion champion again; returns its version.

        Each call steps one further back through the champion history."""
        champion = self._read_alias(CHAMPION)
        current = champion["version"]
        if not champion["history"]:
            raise NotFoundError(
                f"{self.name} in {self.store.uri} has no previous champion to roll back to "
                f"(current champion: {current or 'none'})"
            )
        target = self.verify(champion["history"][-1])["version"]
        actor = actor or default_actor()
        self._write_alias(CHAMPION, target, champion["history"][:-1], actor=actor, reason=reason)
        self._record(
            "rolled_back",
            target,
            alias=CHAMPION,
            previous=current,
            actor=actor,
            reason=reason,
            extra={"from_version": current, "to_version": target},
        )
        return str(target)

    def _read_alias(self, alias: str) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads(self.store.get_bytes(self._alias_key(alias)))
        except NotFoundError:
            return {"alias": alias, "version": None, "history": []}
        return record

    def _write_alias(
        self, alias: str, version: str | None, history: list[str], *, actor: str, reason: str
    ) -> None:
        record = {
            "alias": alias,
            "version": version,
            "history": history,
            "updated_at": datetime.now(UTC).isoformat(),
            "actor": actor,
            "reason": reason,
        }
        self.store.put_bytes(self._alias_key(alias), to_json(record))

    # Audit trail

    def _record(
        self,
        action: str,
        version: str,
        *,
        actor: str,
        reason: str,
        alias: str | None = None,
        previous: str | None = None,
        details: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one event under a fresh key; a collision retries a microsecond later."""
        moment = datetime.now(UTC)
        for _ in range(_MAX_ATTEMPTS):
            event = {
                "action": action,
                "model": self.name,
                "version": version,
                "alias": alias,
                "previous_version": previous,
                **(extra or {}),
                "actor": actor,
                "reason": reason,
                "timestamp": moment.isoformat(),
                "details": dict(details or {}),
            }
            key = f"{self.root}/events/{event_stamp(moment)}-{action}.json"
            if self.store.put_bytes(key, to_json(event), if_absent=True):
                return event
            moment = max(datetime.now(UTC), moment + timedelta(microseconds=1))
        raise StoreError(f"{self.store.uri}: could not append a {action} event for {self.name}")

    def _version_key(self, version: str, file_name: str) -> str:
        return f"{self.root}/versions/{version}/{file_name}"

    def _alias_key(self, alias: str) -> str:
        return f"{self.root}/aliases/{alias}.json"


def open_registry(store_uri: str | None = None, name: str | None = None) -> Registry:
    """The registry at `store_uri` for model `name`, defaulting to FRAUD_MODEL_STORE/NAME."""
    settings = get_settings(model_store=store_uri, model_name=name)
    return Registry(open_store(settings.model_store), settings.model_name)


def _check_file_name(name: str) -> None:
    """A caller's artifact name must be a clean store key that the registry does not use."""
    if name in (MANIFEST, CLAIM):
        raise UsageError(f"{name!r} is reserved for the registry")
    try:
        check_key(name)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
