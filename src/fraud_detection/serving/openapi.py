"""The OpenAPI 3.1 document of the service, generated from the endpoint table, the response
bodies (bodies.py) and the pydantic models that validate requests.

OpenAPI 3.1 because its schemas are JSON Schema 2020-12, which is what pydantic emits. The
paths are the endpoint table's API routes; each has one entry in OPERATIONS (a route without
one fails the document's build). The document is built once per app, so the model name and the
auth it shows are the live ones.
"""

import re
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from pydantic.json_schema import models_json_schema

from ..config import Settings
from ..schema import FEATURES, N_FEATURES
from .bodies import BODIES
from .codecs import (
    EXPLAIN_QUERY,
    FLOAT32_MAX,
    ID_MAX,
    ID_PATTERN,
    V2_OUTPUTS,
    Label,
    Transaction,
)
from .endpoints import ENDPOINTS

REF = "#/components/schemas/{model}"
EXPLAIN_FLAG = {
    "type": "boolean",
    "description": "true: explain every transaction in the answer; false or absent: none (the "
    "flagged ones are explained in the prediction log, off the request path).",
}


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    """An object with these properties, all required."""
    return {"type": "object", "properties": properties, "required": list(properties)}


def _list_of(key: str, item: str, max_items: int) -> dict[str, Any]:
    """A body of the form {key: [1..max_items items]}."""
    items = {"type": "array", "minItems": 1, "maxItems": max_items, "items": _schema(item)}
    return _object(**{key: items})


def _batch(max_batch: int) -> dict[str, Any]:
    """{instances: [...]} and the optional explain flag."""
    schema = _list_of("instances", "Transaction", max_batch)
    schema["properties"]["explain"] = EXPLAIN_FLAG
    return schema


def _without(*keys: str) -> dict[str, Any]:
    """A schema forbidding any of these keys: the single and batch forms are exclusive."""
    return {"not": {"anyOf": [{"required": [key]} for key in keys]}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _transaction() -> dict[str, Any]:
    schema = Transaction.model_json_schema()
    schema["description"] = (
        "One card transaction: the 30 feature fields, each within the float32 range the model "
        "scores. Other fields (merchant data and the like) are accepted and ignored."
    )
    schema["additionalProperties"] = True
    for name in FEATURES:
        schema["properties"][name].setdefault("minimum", -FLOAT32_MAX)
        schema["properties"][name]["maximum"] = FLOAT32_MAX
    schema["properties"]["event_time"] = {
        **OPTIONAL_TIME,
        "description": (
            "When the transaction happened (ISO 8601; no zone means UTC). Logged beside the "
            "receive time; monitoring windows, label maturity and cohorts go by it, by the "
            "receive time when absent."
        ),
    }
    return schema


EVENT_TIME = {"type": "string", "format": "date-time"}
OPTIONAL_TIME = {"type": ["string", "null"], "format": "date-time"}
"""A time that may be left out or null (then: when the service received it)."""


def _label() -> dict[str, Any]:
    schema = Label.model_json_schema()
    schema["properties"]["source"]["description"] = (
        "review: an analyst reviewed the alert; chargeback: the cardholder disputed the "
        "transaction; other: anything else (labels stored before sources existed read as other)."
    )
    schema["properties"]["reviewer"]["description"] = "Who reviewed it (the review page's name)."
    schema["properties"]["observed_at"] = {
        **OPTIONAL_TIME,
        "description": "When the label was learnt (ISO 8601; no zone: UTC); default: on receipt.",
    }
    return schema


def _v2_request(settings: Settings) -> dict[str, Any]:
    rows = {"type": "integer", "minimum": 1, "maximum": settings.max_batch}
    value = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    tensor = {
        "type": "object",
        "description": (
            f"An [N, {N_FEATURES}] tensor of the features in the order of the model metadata's "
            f"`parameters.features`. `data` holds exactly N x {N_FEATURES} values, row-major "
            "(flat, or one list per row), and every row's Amount is >= 0: constraints JSON "
            "Schema cannot state, checked by the service (400 naming the field)."
        ),
        "properties": {
            # Clients send the input's name; with one input, any name will do.
            "name": {"type": "string", "description": "any name: the model has one input"},
            "shape": {
                "type": "array",
                "prefixItems": [rows, {"const": N_FEATURES}],
                "minItems": 2,
                "maxItems": 2,
            },
            "datatype": {"type": "string", "enum": ["FP32", "FP64"]},
            "data": {
                "oneOf": [
                    {
                        "type": "array",
                        "items": value,
                        "minItems": N_FEATURES,
                        "maxItems": N_FEATURES * settings.max_batch,
                    },
                    {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "items": value,
                            "minItems": N_FEATURES,
                            "maxItems": N_FEATURES,
                        },
                        "minItems": 1,
                        "maxItems": settings.max_batch,
                    },
                ]
            },
        },
        "required": ["shape", "datatype", "data"],
    }
    output = _object(name={"type": "string", "enum": list(V2_OUTPUTS)})
    return {
        "type": "object",
        "properties": {
            "id": {
                "type": ["string", "null"],
                "description": "Echoed in the answer; rows are logged as <id>:<row> (null: no id).",
                "minLength": 1,
                # Room for ":<row>" in the prediction log's 128-character id column.
                "maxLength": ID_MAX - len(f":{settings.max_batch - 1}"),
                "pattern": ID_PATTERN,
            },
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": tensor},
            "parameters": {
                "type": ["object", "null"],
                "properties": {
                    "event_time": {
                        "oneOf": [OPTIONAL_TIME, {"type": "array", "items": EVENT_TIME}],
                        "description": (
                            "When the rows happened (ISO 8601; no zone: UTC): one time for "
                            "every row, or a list of one per row (N of them, checked by the "
                            "service). Logged beside the receive time, as /predict's event_time."
                        ),
                    }
                },
            },
            "outputs": {
                "type": ["array", "null"],
                "items": output,
                "description": "The outputs to answer, in order; all of them when absent or null.",
            },
        },
        "required": ["inputs"],
    }


@dataclass(frozen=True)
class Operation:
    """What the document says of one endpoint: its answers by status, as (schema, description);
    a schema is a component's name or a JSON Schema."""

    summary: str
    responses: dict[int, tuple[str | dict[str, Any], str]]
    errors: tuple[int, ...] = ()
    """Statuses answered with the surface's error body."""
    body: str | None = None
    """The request body: a key of `_request_bodies`."""
    query: list[dict[str, Any]] = field(default_factory=list)


ONE_OR_BATCH = {"oneOf": [_schema("Prediction"), _schema("Predictions")]}
EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "description": "As the body's explain; the body's wins.",
    "schema": {"type": "string", "enum": list(EXPLAIN_QUERY)},
}
OPERATIONS: dict[str, Operation] = {
    "predict.predict": Operation(
        "Score one transaction or a batch",
        {200: (ONE_OR_BATCH, "one prediction, or {predictions, model_version} for a batch")},
        errors=(400, 413, 415, 503),
        body="predict",
        query=[EXPLAIN_PARAMETER],
    ),
    "predict.feedback": Operation(
        "Analyst labels, joined to logged predictions by transaction_id",
        {200: ("Stored", "stored; a later label for the same id replaces it")},
        errors=(400, 413, 415, 503),
        body="feedback",
    ),
    "predict.models": Operation(
        "Served models",
        {
            200: (
                "Models",
                "the champion, challenger and canary (with its traffic share, `share`) "
                "this worker serves",
            )
        },
    ),
    "ops.health": Operation(
        "Health",
        {200: ("Health", "a model is loaded"), 503: ("Health", "no model loaded yet")},
    ),
    "ops.prometheus_metrics": Operation(
        "Prometheus metrics", {200: ({"type": "string"}, "Prometheus text exposition")}
    ),
    "ops.openapi": Operation("This document", {200: ({"type": "object"}, "OpenAPI 3.1 document")}),
    "ops.reload": Operation(
        "Follow the model aliases now instead of at the next poll",
        {200: ("Reloaded", "reloaded"), 502: ("Reloaded", "the store could not be read")},
        errors=(503,),
    ),
    "v2.server_metadata": Operation(
        "Server metadata", {200: ("V2ServerMetadata", "server metadata")}
    ),
    "v2.live": Operation("Liveness", {200: ("V2Live", "live")}),
    "v2.ready": Operation(
        "Readiness: a model is loaded",
        {200: ("V2Ready", "ready"), 503: ("V2Ready", "no model loaded yet")},
    ),
    "v2.model_metadata": Operation(
        "Model metadata", {200: ("V2ModelMetadata", "metadata")}, errors=(404, 503)
    ),
    "v2.model_ready": Operation(
        "Model readiness", {200: ("V2ModelReady", "ready")}, errors=(404, 503)
    ),
    "v2.infer": Operation(
        f"Open Inference Protocol inference on an [N, {N_FEATURES}] tensor",
        {200: ("V2Response", "probabilities and is_fraud per row")},
        errors=(400, 404, 413, 415, 503),
        body="V2Request",
    ),
}
TEXT = {"ops.prometheus_metrics": "text/plain"}
"""Operations answering another media type than JSON."""


def openapi_path(rule: str) -> str:
    """A Flask rule in OpenAPI's spelling: <name> and <int:id> become {name} and {id}."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def _error_schema(path: str) -> str:
    """The error body of a path's surface (as http_errors answers it)."""
    return "V2Error" if path == "/v2" or path.startswith("/v2/") else "Error"


def _media(schema: str | dict[str, Any], description: str, media: str) -> dict[str, Any]:
    resolved = _schema(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {media: {"schema": resolved}}}


def _path_parameters(path: str, settings: Settings) -> list[dict[str, Any]]:
    schemas = {"name": {"type": "string", "enum": [settings.model_name]}}
    names = re.findall(r"{([^}]+)}", path)
    return [
        {"name": n, "in": "path", "required": True, "schema": schemas.get(n, {"type": "string"})}
        for n in names
    ]


def _operation(
    name: str, path: str, guarded: bool, requests: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One operation; a guarded one documents its bearer token and its 401."""
    spec = OPERATIONS[name]
    media = TEXT.get(name, "application/json")
    responses = {
        str(status): _media(schema, description, media)
        for status, (schema, description) in spec.responses.items()
    }
    errors = (*spec.errors, 401) if guarded else spec.errors
    responses |= {str(c): _media(_error_schema(path), "error", media) for c in errors}
    if name == "v2.infer":
        responses["200"] = _binary_answer(responses["200"])
    operation: dict[str, Any] = {"summary": spec.summary, "responses": responses}
    if spec.query:
        operation["parameters"] = spec.query
    if spec.body is not None:
        operation["requestBody"] = _body(requests[spec.body])
    if guarded:
        operation["security"] = [{"bearer": []}]
    return operation


def _binary_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """JSON outputs, or with the binary tensor data extension a JSON header and raw tensors."""
    answer["content"]["application/octet-stream"] = {
        "schema": {"type": "string", "format": "binary"}
    }
    answer["description"] += (
        "; when the request asks for binary outputs (`parameters.binary_data_output`, or an "
        "output's `parameters.binary_data`), the body is the JSON header, whose length is the "
        "`Inference-Header-Content-Length` header, then each binary output's little-endian "
        "bytes (`binary_data_size` each), as Triton's binary tensor data extension defines"
    )
    answer["headers"] = {
        "Inference-Header-Content-Length": {
            "description": "Length of the JSON header of a binary answer",
            "schema": {"type": "integer"},
        }
    }
    return answer


def _request_bodies() -> dict[str, dict[str, Any]]:
    """The request bodies operations name: /predict's single or batch form, /feedback's."""
    return {
        "predict": {
            "oneOf": [
                {
                    "allOf": [
                        _schema("Transaction"),
                        _without("instances"),
                        {"type": "object", "properties": {"explain": EXPLAIN_FLAG}},
                    ]
                },
                _schema("Batch"),
            ]
        },
        "feedback": {
            "oneOf": [
                {"allOf": [_schema("Label"), _without("labels")]},
                {"allOf": [_schema("Labels"), _without("transaction_id", "label")]},
            ]
        },
        "V2Request": _schema("V2Request"),
    }


def _components(settings: Settings) -> dict[str, Any]:
    """Every schema: the response bodies' (generated) and the requests'."""
    _, generated = models_json_schema(
        [(body, "serialization") for body in BODIES], ref_template=REF
    )
    return {
        "Transaction": _transaction(),
        "Batch": _batch(settings.max_batch),
        "Label": _label(),
        "Labels": _list_of("labels", "Label", settings.max_batch),
        "V2Request": _v2_request(settings),
        **generated["$defs"],
    }


def openapi_document(settings: Settings, guarded: Set[str]) -> dict[str, Any]:
    """OpenAPI 3.1 description of every API route the service answers; `guarded` names the
    Flask endpoints that take a bearer token (auth.required_tokens)."""
    requests = _request_bodies()
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS.values():
        if not endpoint.api:
            continue
        for rule in endpoint.paths:
            path = openapi_path(rule)
            item = paths.setdefault(path, {})
            for method in endpoint.methods:
                item[method.lower()] = _operation(
                    endpoint.name, path, endpoint.name in guarded, requests
                )
            if parameters := _path_parameters(path, settings):
                item["parameters"] = parameters
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Fraud detection service", "version": "1"},
        "paths": paths,
        "components": {"schemas": _components(settings)},
    }
    if guarded:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return document
