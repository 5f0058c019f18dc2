"""Reading manifests: a field by its dotted path, and the differences between two versions."""

from collections.abc import Mapping
from typing import Any

DIFF_SECTIONS = ("threshold", "metrics", "data", "params", "files")
"""The manifest sections `manifest_diff` compares, in display order."""


def lookup(manifest: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path like `metrics.test.pr_auc`, or None if absent."""
    value: Any = manifest
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts as {dotted.path: leaf value}."""
    if not isinstance(value, Mapping):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}"))
    return flat


def manifest_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows {field, a, b, delta, changed} over the compared sections; delta for numbers only."""
    rows = []
    for section in DIFF_SECTIONS:
        left, right = flatten(a.get(section), section), flatten(b.get(section), section)
        for field in [*left, *(k for k in right if k not in left)]:
            va, vb = left.get(field), right.get(field)
            if va is None and vb is None:
                continue
            rows.append(
                {"field": field, "a": va, "b": vb, "delta": _delta(va, vb), "changed": va != vb}
            )
    return rows


def _delta(a: Any, b: Any) -> float | None:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return b - a if numbers else None
