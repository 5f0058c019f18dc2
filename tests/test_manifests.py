"""Reading manifests: dotted lookup and the diff `fraud models diff` shows."""

import pytest

from fraud_detection.manifests import lookup, manifest_diff


def test_manifest_diff_marks_added_and_removed_fields() -> None:
    rows = manifest_diff({"threshold": 0.5, "params": {"depth": 3}}, {"threshold": 0.6})
    assert rows == [
        {"field": "threshold", "a": 0.5, "b": 0.6, "delta": pytest.approx(0.1), "changed": True},
        {"field": "params.depth", "a": 3, "b": None, "delta": None, "changed": True},
    ]


def test_lookup_follows_a_dotted_path_and_is_none_when_absent() -> None:
    manifest = {"metrics": {"test": {"pr_auc": 0.8}}, "threshold": 0.4}
    assert lookup(manifest, "metrics.test.pr_auc") == 0.8
    assert lookup(manifest, "threshold") == 0.4
    assert lookup(manifest, "metrics.validation.pr_auc") is None
    assert lookup(manifest, "threshold.value") is None
