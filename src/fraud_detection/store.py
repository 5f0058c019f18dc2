"""Object store: a local folder or an S3 prefix behind the same small interface."""

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import create_loader

from .errors import NotFoundError, StoreError

# Written next to the target then renamed into place; never listed as keys.
TMP_PREFIX = ".tmp-"
# S3 answers a lost If-None-Match race with 412, or 409 while another conditional write runs.
_CONDITIONAL_LOSS = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
# Standard mode retries throttling and transient network errors with backoff; the number of
# attempts still comes from AWS_MAX_ATTEMPTS / the AWS config file when set.
_S3_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=60)
# Parsing the S3 service model costs ~0.1 s per client; share it, not credentials or config.
_AWS_MODELS = create_loader()


class ObjectStore(Protocol):
    """Bytes under '/'-separated keys, relative to the store root."""

    uri: str

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> bool:
        """Write `data` at `key` and return True; or write nothing and return False when
        `if_absent` and the key exists, or `if_match` is not the tag the key holds now (a
        compare-and-swap: no other write can land between the check and this one)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The bytes at `key`; raises NotFoundError if there are none."""
        ...

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The bytes at `key` and the tag `put_bytes(if_match=...)` compares with."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key` if it exists."""
        ...

    def exists(self, key: str) -> bool:
        """Whether `key` holds an object."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix`, relative to the store root, sorted."""
        ...


def open_store(uri: str) -> ObjectStore:
    """The store for `s3://bucket/prefix` or a local folder path."""
    if uri.startswith("s3://"):
        return S3Store(uri)
    return LocalStore(uri)


def check_key(key: str) -> str:
    """`key` itself if it is a clean relative '/'-separated path, else StoreError."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid store key {key!r}: must be a relative path without '..'")
    return key


class LocalStore:
    """A folder; every write lands atomically, so readers never see half a file."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.root = Path(uri)

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> bool:
        """Write via a temp file, then move it into place: `if_absent` links it, which fails
        if the key exists; `if_match` replaces it under the folder's lock."""
        target = self.root / check_key(key)
        with self._errors(key, "write"):
            tmp = _write_temp(target, data)
            try:
                if if_absent:
                    try:
                        os.link(tmp, target)
                    except FileExistsError:
                        return False
                    return True
                if if_match is None:
                    os.replace(tmp, target)
                    return True
                with _locked(target.parent):
                    if _file_tag(target) != if_match:
                        return False
                    os.replace(tmp, target)
                    return True
            finally:
                tmp.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        """The file's bytes; NotFoundError if it does not exist."""
        path = self.root / check_key(key)
        with self._errors(key, "read"):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                raise NotFoundError(f"{key} not found in store {self.uri}") from None

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The file's bytes and their sha256, the tag a compare-and-swap compares with."""
        data = self.get_bytes(key)
        return data, hashlib.sha256(data).hexdigest()

    def delete(self, key: str) -> None:
        """Remove the file, and its folder once empty (a version folder left by a failed write)."""
        target = self.root / check_key(key)
        with self._errors(key, "delete"):
            target.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: other keys live there
                target.parent.rmdir()

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return (self.root / check_key(key)).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        """Files under the folder holding `prefix` whose relative path starts with it."""
        base = self.root / prefix.rpartition("/")[0]
        with self._errors(prefix, "list"):
            if not base.is_dir():
                return []
            keys = (
                path.relative_to(self.root).as_posix()
                for path in base.rglob("*")
                if path.is_file() and not path.name.startswith(TMP_PREFIX)
            )
            return sorted(k for k in keys if k.startswith(prefix))

    @contextlib.contextmanager
    def _errors(self, key: str, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StoreError(
                f"local store {self.uri}: cannot {action} {key}: {exc.strerror or exc}"
            ) from exc


class S3Store:
    """A bucket prefix; credentials, region and AWS_ENDPOINT_URL come from the standard chain."""

    def __init__(self, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise StoreError(f"invalid store URI {uri!r}: expected s3://bucket/prefix")
        self.uri = uri
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        with self._errors(""):
            self._client: Any = _s3_client()

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> bool:
        """PUT the object; `if_absent` sends If-None-Match: * and `if_match` If-Match: ETag,
        so S3 itself refuses a write that lost the race."""
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        if if_match is not None:
            condition = {"IfMatch": if_match}
        with self._errors(key):
            try:
                self._client.put_object(
                    Bucket=self.bucket, Key=self._full(key), Body=data, **condition
                )
            except ClientError as exc:
                # If-Match on a key deleted meanwhile answers 404: that race is lost too.
                lost = _CONDITIONAL_LOSS | (_MISSING if if_match is not None else set())
                if condition and _error_code(exc) in lost:
                    return False
                raise
        return True

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; NotFoundError if there is none."""
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            body: bytes = response["Body"].read()
            return body

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its ETag, read in the one GET."""
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            body: bytes = response["Body"].read()
            return body, str(response["ETag"])

    def delete(self, key: str) -> None:
        """DELETE the object (S3 answers success for a key that is not there)."""
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def exists(self, key: str) -> bool:
        """HEAD the object."""
        try:
            with self._errors(key):
                self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except NotFoundError:
            return False
        return True

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under the prefix, page by page, relative to the store root."""
        root = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._errors(prefix):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix):
                keys.extend(obj["Key"].removeprefix(root) for obj in page.get("Contents", []))
        return sorted(keys)

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        where = f"s3://{self.bucket}/" + "/".join(p for p in (self.prefix, key) if p)
        try:
            yield
        except ClientError as exc:
            code = _error_code(exc)
            message = exc.response.get("Error", {}).get("Message") or code
            if code in _MISSING:
                raise NotFoundError(f"{where} not found") from exc
            raise StoreError(f"{where}: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{where}: {exc}") from exc


def _write_temp(target: Path, data: bytes) -> Path:
    """`data` fsynced in a fresh temp file beside `target`, ready to be moved into place."""
    tmp = target.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    for attempt in range(2):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # 0o666 less the umask, like any file a program writes: a store written by one
            # account (training) is read by another (the service's non-root user).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileNotFoundError:
            # `delete` removed the folder once it was empty, between the two calls.
            if attempt:
                raise
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` itself: writers of its files take turns, across
    threads and processes, and the kernel drops the lock of a process that dies."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _file_tag(path: Path) -> str | None:
    """The tag LocalStore.get_tagged gives the file now, or None if there is none."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _s3_client() -> Any:
    session = botocore.session.get_session()
    session.register_component("data_loader", _AWS_MODELS)
    return boto3.session.Session(botocore_session=session).client("s3", config=_S3_CONFIG)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
