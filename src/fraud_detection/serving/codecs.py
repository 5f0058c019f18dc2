"""Wire formats to numpy and back: /predict JSON, Open Inference Protocol V2 tensors, feedback.

Each `decode_*` validates a request into what the data plane takes (errors name the field);
each `encode_*` turns the data plane's answer into the response body.
"""

import difflib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from flask import Request, Response
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from .. import __version__
from ..errors import CodecError
from ..schema import FEATURES, N_FEATURES
from .dataplane import Prediction
from .model import LoadedModel

Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A refund is not a card payment: negative amounts are outside what the model was trained on.
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
AMOUNT = FEATURES.index("Amount")
TransactionId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
V2_DATATYPES = {"FP32": np.float32, "FP64": np.float64}
V2_OUTPUTS = ("probabilities", "is_fraud")


class _Base(BaseModel):
    # Merchant data and the like ride along with transactions: accepted, ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)
    transaction_id: TransactionId | None = None


Transaction: type[_Base] = create_model(  # type: ignore[call-overload]
    "Transaction",
    __base__=_Base,
    **{name: (Amount if name == "Amount" else Feature, ...) for name in FEATURES},
)


@dataclass(frozen=True)
class PredictRequest:
    """Validated /predict input: the feature matrix and one id per row (given or generated)."""

    x: NDArray[np.float32]
    ids: list[str]
    batch: bool


@dataclass(frozen=True)
class InferRequest:
    """Validated V2 input: the [N, 30] matrix, the request id, row ids, the outputs asked for."""

    x: NDArray[np.float32]
    request_id: str | None
    ids: list[str]
    outputs: tuple[str, ...]


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialised by orjson (the hot path's largest fixed cost otherwise)."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def json_body(request: Request) -> Any:
    """The parsed JSON body; 415 for any other content type."""
    if request.mimetype != "application/json":
        raise CodecError(
            f"content type must be application/json, got {request.mimetype or 'none'!r}",
            status=415,
        )
    return parse_json(request.get_data(cache=False))


def parse_json(body: bytes) -> Any:
    """The JSON document; NaN and Infinity literals parse, so validation can name their field."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson is strict; the standard parser accepts NaN/Infinity, to report them by field.
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed JSON: {exc}") from exc


def _explain(error: ValidationError, raw: dict[str, Any], index: int | None) -> CodecError:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else None
    where = f"instances[{index}]." if index is not None else ""
    if first["type"] == "missing" and field:
        unknown = [k for k in raw if k not in FEATURES and k != "transaction_id"]
        guess = difflib.get_close_matches(field, unknown, n=1)
        hint = f" (found '{guess[0]}': misspelt?)" if guess else ""
        return CodecError(f"missing field {where}{field}{hint}", field=field)
    value = raw.get(field) if field else None
    return CodecError(f"field {where}{field}: {first['msg']} (got {value!r})", field=field)


def _transaction(raw: Any, index: int | None) -> _Base:
    if not isinstance(raw, dict):
        where = f"instances[{index}]" if index is not None else "the body"
        raise CodecError(f"{where} must be a JSON object of the {N_FEATURES} feature fields")
    try:
        return Transaction.model_validate(raw)
    except ValidationError as exc:
        raise _explain(exc, raw, index) from exc


def _batch(document: Any, key: str, max_batch: int) -> list[Any] | None:
    """The items of {key: [...]} (1..max_batch of them), or None for a single-item body."""
    if not (isinstance(document, dict) and key in document):
        return None
    items = document[key]
    if not isinstance(items, list) or not items:
        raise CodecError(f"{key} must be a non-empty list", field=key)
    if len(items) > max_batch:
        raise CodecError(
            f"{key} has {len(items)} items; at most {max_batch} per request",
            field=key,
            status=413,
        )
    return items


def decode_predict(request: Request, max_batch: int) -> PredictRequest:
    """One transaction object, or {"instances": [...]} with 1..max_batch of them."""
    document = json_body(request)
    instances = _batch(document, "instances", max_batch)
    if instances is not None:
        rows = [_transaction(raw, i) for i, raw in enumerate(instances)]
        batch = True
    else:
        rows = [_transaction(document, None)]
        batch = False
    x = np.array([[getattr(t, name) for name in FEATURES] for t in rows], dtype=np.float32)
    ids = [t.transaction_id or uuid.uuid4().hex for t in rows]
    return PredictRequest(x=x, ids=ids, batch=batch)


def encode_predict(prediction: Prediction, batch: bool) -> Response:
    """Per transaction: id, probability, decision, and the threshold and version that decided."""
    answers = [
        {
            "transaction_id": tid,
            "fraud_probability": round(p, 6),
            "is_fraud": flag,
            "threshold": model.threshold,
            "model_version": model.version,
        }
        for tid, p, flag, model in prediction.answers()
    ]
    if not batch:
        return json_response(answers[0])
    return json_response({"predictions": answers, "model_version": prediction.model.version})


def decode_v2(request: Request, max_batch: int) -> InferRequest:
    """An Open Inference Protocol request with one [N, 30] FP32/FP64 tensor."""
    document = json_body(request)
    x = _v2_tensor(document, max_batch)
    request_id = document.get("id")
    request_id = request_id if isinstance(request_id, str) else None
    # V2 has no per-row ids: rows are "<request id>:<row>", which /feedback accepts.
    prefix = request_id or uuid.uuid4().hex
    ids = [f"{prefix}:{row}" for row in range(len(x))]
    return InferRequest(x, request_id, ids, _requested_outputs(document))


def _v2_tensor(document: Any, max_batch: int) -> NDArray[np.float32]:
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise CodecError("body must be an object with an 'inputs' list", field="inputs")
    if len(document["inputs"]) != 1 or not isinstance(document["inputs"][0], dict):
        raise CodecError("exactly one input tensor is expected", field="inputs")
    tensor = document["inputs"][0]
    datatype = tensor.get("datatype")
    if datatype not in V2_DATATYPES:
        raise CodecError(f"datatype must be FP32 or FP64, got {datatype!r}", field="datatype")
    shape: Any = tensor.get("shape")
    valid_shape = (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    )
    if not valid_shape or shape[1] != N_FEATURES or shape[0] < 1:
        raise CodecError(
            f"shape must be [N, {N_FEATURES}] with N >= 1, got {shape!r}", field="shape"
        )
    if shape[0] > max_batch:
        raise CodecError(f"N = {shape[0]} rows; at most {max_batch}", field="shape", status=413)
    data = np.asarray(tensor.get("data"), dtype=object).ravel()
    kinds = {type(v) for v in data}
    if not kinds <= {int, float}:
        bad = next(t.__name__ for t in kinds if t not in (int, float))
        raise CodecError(f"data must hold numbers only, found {bad}", field="data")
    if data.size != shape[0] * shape[1]:
        raise CodecError(
            f"data has {data.size} values; shape {shape} needs {shape[0] * shape[1]}", field="data"
        )
    x = data.astype(V2_DATATYPES[datatype]).reshape(shape)
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise CodecError(
            f"data row {row}, feature {FEATURES[col]} is not finite", field=FEATURES[col]
        )
    if (x[:, AMOUNT] < 0).any():
        row = int(np.argmax(x[:, AMOUNT] < 0))
        raise CodecError(f"data row {row}, Amount must be >= 0", field="Amount")
    return x.astype(np.float32)


def _requested_outputs(document: dict[str, Any]) -> tuple[str, ...]:
    """The outputs a V2 request names (all of them when it names none)."""
    available = V2_OUTPUTS
    wanted = document.get("outputs")
    if wanted is None:
        return available
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise CodecError('outputs must be a list of {"name": ...} objects', field="outputs")
    names = tuple(str(o.get("name")) for o in wanted)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise CodecError(
            f"unknown output {unknown[0]!r}; available: {', '.join(available)}", field="outputs"
        )
    return names


class Label(BaseModel):
    """One analyst label: 1 fraud, 0 legitimate."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    transaction_id: TransactionId
    label: Annotated[int, Field(strict=True, ge=0, le=1)]


def decode_feedback(request: Request, max_batch: int) -> dict[str, int]:
    """One {transaction_id, label}, or {"labels": [...]}; the last label of an id wins."""
    document = json_body(request)
    items = _batch(document, "labels", max_batch)
    indexed: list[tuple[int | None, Any]] = (
        list(enumerate(items)) if items is not None else [(None, document)]
    )
    labels: dict[str, int] = {}
    for index, raw in indexed:
        where = f"labels[{index}]" if index is not None else "the body"
        if not isinstance(raw, dict):
            raise CodecError(f"{where} must be an object with transaction_id and label")
        try:
            item = Label.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            prefix = f"labels[{index}]." if index is not None else ""
            detail = "missing" if first["type"] == "missing" else first["msg"]
            if field == "label" and first["type"] != "missing":
                detail = "must be 1 (fraud) or 0 (legitimate)"
            raise CodecError(
                f"field {prefix}{field}: {detail} (got {raw.get(field or '')!r})", field=field
            ) from exc
        labels[item.transaction_id] = item.label
    return labels


def encode_v2(name: str, request: InferRequest, prediction: Prediction) -> Response:
    """The V2 response: the requested output tensors in request order."""
    answers = prediction.answers()
    rows = len(answers)
    tensors = {
        "probabilities": {
            "name": "probabilities",
            "shape": [rows],
            "datatype": "FP32",
            "data": [round(p, 6) for _, p, _, _ in answers],
        },
        "is_fraud": {
            "name": "is_fraud",
            "shape": [rows],
            "datatype": "BOOL",
            "data": [flag for _, _, flag, _ in answers],
        },
    }
    model = prediction.model
    parameters: dict[str, Any] = {"threshold": model.threshold}
    versions = [m.version for _, _, _, m in answers]
    if any(v != model.version for v in versions):
        # A/B routing answered some rows with the challenger: say which, row by row.
        parameters["row_model_versions"] = versions
    body: dict[str, Any] = {
        "model_name": name,
        "model_version": model.version,
        "outputs": [tensors[n] for n in request.outputs],
        "parameters": parameters,
    }
    if request.request_id is not None:
        body["id"] = request.request_id
    return json_response(body)


def encode_v2_metadata(name: str, model: LoadedModel) -> dict[str, Any]:
    """V2 model metadata: the input tensor, the outputs, the feature order and threshold."""
    return {
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


def encode_server_metadata() -> dict[str, Any]:
    """V2 server metadata."""
    return {"name": "fraud-detection", "version": __version__, "extensions": []}


def encode_model(model: LoadedModel | None) -> dict[str, Any] | None:
    """What an operator wants to know about a served model."""
    if model is None:
        return None
    return {
        "version": model.version,
        "threshold": model.threshold,
        "metrics": model.manifest.get("metrics", {}).get("test"),
        "created_at": model.manifest.get("created_at"),
        "loaded_at": model.loaded_at,
        "source": model.source,
        "synthetic": model.manifest.get("data", {}).get("synthetic", False),
    }
