"""ONNX export of a fitted pipeline of any family, and the parity check that guards it."""

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skl2onnx import to_onnx, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.pipeline import Pipeline

from .errors import ParityError
from .inference import INPUT_NAME, onnx_fraud_probability, onnx_session
from .schema import N_FEATURES

PARITY_TOLERANCE = 1e-5
# ai.onnx.ml 3 keeps the TreeEnsemble operator current; onnxruntime runs it natively.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@cache
def _register_booster_converters() -> None:
    """skl2onnx knows scikit-learn only; onnxmltools converts the boosters inside the same
    pipeline. Imported on first export, so commands that never export skip both libraries."""
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from xgboost import XGBClassifier

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for estimator, alias, converter in (
        (XGBClassifier, "XGBoostXGBClassifier", convert_xgboost),
        (LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm),
    ):
        update_registered_converter(
            estimator,
            alias,
            calculate_linear_classifier_output_shapes,
            converter,
            options=options,
        )


def export_onnx(model: Pipeline) -> bytes:
    """The fitted pipeline as an ONNX graph: float32 input [N, 30], `probabilities` [N, 2]."""
    _register_booster_converters()
    # The trees of every family compare float32 inputs, so a float32 graph decides identically.
    onx = to_onnx(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    return bytes(onx.SerializeToString())


def check_parity(onnx_bytes: bytes, model: Pipeline, x: NDArray[Any]) -> float:
    """Largest |ONNX - Python model| probability gap on `x`; raises ParityError past 1e-5."""
    onnx_p = onnx_fraud_probability(onnx_session(onnx_bytes, threads=0), x).astype(np.float64)
    sklearn_p = model.predict_proba(x)[:, 1]
    gap = float(np.max(np.abs(onnx_p - sklearn_p))) if len(x) else 0.0
    if gap > PARITY_TOLERANCE:
        worst = int(np.argmax(np.abs(onnx_p - sklearn_p)))
        raise ParityError(
            f"ONNX and the fitted model disagree by {gap:.2e} (> {PARITY_TOLERANCE:g}) "
            f"on validation row {worst}: the exported model is not used"
        )
    return gap
