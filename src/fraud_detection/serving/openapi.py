"""The OpenAPI 3.1 document of the service, built from the pydantic models that validate.

OpenAPI 3.1 because its schemas are JSON Schema 2020-12, which is what pydantic emits; the
document is built per settings, so the model name and the auth it shows are the live ones.
"""

from collections.abc import Set
from typing import Any

from ..config import Settings
from ..schema import FEATURES, N_FEATURES
from .codecs import (
    EXPLAIN_QUERY,
    FLOAT32_MAX,
    ID_MAX,
    ID_PATTERN,
    V2_OUTPUTS,
    Label,
    Transaction,
)

NULLABLE_STRING = {"type": ["string", "null"]}
ERROR = {
    "type": "object",
    "description": "The /predict, /feedback and operations error.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": NULLABLE_STRING,
            },
            "required": ["code", "message", "field"],
        }
    },
    "required": ["error"],
}
V2_ERROR = {
    "type": "object",
    "description": "The Open Inference Protocol error, on every /v2 route.",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
PREDICTION = {
    "type": "object",
    "properties": {
        "transaction_id": {"type": "string"},
        "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
        "is_fraud": {"type": "boolean"},
        "threshold": {"type": "number"},
        "model_version": {"type": "string"},
        "explanation": {
            "description": "Present for flagged transactions and, with explain, for every one; "
            "null when the model carries no cover to explain with.",
            "oneOf": [{"$ref": "#/components/schemas/Explanation"}, {"type": "null"}],
        },
    },
    "required": ["transaction_id", "fraud_probability", "is_fraud", "threshold", "model_version"],
}
EXPLANATION = {
    "type": "object",
    "description": "TreeSHAP: expected_value plus every feature's contribution is the model's "
    "raw score (a probability for forests, log-odds for boosters); the largest are listed.",
    "properties": {
        "output": {"type": "string", "enum": ["probability", "log_odds"]},
        "expected_value": {"type": "number"},
        "top_features": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string", "enum": list(FEATURES)},
                    "value": {"type": "number"},
                    "contribution": {"type": "number"},
                },
                "required": ["feature", "value", "contribution"],
            },
        },
    },
    "required": ["output", "expected_value", "top_features"],
}
EXPLAIN_FLAG = {
    "type": "boolean",
    "description": "true: explain every transaction; false: none; absent: the flagged ones.",
}
MODEL = {
    "type": ["object", "null"],
    "properties": {
        "version": {"type": "string"},
        "threshold": {"type": "number"},
        "metrics": {"type": ["object", "null"]},
        "created_at": NULLABLE_STRING,
        "loaded_at": {"type": "string"},
        "source": {"type": "string"},
        "synthetic": {"type": "boolean"},
        "explainable": {"type": "boolean"},
    },
    "required": ["version", "threshold", "loaded_at", "source", "synthetic", "explainable"],
}
V2_TENSOR_OUT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": list(V2_OUTPUTS)},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["FP32", "BOOL"]},
        "data": {"type": "array", "items": {"type": ["number", "boolean"]}},
    },
    "required": ["name", "shape", "datatype", "data"],
}
V2_RESPONSE = {
    "type": "object",
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Output"}},
        "parameters": {
            "type": "object",
            "properties": {
                "threshold": {"type": "number"},
                "row_model_versions": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["threshold"],
        },
    },
    "required": ["model_name", "model_version", "outputs", "parameters"],
}
V2_TENSOR_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["name", "datatype", "shape"],
}
V2_MODEL_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": V2_TENSOR_META},
        "outputs": {"type": "array", "items": V2_TENSOR_META},
        "parameters": {"type": "object"},
    },
    "required": ["name", "versions", "platform", "inputs", "outputs"],
}
V2_SERVER_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "version", "extensions"],
}
HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "loading"]},
        "model_version": NULLABLE_STRING,
    },
    "required": ["status", "model_version"],
}
RELOADED = {
    "type": "object",
    "properties": {"reloaded": {"type": "boolean"}, "model_version": NULLABLE_STRING},
    "required": ["reloaded", "model_version"],
}


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(schema: str, *codes: int) -> dict[str, Any]:
    return {str(c): _json(_schema(schema), "error") for c in codes}


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
            "outputs": {
                "type": ["array", "null"],
                "items": output,
                "description": "The outputs to answer, in order; all of them when absent or null.",
            },
        },
        "required": ["inputs"],
    }


def _operation(
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    guarded: bool = False,
    error: str = "Error",
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation; a guarded one documents its bearer token and its 401."""
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = _body(body)
    if guarded:
        operation["security"] = [{"bearer": []}]
        responses.update(_errors(error, 401))
    return operation


def _v2_paths(settings: Settings, guarded: Set[str]) -> dict[str, Any]:
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [settings.model_name]},
    }
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    ready = _object(name={"type": "string"}, ready={"type": "boolean"})
    paths: dict[str, Any] = {
        "/v2": {
            "get": _operation(
                "Server metadata",
                {"200": _json(_schema("V2ServerMetadata"), "server metadata")},
            )
        },
        "/v2/health/live": {
            "get": _operation("Liveness", {"200": _json(_object(live={"type": "boolean"}), "live")})
        },
        "/v2/health/ready": {
            "get": _operation(
                "Readiness: a model is loaded",
                {
                    "200": _json(_object(ready={"type": "boolean"}), "ready"),
                    "503": _json(_object(ready={"type": "boolean"}), "no model loaded yet"),
                },
            )
        },
    }
    for prefix, parameters in (
        ("/v2/models/{name}", [name]),
        ("/v2/models/{name}/versions/{version}", [name, version]),
    ):
        paths[prefix] = {
            "get": _operation(
                "Model metadata",
                {
                    "200": _json(_schema("V2ModelMetadata"), "metadata"),
                    **_errors("V2Error", 404, 503),
                },
            ),
            "parameters": parameters,
        }
        paths[f"{prefix}/ready"] = {
            "get": _operation(
                "Model readiness",
                {"200": _json(ready, "ready"), **_errors("V2Error", 404, 503)},
            ),
            "parameters": parameters,
        }
        paths[f"{prefix}/infer"] = {
            "post": _operation(
                f"Open Inference Protocol inference on an [N, {N_FEATURES}] tensor",
                {
                    "200": _v2_infer_answer(),
                    **_errors("V2Error", 400, 404, 413, 415, 503),
                },
                body=_schema("V2Request"),
                guarded="v2.infer" in guarded,
                error="V2Error",
            ),
            "parameters": parameters,
        }
    return paths


def _v2_infer_answer() -> dict[str, Any]:
    """JSON outputs, or with the binary tensor data extension a JSON header and raw tensors."""
    answer = _json(_schema("V2Response"), "probabilities and is_fraud per row")
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


def openapi_document(settings: Settings, guarded: Set[str]) -> dict[str, Any]:
    """OpenAPI 3.1 description of every route the service answers; `guarded` names the Flask
    endpoints that take a bearer token (auth.required_tokens)."""
    predictions = _object(
        predictions={"type": "array", "items": _schema("Prediction")},
        model_version={"type": "string"},
    )
    paths: dict[str, Any] = {
        "/predict": {
            "post": _operation(
                "Score one transaction or a batch",
                {
                    "200": _json(
                        {"oneOf": [_schema("Prediction"), predictions]},
                        "one prediction, or {predictions, model_version} for a batch",
                    ),
                    **_errors("Error", 400, 413, 415, 503),
                },
                body={
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
                guarded="predict.predict" in guarded,
                parameters=[
                    {
                        "name": "explain",
                        "in": "query",
                        "required": False,
                        "description": "As the body's explain; the body's wins.",
                        "schema": {"type": "string", "enum": list(EXPLAIN_QUERY)},
                    }
                ],
            )
        },
        "/feedback": {
            "post": _operation(
                "Analyst labels, joined to logged predictions by transaction_id",
                {
                    "200": _json(
                        _object(stored={"type": "integer", "minimum": 0}),
                        "stored; a later label for the same id replaces it",
                    ),
                    **_errors("Error", 400, 413, 415, 503),
                },
                body={
                    "oneOf": [
                        {"allOf": [_schema("Label"), _without("labels")]},
                        {"allOf": [_schema("Labels"), _without("transaction_id", "label")]},
                    ]
                },
                guarded="predict.feedback" in guarded,
            )
        },
        "/models": {
            "get": _operation(
                "Served models",
                {
                    "200": _json(
                        _object(
                            name={"type": "string"},
                            champion=_schema("Model"),
                            challenger=_schema("Model"),
                            canary=_schema("Model"),
                        ),
                        "the champion, challenger and canary (with its traffic share, `share`) "
                        "this worker serves",
                    )
                },
            )
        },
        "/health": {
            "get": _operation(
                "Health",
                {
                    "200": _json(_schema("Health"), "a model is loaded"),
                    "503": _json(_schema("Health"), "no model loaded yet"),
                },
            )
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document", {"200": _json({"type": "object"}, "OpenAPI 3.1 document")}
            )
        },
        "/admin/reload": {
            "post": _operation(
                "Follow the model aliases now instead of at the next poll",
                {
                    "200": _json(_schema("Reloaded"), "reloaded"),
                    "502": _json(_schema("Reloaded"), "the store could not be read"),
                    **_errors("Error", 503),
                },
                guarded="ops.reload" in guarded,
            )
        },
        **_v2_paths(settings, guarded),
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Fraud detection service", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                "Transaction": _transaction(),
                "Batch": _batch(settings.max_batch),
                "Prediction": PREDICTION,
                "Explanation": EXPLANATION,
                "Label": Label.model_json_schema(),
                "Labels": _list_of("labels", "Label", settings.max_batch),
                "Model": MODEL,
                "Health": HEALTH,
                "Reloaded": RELOADED,
                "V2Request": _v2_request(settings),
                "V2Response": V2_RESPONSE,
                "V2Output": V2_TENSOR_OUT,
                "V2ModelMetadata": V2_MODEL_METADATA,
                "V2ServerMetadata": V2_SERVER_METADATA,
                "Error": ERROR,
                "V2Error": V2_ERROR,
            }
        },
    }
    if guarded:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return document
