"""Model versions, aliases, an audit trail and integrity checks over an object store.

Layout under the store root (SPEC section 4):
  models/<name>/versions/<n>/...         immutable; visible once manifest.json (written last) exists
  models/<name>/aliases/<alias>.json     champion / challenger / canary pointers with their history
  models/<name>/events/<stamp>-<action>.json   append-only audit trail
"""

import getpass
import hashlib
import json
import random
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from .config import Settings
from .errors import IntegrityError, NotFoundError, StoreError, UsageError
from .records import is_version, json_object
from .store import ObjectStore, check_key, open_store

CHAMPION = "champion"
CHALLENGER = "challenger"
CANARY = "canary"
"""A version taking a share of the champion's traffic during a rollout (`fraud rollout`)."""
ALIASES = (CHAMPION, CHALLENGER)
MANIFEST = "manifest.json"
CLAIM = ".claim.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAX_ATTEMPTS = 100
# An alias move that keeps losing the race gives up after this many reads: each loss means
# another move landed, so only a store under a storm of moves ever gets there.
_ALIAS_ATTEMPTS = 50
_ALIAS_BACKOFF = 0.005


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of `data`, as recorded in manifests."""
    return hashlib.sha256(data).hexdigest()


def to_json(obj: Any) -> bytes:
    """The JSON bytes stored for manifests, aliases and events."""
    return json.dumps(obj, indent=2).encode()


def default_actor(github_actor: str = "") -> str:
    """Who is acting: the GitHub Actions user in CI (GITHUB_ACTOR), else user@host."""
    if github_actor:
        return f"github:{github_actor}"
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        user = "unknown"
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


@dataclass(frozen=True)
class Pointer:
    """Where an alias points, the versions it pointed to before (oldest first, the stack
    rollback pops), and how many times it moved."""

    version: str | None = None
    history: tuple[str, ...] = ()
    revision: int = 0
    share: float | None = None
    """The share of the champion's traffic the version takes (the canary's; None for others)."""

    def pointed_at(self, version: str, share: float | None = None) -> "Pointer":
        """This alias moved to `version` (with `share`), the one it leaves pushed onto its
        history; only the share changes when it points there already."""
        if version == self.version:
            return replace(self, share=share)
        pushed = (self.version,) if self.version is not None else ()
        return Pointer(version, self.history + pushed, share=share)


class Move(NamedTuple):
    """An alias before and after one compare-and-swap move (the same when nothing changed)."""

    before: Pointer
    after: Pointer

    @property
    def changed(self) -> bool:
        """Whether the move wrote anything."""
        return self.after.revision != self.before.revision


class Registry:
    """The versions and aliases of one model name in one store; `actor` is recorded on
    every change made without naming another (default: `default_actor()`)."""

    def __init__(
        self, store: ObjectStore, name: str = "fraud-detector", *, actor: str | None = None
    ) -> None:
        if not _NAME.fullmatch(name):
            raise UsageError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-'")
        self.store = store
        self.name = name
        self.actor = actor or default_actor()
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
        actor = actor or self.actor
        version, token = self._claim_version(actor)
        final = {
            **manifest,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": {file_name: sha256_hex(data) for file_name, data in sorted(files.items())},
        }
        written: list[str] = []
        try:
            for file_name, data in [*files.items(), (MANIFEST, to_json(final))]:
                self._put_new(self._version_key(version, file_name), data)
                written.append(file_name)
        except StoreError as exc:
            raise type(exc)(f"{exc}; {self._abandon(version, token, written)}") from exc
        except BaseException:
            self._abandon(version, token, written)
            raise
        self._record("registered", version, actor=actor, reason=reason)
        return final

    def _abandon(self, version: str, token: str, written: list[str]) -> str:
        """Remove what an unfinished registration wrote, its claim last (so the number is
        free again only once its folder is empty); says what became of the version."""
        claim = self._version_key(version, CLAIM)
        try:
            for file_name in written:
                self.store.delete(self._version_key(version, file_name))
            if self._owns(claim, token):
                self.store.delete(claim)
        except StoreError as exc:
            return (
                f"version {version} is left unfinished and invisible; removing its files "
                f"failed too: {exc}"
            )
        return f"version {version} was not registered, and what it had written was removed"

    def _claim_version(self, actor: str) -> tuple[str, str]:
        """Win the next free version number with a create-only claim file; the number and
        the claim's token."""
        number = self._highest_claimed() + 1
        for _ in range(_MAX_ATTEMPTS):
            key = self._version_key(str(number), CLAIM)
            token = uuid.uuid4().hex
            claim = {"token": token, "actor": actor, "at": datetime.now(UTC).isoformat()}
            if self.store.put_bytes(key, to_json(claim), if_absent=True) and self._owns(key, token):
                return str(number), token
            number += 1
        raise StoreError(f"{self.store.uri}: could not claim a version of {self.name}")

    def _owns(self, claim_key: str, token: str) -> bool:
        # Some S3-compatible servers check If-None-Match non-atomically; reading the claim
        # back catches a writer that overwrote ours, and _put_new catches the rest loudly.
        claim = json_object(self._where(claim_key), self.store.get_bytes(claim_key))
        return bool(claim.get("token") == token)

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
        known = ref in ALIASES or (
            _NAME.fullmatch(ref) is not None and self.store.exists(self._alias_key(ref))
        )
        if not known:
            raise NotFoundError(
                f"unknown model reference {ref!r}: use a version number, 'latest', "
                f"{CHAMPION!r}, {CHALLENGER!r} or another alias of {self.name}"
            )
        target = self.alias(ref).version
        if target is None:
            raise NotFoundError(f"{self.name} has no {ref} in {self.store.uri}")
        self._check_exists(ref, target)
        return target

    def _check_exists(self, alias: str, version: str) -> None:
        """StoreError naming the alias file when the version it names is not in the store."""
        if not self.store.exists(self._version_key(version, MANIFEST)):
            raise StoreError(
                f"{self._where(self._alias_key(alias))}: names version {version}, "
                "which is not in the store"
            )

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
        """Every complete version's manifest in version order, with an `aliases` list added;
        StoreError if an alias or manifest cannot be read."""
        versions, problems = self.survey()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(problems[0] + more)
        return versions

    def survey(self) -> tuple[list[dict[str, Any]], list[str]]:
        """What `list_versions` gives of every version and alias that can be read, and one
        line per file that cannot (naming it and what is wrong), so one broken file hides
        nothing else."""
        problems: list[str] = []
        aliases: dict[str, str] = {}
        for name in self._alias_names():
            try:
                pointer = self.alias(name)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            if pointer.version is not None:
                aliases[name] = pointer.version
        versions = []
        visible = self._visible_versions()
        for version in visible:
            try:
                manifest = self._load_manifest(version)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            named = [name for name, to in aliases.items() if to == version]
            versions.append({**manifest, "aliases": named})
        problems += [
            f"{self._where(self._alias_key(name))}: names version {to}, which is not in the store"
            for name, to in aliases.items()
            if to not in visible
        ]
        return versions, problems

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
            action, version, actor=actor or self.actor, reason=reason, details=details
        )

    def last_registered_at(self) -> float | None:
        """When the newest version was registered (Unix seconds), or None for an empty store."""
        times = [datetime.fromisoformat(m["created_at"]) for m in self.list_versions()]
        return max(times).timestamp() if times else None

    def aliases(self) -> dict[str, str]:
        """Alias name -> version, for the aliases currently set."""
        pointers = {name: self.alias(name) for name in self._alias_names()}
        return {name: p.version for name, p in pointers.items() if p.version is not None}

    def _alias_names(self) -> list[str]:
        prefix = f"{self.root}/aliases/"
        names = (k.removeprefix(prefix).removesuffix(".json") for k in self.store.list_keys(prefix))
        return [name for name in names if _NAME.fullmatch(name)]

    def events(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        keys = self.store.list_keys(f"{self.root}/events/")
        return [json_object(self._where(key), self.store.get_bytes(key)) for key in keys]

    def _load_manifest(self, version: str) -> dict[str, Any]:
        key = self._version_key(version, MANIFEST)
        where = self._where(key)
        manifest = json_object(where, self.store.get_bytes(key))
        if manifest.get("version") != version:
            found = manifest.get("version", "no version")
            raise StoreError(f"{where}: names version {found!r}, not {version}")
        files = manifest.get("files")
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise StoreError(f'{where}: "files" is not an object of sha256 digests')
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

    def alias(self, alias: str) -> Pointer:
        """Where `alias` points now, with its history (an alias never set points nowhere)."""
        return self._read_pointer(alias)[0]

    def move_alias(
        self,
        alias: str,
        change: Callable[[Pointer], Pointer | None],
        *,
        actor: str,
        reason: str,
    ) -> Move:
        """Apply `change` to where `alias` points, as a compare-and-swap.

        `change` gets the pointer as read and returns the new one, or None to leave it. The
        write is conditional on the alias being unchanged since that read (If-Match on S3, a
        locked check on a folder); when another writer moved it first, `change` runs again on
        the new state, a bounded number of times, then StoreError: nothing is lost or undone
        silently. Any alias name works (champion, challenger, canary...)."""
        if not _NAME.fullmatch(alias):
            raise UsageError(f"invalid alias name {alias!r}: use letters, digits, '.', '_' or '-'")
        key = self._alias_key(alias)
        for attempt in range(_ALIAS_ATTEMPTS):
            before, tag = self._read_pointer(alias)
            after = change(before)
            if after is None:
                return Move(before, before)
            after = replace(after, revision=before.revision + 1)
            record = {
                "alias": alias,
                "version": after.version,
                "history": list(after.history),
                "revision": after.revision,
                **({"share": after.share} if after.share is not None else {}),
                "updated_at": datetime.now(UTC).isoformat(),
                "actor": actor,
                "reason": reason,
            }
            if self.store.put_bytes(key, to_json(record), if_absent=tag is None, if_match=tag):
                return Move(before, after)
            # Lost the race: someone else's move landed. Back off a random while, so the
            # losers do not collide again in lockstep, and start over from their result.
            time.sleep(random.uniform(0, min(_ALIAS_BACKOFF * 2**attempt, 0.5)))
        raise StoreError(
            f"{self.store.uri}: the {alias} alias of {self.name} was moved by others "
            f"{_ALIAS_ATTEMPTS} times while this change waited; nothing was changed, try again"
        )

    def promote(
        self,
        version: str,
        *,
        reason: str,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Make a verified version champion; returns the event, or None if it already was."""
        return self._crown(version, reason=reason, actor=actor, details=details, vacant=False)

    def _crown(
        self,
        ref: str,
        *,
        reason: str,
        actor: str | None,
        details: Mapping[str, Any] | None,
        vacant: bool,
    ) -> dict[str, Any] | None:
        """Make `ref` champion (with `vacant`, only if there is none); the event, or None."""
        version = self.verify(ref)["version"]
        actor = actor or self.actor
        self.alias(CHALLENGER)  # a broken challenger fails the promotion before it moves

        def crown(champion: Pointer) -> Pointer | None:
            if champion.version == version or (vacant and champion.version is not None):
                return None
            return champion.pointed_at(version)

        move = self.move_alias(CHAMPION, crown, actor=actor, reason=reason)
        if not move.changed:
            return None

        def vacate(challenger: Pointer) -> Pointer | None:
            return replace(challenger, version=None) if challenger.version == version else None

        self.move_alias(CHALLENGER, vacate, actor=actor, reason=reason)
        return self._record_move("promoted", CHAMPION, move, actor, reason, details)

    def stage(
        self,
        version: str,
        *,
        reason: str,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
        alias: str = CHALLENGER,
        share: float | None = None,
    ) -> dict[str, Any]:
        """Point `alias` (the challenger unless told) at a version, with a traffic `share` for
        a canary; returns the event."""
        if share is not None and not 0.0 < share <= 1.0:
            raise UsageError(f"a traffic share must be in (0, 1], not {share}")
        version = self.resolve(version)
        actor = actor or self.actor
        move = self.move_alias(
            alias, lambda pointer: pointer.pointed_at(version, share), actor=actor, reason=reason
        )
        extra = {"share": share} if share is not None else None
        return self._record_move("staged", alias, move, actor, reason, details, extra)

    def unset(self, alias: str, *, reason: str, actor: str | None = None) -> dict[str, Any] | None:
        """Point `alias` nowhere (a canary rolled back or done); the event, or None if it
        pointed nowhere already."""
        actor = actor or self.actor

        def clear(pointer: Pointer) -> Pointer | None:
            return Pointer(None, pointer.history) if pointer.version is not None else None

        move = self.move_alias(alias, clear, actor=actor, reason=reason)
        if not move.changed:
            return None
        return self._record(
            "unset",
            str(move.before.version),
            alias=alias,
            previous=move.before.version,
            actor=actor,
            reason=reason,
            extra={"alias_revision": move.after.revision},
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
        if promote is not False:
            crowned = self._crown(
                version, reason=reason, actor=None, details=details, vacant=promote is None
            )
            if promote or crowned is not None:
                return CHAMPION
        self.stage(version, reason=reason, details=details)
        return CHALLENGER

    def rollback(self, *, reason: str, actor: str | None = None) -> str:
        """Make the previous champion champion again; returns its version.

        Each call steps one further back through the champion history."""
        return str(self.step_back(reason=reason, actor=actor)["version"])

    def step_back(self, *, reason: str, actor: str | None = None) -> dict[str, Any]:
        """Roll back as `rollback` does; returns the rolled_back event (from and to)."""
        actor = actor or self.actor
        verified: set[str] = set()

        def back(champion: Pointer) -> Pointer:
            if not champion.history:
                raise NotFoundError(
                    f"{self.name} in {self.store.uri} has no previous champion to roll back to "
                    f"(current champion: {champion.version or 'none'})"
                )
            target = champion.history[-1]
            if target not in verified:
                self._check_exists(CHAMPION, target)
                self.verify(target)
                verified.add(target)
            return Pointer(target, champion.history[:-1])

        move = self.move_alias(CHAMPION, back, actor=actor, reason=reason)
        extra = {"from_version": move.before.version, "to_version": move.after.version}
        return self._record_move("rolled_back", CHAMPION, move, actor, reason, None, extra)

    def _record_move(
        self,
        action: str,
        alias: str,
        move: Move,
        actor: str,
        reason: str,
        details: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The event of an alias move: `previous_version` is what the winning write replaced,
        and `alias_revision` orders the moves of one alias even when events land out of order."""
        return self._record(
            action,
            str(move.after.version),
            alias=alias,
            previous=move.before.version,
            actor=actor,
            reason=reason,
            details=details,
            extra={**(extra or {}), "alias_revision": move.after.revision},
        )

    def _read_pointer(self, alias: str) -> tuple[Pointer, str | None]:
        """The alias as stored, and the tag a conditional write compares with (None: unset)."""
        try:
            data, tag = self.store.get_tagged(self._alias_key(alias))
        except NotFoundError:
            return Pointer(), None
        where = self._where(self._alias_key(alias))
        record = json_object(where, data)
        version, history = record.get("version"), record.get("history", [])
        revision, share = record.get("revision", 0), record.get("share")
        if not (
            (version is None or is_version(version))
            and isinstance(history, list)
            and all(is_version(v) for v in history)
            and isinstance(revision, int)
            and (share is None or isinstance(share, int | float))
        ):
            raise StoreError(
                f'{where}: not an alias record ("version" a version number or null, '
                f'"history" a list of version numbers): found {json.dumps(record)[:120]}'
            )
        return Pointer(version, tuple(history), revision, share), tag

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

    def _where(self, key: str) -> str:
        """The file `key` as a user finds it: the store's URI and the key."""
        return f"{self.store.uri.rstrip('/')}/{key}"

    def _alias_key(self, alias: str) -> str:
        return f"{self.root}/aliases/{alias}.json"


def open_registry(settings: Settings) -> Registry:
    """The registry the settings name (FRAUD_MODEL_STORE, FRAUD_MODEL_NAME), acting as the
    GitHub Actions user in CI."""
    return Registry(
        open_store(settings.model_store),
        settings.model_name,
        actor=default_actor(settings.github_actor),
    )


def _check_file_name(name: str) -> None:
    """A caller's artifact name must be a clean store key that the registry does not use."""
    if name in (MANIFEST, CLAIM):
        raise UsageError(f"{name!r} is reserved for the registry")
    try:
        check_key(name)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
