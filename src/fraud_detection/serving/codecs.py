"""Wire formats to numpy and back: /predict JSON, Open Inference Protocol V2 tensors, feedback.

Each `decode_*` validates a request into what the data plane takes (errors name the field);
each `encode_*` turns the data plane's answer into the response body.
"""

import difflib
import json
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from flask import Request, Response
from gunicorn.http.errors import ParseException
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from .. import __version__
from ..errors import InvalidInput, TooLarge, UnsupportedMediaType
from ..log_record import LabelRecord, label_records
from ..schema import FEATURES, N_FEATURES
from .bodies import Body, Canary, Model, V2ModelMetadata, V2ModelParameters, V2ServerMetadata
from .bodies import V2TensorMetadata as Tensor
from .dataplane import Prediction
from .event_time import optional_time, parse_time
from .holder import Canary as ServedCanary
from .model import LoadedModel

Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A refund is not a card payment: negative amounts are outside what the model was trained on.
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
AMOUNT = FEATURES.index("Amount")
ID_MAX = 128  # the prediction log's column width
# Ids are keys in the log and in analysts' tools: printable text, no control characters (a NUL
# is refused by PostgreSQL, and would take its whole batch with it).
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
TransactionId = Annotated[
    str, StringConstraints(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)
]
Reviewer = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]
V2_DATATYPES = {"FP32": "<f4", "FP64": "<f8"}
EXPLAIN_QUERY = {"true": True, "1": True, "false": False, "0": False}
V2_OUTPUTS = ("probabilities", "is_fraud")
# What the model can represent: it scores float32, so a larger magnitude would become Inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    explain: bool | None
    """Explain every row in the answer (True), or none (False; None: not asked)."""
    event_times: list[datetime | None]
    """Each row's `event_time` (naive UTC), None where it had none."""


@dataclass(frozen=True)
class InferRequest:
    """Validated V2 input: the [N, 30] matrix, the request id, row ids, the outputs asked for."""

    x: NDArray[np.float32]
    request_id: str | None
    ids: list[str]
    outputs: tuple[tuple[str, bool], ...]
    """(name, as binary data) per output, in the order to answer them."""
    event_times: list[datetime | None]
    """Each row's event time from the request's `parameters.event_time`, None without one."""


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialised by orjson (the hot path's largest fixed cost otherwise)."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def body_response(body: Body, status: int = 200) -> Response:
    """A response body model, serialised by pydantic."""
    return Response(body.model_dump_json(), status=status, mimetype="application/json")


def _content_type(request: Request, allowed: tuple[str, ...]) -> None:
    if request.mimetype not in allowed:
        raise UnsupportedMediaType(
            f"content type must be application/json, got {request.mimetype or 'none'!r}"
        )


def read_body(request: Request) -> bytes:
    """The whole body; 413 when it exceeds the limit, chunked or not; 400 when its framing is
    broken (a bad chunk size or terminator, a body shorter than its Content-Length)."""
    try:
        data = request.get_data(cache=False)
    except (ParseException, OSError) as exc:
        # gunicorn's reader refused the chunked framing, the body ended early, or it stalled
        # past the read timeout: the client's fault, answered before anything is scored.
        raise InvalidInput(f"malformed request body: {exc or type(exc).__name__}") from exc
    expected = request.content_length
    # gunicorn marks its input terminated, so werkzeug reads to its end, however short.
    if expected is not None and len(data) < expected:
        raise InvalidInput(f"body ends after {len(data)} of its {expected} bytes (Content-Length)")
    limit = request.max_content_length
    # A chunked body has no Content-Length to refuse up front, and werkzeug stops reading it
    # silently at the limit: a body that reaches the limit is refused, never cut and scored.
    if limit is not None and len(data) >= limit and request.content_length is None:
        raise TooLarge(f"body over {limit} bytes")
    return data


def json_body(request: Request) -> Any:
    """The parsed JSON body; 415 for any other content type."""
    _content_type(request, ("application/json",))
    return parse_json(read_body(request))


def parse_json(body: bytes) -> Any:
    """The JSON document; NaN and Infinity literals parse, so validation can name their field."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson's own depth limit (1024), whatever Python's recursion limit is at the time:
        # the fallback below would recurse once per level.
        if str(exc).startswith("depth limit exceeded"):
            raise InvalidInput("malformed JSON: nested too deeply") from exc
    # orjson is strict; the standard parser accepts NaN/Infinity and integers past 64 bits,
    # to report them by field. It recurses per nesting level, hence RecursionError.
    try:
        document = json.loads(body)
    except RecursionError as exc:
        raise InvalidInput("malformed JSON: nested too deeply") from exc
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            message = f"a number has more than {sys.get_int_max_str_digits()} digits"
            raise InvalidInput(f"malformed JSON: {message}") from exc
        raise InvalidInput(f"malformed JSON: {exc}") from exc
    # It also decodes lone surrogate escapes ("\ud800"), which no text can hold: the answer's
    # and the log's encoders would fail after scoring, so they are refused here.
    where = _lone_surrogate(document)
    if where is not None:
        field = re.split(r"[.\[]", where, maxsplit=1)[0] or None
        raise InvalidInput(
            f"malformed JSON: {where or 'the body'}: a lone surrogate escape is not text",
            field=field,
        )
    return document


def _text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _lone_surrogate(document: Any) -> str | None:
    """Where in `document` a string (key or value) holds a lone surrogate ("" for the document
    itself), or None. Iterative: the parser allows deeper nesting than Python's recursion."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str) and not _text(value):
            return where
        if isinstance(value, dict):
            for key, item in value.items():
                shown = key.encode("utf-8", "backslashreplace").decode()
                here = f"{where}.{shown}" if where else shown
                if not _text(key):
                    return here
                stack.append((item, here))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
    return None


def _float32(x: NDArray[np.float64], where: Callable[[int, str], str]) -> NDArray[np.float32]:
    """`x` as the model's float32; a value it cannot represent is a 400 naming its field
    (`where(row, feature)` says where it came from)."""
    # NaN makes the maximum NaN, which compares False: every bad value takes the slow path.
    if np.abs(x).max() <= FLOAT32_MAX:
        return x.astype(np.float32)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(x) <= FLOAT32_MAX)  # NaN compares False: caught with the infinities
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = float(x[row, col])
        problem = "is not finite" if not np.isfinite(value) else "is beyond the float32 range"
        raise InvalidInput(f"{where(row, FEATURES[col])}: {value!r} {problem}", field=FEATURES[col])
    return x.astype(np.float32)


def _explain(error: ValidationError, raw: dict[str, Any], index: int | None) -> InvalidInput:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else None
    where = f"instances[{index}]." if index is not None else ""
    if first["type"] == "missing" and field:
        unknown = [k for k in raw if k not in FEATURES and k != "transaction_id"]
        guess = difflib.get_close_matches(field, unknown, n=1)
        hint = f" (found '{guess[0]}': misspelt?)" if guess else ""
        return InvalidInput(f"missing field {where}{field}{hint}", field=field)
    value = raw.get(field) if field else None
    message = first["msg"]
    if first["type"] == "string_pattern_mismatch":
        message = "must be printable text (no control characters)"
    return InvalidInput(f"field {where}{field}: {message} (got {value!r})", field=field)


def _transaction(raw: Any, index: int | None) -> _Base:
    if not isinstance(raw, dict):
        where = f"instances[{index}]" if index is not None else "the body"
        raise InvalidInput(f"{where} must be a JSON object of the {N_FEATURES} feature fields")
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
        raise InvalidInput(f"{key} must be a non-empty list", field=key)
    if len(items) > max_batch:
        raise TooLarge(f"{key} has {len(items)} items; at most {max_batch} per request", field=key)
    return items


def decode_predict(request: Request, max_batch: int) -> PredictRequest:
    """One transaction object, or {"instances": [...]} with 1..max_batch of them."""
    _content_type(request, ("application/json",))
    body = read_body(request)
    # Most requests carry no query string: parsing an empty one still costs a MultiDict.
    query = request.args.get("explain") if request.query_string else None
    return predict_request(body, max_batch, query)


def predict_request(body: bytes, max_batch: int, query_explain: str | None) -> PredictRequest:
    """A /predict body (and its query's `explain`, if any), validated: what `decode_predict`
    reads from Flask's request and the fast path (fast_path.py) from the WSGI environ."""
    document = parse_json(body)
    instances = _batch(document, "instances", max_batch)
    if instances is not None:
        rows = [_transaction(raw, i) for i, raw in enumerate(instances)]
        batch = True
    else:
        rows = [_transaction(document, None)]
        batch = False
    x64 = np.array([[getattr(t, name) for name in FEATURES] for t in rows], dtype=np.float64)
    prefix = "instances[{row}]." if batch else ""
    x = _float32(x64, lambda row, name: f"field {prefix.format(row=row)}{name}")
    ids = [t.transaction_id or uuid.uuid4().hex for t in rows]
    raws = instances if instances is not None else [document]
    event_times = [
        optional_time(raw, "event_time", prefix.format(row=row)) for row, raw in enumerate(raws)
    ]
    return PredictRequest(
        x=x,
        ids=ids,
        batch=batch,
        explain=_explain_flag(query_explain, document),
        event_times=event_times,
    )


def _explain_flag(query: str | None, document: dict[str, Any]) -> bool | None:
    """`explain` from the body (a boolean), else from the query string (true/false/1/0);
    both are validated."""
    if query is not None and query not in EXPLAIN_QUERY:
        raise InvalidInput(f"query explain must be true or false (got {query!r})", field="explain")
    if "explain" in document:
        value = document["explain"]
        if not isinstance(value, bool):
            raise InvalidInput(f"explain must be true or false (got {value!r})", field="explain")
        return value
    return None if query is None else EXPLAIN_QUERY[query]


def encode_predict(prediction: Prediction, batch: bool) -> Response:
    """The /predict answer as Flask's response."""
    return Response(predict_answer(prediction, batch), mimetype="application/json")


def predict_answer(prediction: Prediction, batch: bool) -> bytes:
    """Per transaction: id, probability, decision, and the threshold and version that decided
    (bodies.Prediction, or bodies.Predictions for a batch, built as dicts for orjson)."""
    answers = []
    for answer in prediction.answers():
        body: dict[str, Any] = {
            "transaction_id": answer.transaction_id,
            "fraud_probability": round(answer.probability, 6),
            "is_fraud": answer.is_fraud,
            "threshold": answer.model.threshold,
            "model_version": answer.model.version,
        }
        if answer.explained:
            body["explanation"] = answer.explanation
        answers.append(body)
    if not batch:
        return orjson.dumps(answers[0])
    return orjson.dumps({"predictions": answers, "model_version": prediction.model.version})


def decode_v2(request: Request, max_batch: int) -> InferRequest:
    """An Open Inference Protocol request with one [N, 30] FP32/FP64 tensor, as JSON or with
    the binary tensor data extension (`Inference-Header-Content-Length`)."""
    # The reference client (tritonclient) sends no content type at all.
    _content_type(request, ("", "application/json", "application/octet-stream"))
    body = read_body(request)
    header_length = request.headers.get("Inference-Header-Content-Length")
    if header_length is None:
        document, binary = parse_json(body), b""
    else:
        # Bounded before int(): past 4,300 digits int() raises (the int-string limit).
        digits = header_length.isascii() and header_length.isdigit() and len(header_length) <= 20
        length = int(header_length) if digits else -1
        if not 0 <= length <= len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length {header_length[:40]!r} is not a length within "
                f"the {len(body)}-byte body"
            )
        document, binary = parse_json(body[:length]), body[length:]
    x = _v2_tensor(document, binary, max_batch)
    request_id = document.get("id")
    # The log holds "<request id>:<row>" ids: a request id leaves room for the row number.
    id_max = ID_MAX - len(f":{max_batch - 1}")
    if request_id is not None and not (
        isinstance(request_id, str)
        and len(request_id) <= id_max
        and re.fullmatch(ID_PATTERN, request_id)
    ):
        raise InvalidInput(f"id must be printable text of 1 to {id_max} characters", field="id")
    prefix = request_id or uuid.uuid4().hex
    ids = [f"{prefix}:{row}" for row in range(len(x))]
    return InferRequest(
        x, request_id, ids, _requested_outputs(document), _v2_event_times(document, len(x))
    )


def _v2_event_times(document: dict[str, Any], rows: int) -> list[datetime | None]:
    """`parameters.event_time`: one ISO 8601 time for every row, or a list of one per row."""
    parameters = document.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput("parameters must be an object", field="parameters")
    value = parameters.get("event_time") if parameters else None
    if value is None:
        return [None] * rows
    if not isinstance(value, list):
        return [parse_time(value, "event_time", "parameters.event_time")] * rows
    if len(value) != rows:
        raise InvalidInput(
            f"field parameters.event_time: {len(value)} times for {rows} rows", field="event_time"
        )
    return [parse_time(v, "event_time", f"parameters.event_time[{i}]") for i, v in enumerate(value)]


def _v2_tensor(document: Any, binary: bytes, max_batch: int) -> NDArray[np.float32]:
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise InvalidInput("body must be an object with an 'inputs' list", field="inputs")
    if len(document["inputs"]) != 1 or not isinstance(document["inputs"][0], dict):
        raise InvalidInput("exactly one input tensor is expected", field="inputs")
    tensor = document["inputs"][0]
    if not isinstance(tensor.get("name", ""), str):
        raise InvalidInput("the input's name must be a string", field="name")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
        raise InvalidInput(f"datatype must be FP32 or FP64, got {datatype!r}", field="datatype")
    shape: Any = tensor.get("shape")
    if isinstance(shape, list):
        # JSON does not tell 2 from 2.0, and JSON Schema counts both as integers.
        shape = [int(d) if type(d) is float and d.is_integer() else d for d in shape]
    valid_shape = isinstance(shape, list) and len(shape) == 2 and all(type(d) is int for d in shape)
    if not valid_shape or shape[1] != N_FEATURES or shape[0] < 1:
        raise InvalidInput(
            f"shape must be [N, {N_FEATURES}] with N >= 1, got {shape!r}", field="shape"
        )
    if shape[0] > max_batch:
        raise TooLarge(f"shape: N = {shape[0]} rows; at most {max_batch}", field="shape")
    size = shape[0] * shape[1]
    parameters = tensor.get("parameters")
    binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if binary_size is not None:
        dtype = np.dtype(V2_DATATYPES[datatype])
        if binary_size != size * dtype.itemsize or len(binary) != binary_size:
            raise InvalidInput(
                f"binary_data_size {binary_size!r} and the {len(binary)} bytes after the header "
                f"must both be {size * dtype.itemsize} for shape {shape} {datatype}",
                field="data",
            )
        x = np.frombuffer(binary, dtype=dtype).astype(np.float64)
    else:
        x = _v2_numbers(tensor.get("data"), size, shape)
    x = x.reshape(shape)
    if (x[:, AMOUNT] < 0).any():
        row = int(np.argmax(x[:, AMOUNT] < 0))
        raise InvalidInput(f"data row {row}, Amount must be >= 0", field="Amount")
    return _float32(x, lambda row, name: f"data row {row}, feature {name}")


def _v2_numbers(data: Any, size: int, shape: list[int]) -> NDArray[np.float64]:
    """The values of a JSON tensor: flat in row-major order, or one list per row."""
    if not isinstance(data, list):
        raise InvalidInput("data must be a list of numbers", field="data")
    if data and type(data[0]) is list:
        # One list per row: each must be a whole row, or values would slide into other features.
        if any(type(row) is not list or len(row) != shape[1] for row in data):
            raise InvalidInput(
                f"data must be flat, or one list of {shape[1]} numbers per row", field="data"
            )
        flat = [v for row in data for v in row]
    else:
        flat = data
    if any(type(v) is not int and type(v) is not float for v in flat):
        bad = next(v for v in flat if type(v) is not int and type(v) is not float)
        raise InvalidInput(f"data must hold numbers only, found {type(bad).__name__}", field="data")
    if len(flat) != size:
        raise InvalidInput(f"data has {len(flat)} values; shape {shape} needs {size}", field="data")
    try:
        return np.array(flat, dtype=np.float64)
    except OverflowError as exc:
        raise InvalidInput("data holds a number outside the float64 range", field="data") from exc


def _requested_outputs(document: dict[str, Any]) -> tuple[tuple[str, bool], ...]:
    """(name, binary) per output the request names (all of them when it names none)."""
    parameters = document.get("parameters")
    binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    wanted = document.get("outputs")
    if wanted is None:
        return tuple((name, binary) for name in V2_OUTPUTS)
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise InvalidInput('outputs must be a list of {"name": ...} objects', field="outputs")
    outputs = []
    for output in wanted:
        name = output.get("name")
        if name not in V2_OUTPUTS:
            raise InvalidInput(
                f"outputs: unknown output {name!r}; available: {', '.join(V2_OUTPUTS)}",
                field="outputs",
            )
        own = output.get("parameters")
        as_binary = own.get("binary_data", binary) if isinstance(own, dict) else binary
        outputs.append((name, as_binary is True))
    return tuple(outputs)


class Label(BaseModel):
    """One label: 1 fraud, 0 legitimate; where it came from (an analyst's review, a
    chargeback, or other), when it was learnt (`observed_at`, default: when received) and
    the reviewer who gave it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    transaction_id: TransactionId
    label: Annotated[int, Field(strict=True, ge=0, le=1)]
    source: Literal["review", "chargeback", "other"] = "other"
    reviewer: Reviewer | None = None


def decode_feedback(request: Request, max_batch: int) -> list[LabelRecord]:
    """One {transaction_id, label, ...}, or {"labels": [...]}; the last label of an id wins."""
    document = json_body(request)
    items = _batch(document, "labels", max_batch)
    # Both forms at once is ambiguous: refuse it rather than store half of what was meant.
    stray = [key for key in ("transaction_id", "label") if items is not None and key in document]
    if stray:
        raise InvalidInput(
            f"a body with 'labels' takes no top-level {stray[0]!r}: "
            "send one label, or put every label in 'labels'",
            field=stray[0],
        )
    indexed: list[tuple[int | None, Any]] = (
        list(enumerate(items)) if items is not None else [(None, document)]
    )
    labels: list[LabelRecord] = []
    for index, raw in indexed:
        where = f"labels[{index}]" if index is not None else "the body"
        if not isinstance(raw, dict):
            raise InvalidInput(f"{where} must be an object with transaction_id and label")
        if type(raw.get("label")) is float and raw["label"] in (0.0, 1.0):
            # JSON has one number type: 1.0 is the label 1, as the schema's integer says.
            raw = {**raw, "label": int(raw["label"])}
        prefix = f"labels[{index}]." if index is not None else ""
        try:
            item = Label.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            detail = "missing" if first["type"] == "missing" else first["msg"]
            if field == "label" and first["type"] != "missing":
                detail = "must be 1 (fraud) or 0 (legitimate)"
            if field == "source":
                detail = "must be review, chargeback or other"
            if first["type"] == "string_pattern_mismatch":
                detail = "must be printable text (no control characters)"
            raise InvalidInput(
                f"field {prefix}{field}: {detail} (got {raw.get(field or '')!r})", field=field
            ) from exc
        observed_at = optional_time(
            raw, "observed_at", f"labels[{index}]." if index is not None else ""
        )
        labels.append(
            LabelRecord(item.transaction_id, item.label, item.source, observed_at, item.reviewer)
        )
    return label_records(labels)


def encode_v2(name: str, request: InferRequest, prediction: Prediction) -> Response:
    """The V2 response (bodies.V2Response, built as a dict for orjson): the requested outputs in
    request order, each as JSON data or, when asked, as binary data after the JSON header
    (`Inference-Header-Content-Length`)."""
    answers = prediction.answers()
    values = {
        "probabilities": ("FP32", [round(a.probability, 6) for a in answers], "<f4"),
        "is_fraud": ("BOOL", [a.is_fraud for a in answers], "?"),
    }
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for output, as_binary in request.outputs:
        datatype, data, dtype = values[output]
        tensor: dict[str, Any] = {"name": output, "shape": [len(answers)], "datatype": datatype}
        if as_binary:
            blobs.append(np.asarray(data, dtype=dtype).tobytes())
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            tensor["data"] = data
        outputs.append(tensor)
    model = prediction.model
    parameters: dict[str, Any] = {"threshold": model.threshold}
    versions = [a.model.version for a in answers]
    if any(v != model.version for v in versions):
        # A/B routing answered some rows with the challenger: say which, row by row.
        parameters["row_model_versions"] = versions
    body: dict[str, Any] = {
        "model_name": name,
        "model_version": model.version,
        "outputs": outputs,
        "parameters": parameters,
    }
    if request.request_id is not None:
        body["id"] = request.request_id
    if not blobs:
        return json_response(body)
    header = orjson.dumps(body)
    response = Response(b"".join([header, *blobs]), mimetype="application/octet-stream")
    response.headers["Inference-Header-Content-Length"] = str(len(header))
    return response


def encode_v2_metadata(name: str, model: LoadedModel) -> V2ModelMetadata:
    """V2 model metadata: the input tensor, the outputs, the feature order and threshold."""
    return V2ModelMetadata(
        name=name,
        versions=[model.version],
        platform="onnx",
        inputs=[Tensor(name="input", datatype="FP32", shape=[-1, N_FEATURES])],
        outputs=[
            Tensor(name="probabilities", datatype="FP32", shape=[-1]),
            Tensor(name="is_fraud", datatype="BOOL", shape=[-1]),
        ],
        parameters=V2ModelParameters(
            features=model.manifest["features"], threshold=model.threshold
        ),
    )


def encode_server_metadata() -> V2ServerMetadata:
    """V2 server metadata."""
    return V2ServerMetadata(name="fraud-detection", version=__version__, extensions=[])


def _served(model: LoadedModel) -> dict[str, Any]:
    """What an operator wants to know about a served model."""
    return {
        "version": model.version,
        "threshold": model.threshold,
        "metrics": model.manifest.get("metrics", {}).get("test"),
        "created_at": model.manifest.get("created_at"),
        "loaded_at": model.loaded_at,
        "source": model.source,
        "synthetic": model.manifest.get("data", {}).get("synthetic", False),
        "explainable": model.explainer is not None,
    }


def encode_model(model: LoadedModel | None) -> Model | None:
    """A served model, if any."""
    return None if model is None else Model(**_served(model))


def encode_canary(canary: ServedCanary | None) -> Canary | None:
    """A rollout's canary, if any: its model and its share of the champion's traffic."""
    return None if canary is None else Canary(**_served(canary.model), share=canary.share)
