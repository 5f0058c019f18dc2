"""ONNX export of a fitted pipeline of any family, and the parity check that guards it."""

from typing import Any

import numpy as np
from numpy.typing import NDArray
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from .errors import ParityError
from .families import FAMILIES
from .inference import INPUT_NAME, onnx_fraud_probability, onnx_session
from .schema import N_FEATURES

PARITY_TOLERANCE = 1e-5
# ai.onnx.ml 3 keeps the TreeEnsemble operator current; onnxruntime runs it natively.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def export_onnx(model: Pipeline) -> bytes:
    """The fitted pipeline as an ONNX graph: float32 input [N, 30], `probabilities` [N, 2]."""
    for family in FAMILIES.values():  # skl2onnx converts the pipeline, each family its step
        family.register_converter()
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
