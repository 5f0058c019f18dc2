"""Wire formats to numpy: /predict JSON and Open Inference Protocol V2 tensors, validated."""

import difflib
import json
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from ..errors import CodecError
from ..schema import FEATURES, N_FEATURES

Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A refund is not a card payment: negative amounts are outside what the model was trained on.
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
AMOUNT = FEATURES.index("Amount")
TransactionId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
V2_DATATYPES = {"FP32": np.float32, "FP64": np.float64}


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
    """Validated /predict input: the feature matrix and one id (or None) per row."""

    x: NDArray[np.float32]
    ids: list[str | None]
    batch: bool


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


def decode_predict(document: Any, max_batch: int) -> PredictRequest:
    """One transaction object, or {"instances": [...]} with 1..max_batch of them."""
    instances = _batch(document, "instances", max_batch)
    if instances is not None:
        rows = [_transaction(raw, i) for i, raw in enumerate(instances)]
        batch = True
    else:
        rows = [_transaction(document, None)]
        batch = False
    x = np.array([[getattr(t, name) for name in FEATURES] for t in rows], dtype=np.float32)
    return PredictRequest(x=x, ids=[t.transaction_id for t in rows], batch=batch)


def decode_v2(document: Any, max_batch: int) -> tuple[NDArray[np.float32], str | None]:
    """An Open Inference Protocol request with one [N, 30] FP32/FP64 tensor; (x, request id)."""
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
    request_id = document.get("id")
    return x.astype(np.float32), request_id if isinstance(request_id, str) else None


def requested_outputs(document: dict[str, Any], available: tuple[str, ...]) -> tuple[str, ...]:
    """The outputs a V2 request names (all of them when it names none)."""
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


def decode_feedback(document: Any, max_batch: int) -> dict[str, int]:
    """One {transaction_id, label}, or {"labels": [...]}; the last label of an id wins."""
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
