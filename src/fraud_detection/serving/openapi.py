"""The OpenAPI 3 document of the service, built from the same pydantic model that validates."""

from typing import Any

from ..config import Settings
from .codecs import Label, Transaction

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
            },
            "required": ["code", "message"],
        }
    },
}
PREDICTION = {
    "type": "object",
    "properties": {
        "transaction_id": {"type": "string"},
        "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
        "is_fraud": {"type": "boolean"},
        "threshold": {"type": "number"},
        "model_version": {"type": "string"},
    },
    "required": ["transaction_id", "fraud_probability", "is_fraud", "threshold", "model_version"],
}


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(c): {"description": "error", "content": ref} for c in codes}


def _json_of(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": ref}}}


def _one_or_many(single: str, batch: str) -> dict[str, Any]:
    """A required JSON body that is either schema: one item, or the batch of them."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in (single, batch)]
    return {"required": True, "content": {"application/json": {"schema": {"oneOf": refs}}}}


def _list_of(key: str, ref: str, max_items: int) -> dict[str, Any]:
    """A body of the form {key: [1..max_items items]}."""
    items = {"type": "array", "minItems": 1, "maxItems": max_items, "items": {"$ref": ref}}
    return {"type": "object", "properties": {key: items}, "required": [key]}


def openapi_document(settings: Settings) -> dict[str, Any]:
    """OpenAPI 3.0 description of /predict, /feedback, /models, health and the V2 endpoints."""
    transaction = Transaction.model_json_schema()
    transaction["description"] = (
        "One card transaction: the 30 feature fields. Other fields (merchant data and the "
        "like) are accepted and ignored."
    )
    transaction["additionalProperties"] = True
    batch = _list_of("instances", "#/components/schemas/Transaction", settings.max_batch)
    v2_tensor = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "datatype": {"type": "string", "enum": ["FP32", "FP64"]},
                        "data": {"type": "array", "items": {}},
                    },
                    "required": ["name", "shape", "datatype", "data"],
                },
            },
        },
        "required": ["inputs"],
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Fraud detection service", "version": "1"},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Score one transaction or a batch",
                    "requestBody": _one_or_many("Transaction", "Batch"),
                    "responses": {
                        "200": {
                            "description": "scored",
                            "content": _json_of("#/components/schemas/Prediction"),
                        },
                        **_errors(400, 401, 413, 415, 503),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "Analyst labels, joined to logged predictions by transaction_id",
                    "requestBody": _one_or_many("Label", "Labels"),
                    "responses": {
                        "200": {
                            "description": "stored; a later label for the same id replaces it",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"stored": {"type": "integer"}},
                                    }
                                }
                            },
                        },
                        **_errors(400, 401, 413, 415, 503),
                    },
                }
            },
            "/models": {
                "get": {"summary": "Served models", "responses": {"200": {"description": "ok"}}}
            },
            "/health": {
                "get": {
                    "summary": "Health",
                    "responses": {"200": {"description": "ok"}, **_errors(503)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/v2/health/live": {"get": {"responses": {"200": {"description": "live"}}}},
            "/v2/health/ready": {
                "get": {"responses": {"200": {"description": "ready"}, **_errors(503)}}
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Open Inference Protocol inference on an [N, 30] tensor",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": _json_of("#/components/schemas/V2Request"),
                    },
                    "responses": {
                        "200": {"description": "outputs probabilities and is_fraud"},
                        **_errors(400, 404, 413, 415, 503),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Transaction": transaction,
                "Batch": batch,
                "Prediction": PREDICTION,
                "V2Request": v2_tensor,
                "Label": Label.model_json_schema(),
                "Labels": _list_of("labels", "#/components/schemas/Label", settings.max_batch),
                "Error": ERROR,
            }
        },
    }
