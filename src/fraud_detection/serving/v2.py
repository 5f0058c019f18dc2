"""Open Inference Protocol (KServe V2) REST endpoints over the same scoring core."""

import uuid
from typing import Any

from flask import Blueprint, jsonify

from .. import __version__
from ..errors import CodecError
from ..schema import N_FEATURES
from .codecs import decode_v2, requested_outputs
from .log_writer import new_batch
from .model import LoadedModel
from .scoring import observe_latency, score
from .state import json_body, json_response, now, state

bp = Blueprint("v2", __name__, url_prefix="/v2")
OUTPUTS = ("probabilities", "is_fraud")


def _model(name: str, version: str | None) -> LoadedModel:
    """The served model matching the path, or a 404 / 503 error."""
    s = state()
    if name != s.settings.model_name:
        raise CodecError(
            f"unknown model {name!r}; this server serves {s.settings.model_name!r}", status=404
        )
    holder = s.holder
    if holder.champion is None:
        raise CodecError("no model loaded yet; retry shortly", status=503)
    if version is None:
        return holder.champion
    for model in (holder.champion, holder.challenger):
        if model is not None and model.version == version:
            return model
    raise CodecError(f"version {version!r} of {name!r} is not served", status=404)


@bp.get("/health/live")
def live() -> Any:
    return jsonify({"live": True})


@bp.get("/health/ready")
def ready() -> Any:
    is_ready = state().holder.ready
    return jsonify({"ready": is_ready}), 200 if is_ready else 503


@bp.get("")
def server_metadata() -> Any:
    return jsonify({"name": "fraud-detection", "version": __version__, "extensions": []})


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Any:
    model = _model(name, version)
    return jsonify(
        {
            "name": name,
            "versions": [model.version],
            "platform": "onnx",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, N_FEATURES]}],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1]},
                {"name": "is_fraud", "datatype": "BOOL", "shape": [-1]},
            ],
            "parameters": {"features": model.manifest["features"], "threshold": model.threshold},
        }
    )


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Any:
    _model(name, version)
    return jsonify({"name": name, "ready": True})


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Any:
    """Score an [N, 30] tensor; outputs `probabilities` (FP32) and `is_fraud` (BOOL)."""
    started = now()
    model = _model(name, version)
    document = json_body()
    x, request_id = decode_v2(document, state().settings.max_batch)
    names = requested_outputs(document, OUTPUTS)
    result = score(model, x)
    rows = len(x)
    tensors = {
        "probabilities": {
            "name": "probabilities",
            "shape": [rows],
            "datatype": "FP32",
            "data": [round(float(p), 6) for p in result.probabilities],
        },
        "is_fraud": {
            "name": "is_fraud",
            "shape": [rows],
            "datatype": "BOOL",
            "data": [bool(f) for f in result.is_fraud],
        },
    }
    body: dict[str, Any] = {
        "model_name": name,
        "model_version": model.version,
        "outputs": [tensors[n] for n in names],
        "parameters": {"threshold": model.threshold},
    }
    if request_id is not None:
        body["id"] = request_id
    # V2 has no per-row ids: rows are logged as "<request id>:<row>", which /feedback accepts.
    prefix = request_id or uuid.uuid4().hex
    ids = [f"{prefix}:{row}" for row in range(rows)]
    state().prediction_log.log(new_batch(result, x, ids, "v2_infer", started))
    observe_latency("v2_infer", model.version, started)
    return json_response(body)
