"""ONNX export of a fitted pipeline of any family, and the parity check that guards it."""

from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from .errors import ParityError
from .families import FAMILIES
from .inference import INPUT_NAME, LABEL, PROBABILITIES, onnx_fraud_probability, onnx_session
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


def with_decision(onnx_bytes: bytes, threshold: float) -> bytes:
    """The model whose `label` output is the served decision (inference.decide): fraud when
    column 1 of `probabilities` is at least `threshold`, compared in float32. The exporters'
    own label (the likelier class, so a 0.5 cut) is renamed and left unused, so no reader of
    the file gets other decisions than the service."""
    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    for node in graph.node:
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                if name == LABEL:
                    names[i] = "exporter_label"
    column = numpy_helper.from_array(np.array(1, dtype=np.int64), "decision_column")
    cut = numpy_helper.from_array(np.array(threshold, dtype=np.float32), "decision_threshold")
    graph.initializer.extend([column, cut])
    graph.node.extend(
        [
            # A scalar index takes the column and drops the axis: [N, 2] -> [N].
            helper.make_node("Gather", [PROBABILITIES, column.name], ["fraud_p"], axis=1),
            helper.make_node("GreaterOrEqual", ["fraud_p", cut.name], ["decision"]),
            helper.make_node("Cast", ["decision"], [LABEL], to=TensorProto.INT64),
        ]
    )
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


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
