"""Model families: adding one is a module (defaults, fit, ONNX converter) and one registry
line. A toy family, defined here, is trained, exported, checked for parity and served."""

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from skl2onnx import update_registered_converter
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from skl2onnx.operator_converters.random_forest import convert_sklearn_random_forest_classifier
from sklearn.ensemble import ExtraTreesClassifier

from fraud_detection.data import make_synthetic
from fraud_detection.families import FAMILIES, Family, TreeCallback
from fraud_detection.registry import sha256_hex
from fraud_detection.serving.model import build_model
from fraud_detection.training import TrainingOptions, features_and_label, train


class ToyTrees(ExtraTreesClassifier):  # type: ignore[misc]
    """A classifier skl2onnx has never heard of, so the family must bring its converter."""


def fit_toy(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    sample_weight: NDArray[np.float64] | None = None,
) -> ToyTrees:
    model = ToyTrees(**params, n_jobs=n_jobs).fit(x, y, sample_weight=sample_weight)
    if on_trees:
        on_trees(len(model.estimators_), len(model.estimators_))
    return model


def register_toy_converter() -> None:
    """skl2onnx's forest converter, taught the new class, with the options it reads."""
    update_registered_converter(
        ToyTrees,
        "ToyTrees",
        calculate_linear_classifier_output_shapes,
        convert_sklearn_random_forest_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "nocl": [True, False],
            "raw_scores": [True, False],
            "decision_path": [True, False],
            "decision_leaf": [True, False],
        },
    )


TOY = Family(
    name="toy",
    estimator="ToyTrees",
    defaults={"n_estimators": 15, "min_samples_leaf": 20, "random_state": 0},
    fit=fit_toy,
    register_converter=register_toy_converter,
)


def test_a_new_family_is_one_module_and_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAMILIES, TOY.name, TOY)  # the registry line
    df = make_synthetic(rows=20_000, seed=5)
    grown: list[tuple[int, int]] = []
    trained = train(
        df,
        TrainingOptions(algorithm="toy", n_jobs=1),
        source="synthetic",
        model_name="m",
        on_trees=lambda done, total: grown.append((done, total)),
    )
    assert grown == [(15, 15)]
    manifest = trained.manifest
    assert (manifest["family"], manifest["algorithm"]) == ("toy", "ToyTrees")
    assert manifest["params"] == TOY.defaults
    assert manifest["onnx_parity_max_abs_diff"] <= 1e-5  # `train` refuses a graph that is not
    served = build_model(
        trained.files,
        {**manifest, "version": "1", "files": {n: sha256_hex(d) for n, d in trained.files.items()}},
        source="test",
    )
    x, _ = features_and_label(df.tail(200))
    expected = trained.model.predict_proba(x)[:, 1]
    assert np.max(np.abs(served.score(x.astype(np.float32)) - expected)) <= 1e-5
    assert served.explainer is not None  # its TreeEnsemble explains like any other family's


def test_every_family_names_its_estimator_and_fits_with_its_defaults() -> None:
    for name, family in FAMILIES.items():
        assert family.name == name
        assert family.params(trees=7)["n_estimators"] == 7
        assert family.params() == dict(family.defaults)
