"""ONNX inference with onnxruntime only: what the service imports (no scikit-learn)."""

from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

INPUT_NAME = "input"
PROBABILITIES = "probabilities"
LABEL = "label"
DECISION_RULE = "label = probabilities[:, 1] >= threshold, compared in float32"
"""What the manifest says of the decision (`onnx.label`): the service's and the file's."""


def onnx_session(onnx_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session on the CPU; one thread suits many small requests."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def onnx_fraud_probability(session: ort.InferenceSession, x: NDArray[Any]) -> NDArray[np.float32]:
    """Fraud probability (class 1) for each row of `x`."""
    (probabilities,) = session.run([PROBABILITIES], {INPUT_NAME: np.asarray(x, dtype=np.float32)})
    return np.asarray(probabilities[:, 1], dtype=np.float32)


def decide(probabilities: NDArray[np.float32], threshold: float) -> NDArray[np.bool_]:
    """The served decision: fraud when the float32 probability is at least the threshold
    rounded to float32, as the ONNX file's `label` output computes it (DECISION_RULE)."""
    return np.asarray(probabilities >= np.float32(threshold))
