"""The registry's JSON records (manifests, aliases, events, claims) read defensively: a file
that is empty, truncated or of the wrong shape is a StoreError naming it and what is wrong,
never a traceback from the JSON parser."""

import json
from typing import Any

from .errors import StoreError


def json_object(where: str, data: bytes) -> dict[str, Any]:
    """The JSON object `data` holds; StoreError naming `where` when it holds anything else."""
    if not data.strip():
        raise StoreError(f"{where}: empty file, expected a JSON object")
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        raise StoreError(f"{where}: not text (not UTF-8), expected a JSON object") from None
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"{where}: not valid JSON, truncated or corrupted "
            f"({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise StoreError(f"{where}: expected a JSON object, found {json_type(value)}")
    return value


def json_type(value: Any) -> str:
    """How JSON calls the type of `value`, with its article: 'a list', 'a string'..."""
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), "a number")


def is_version(value: Any) -> bool:
    """Whether `value` is a version as records hold it: a string of digits."""
    return isinstance(value, str) and value.isascii() and value.isdigit()
