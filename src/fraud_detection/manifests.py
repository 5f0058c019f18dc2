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


def scored_slice(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The rows a version's `metrics.test` were measured on: a training run's test slice, or
    for `fraud retrain` its holdout; each is the most recent `share` of that run's data."""
    retrained = isinstance(manifest.get("retraining"), Mapping)
    history = lookup(manifest, "data.history_fraction")
    rows = lookup(manifest, "retraining.holdout_rows" if retrained else "data.test_rows")
    return {
        "name": "retrain holdout" if retrained else "train test",
        "rows": rows if rows is not None else lookup(manifest, "metrics.test.rows"),
        "share": round(1 - history, 4) if isinstance(history, float | int) else None,
    }


def describe_slice(slice_: Mapping[str, Any]) -> str:
    """`retrain holdout, last 10%: 28,481 rows`, leaving out what is unknown."""
    text = str(slice_["name"])
    if slice_.get("share") is not None:
        text += f", last {100 * slice_['share']:.0f}%"
    if slice_.get("rows") is not None:
        text += f": {slice_['rows']:,} rows"
    return text


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
