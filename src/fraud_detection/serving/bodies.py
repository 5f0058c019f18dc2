"""Every response body the service answers, defined once, as pydantic models (the wire models
of KServe's v2_datamodels.py); /openapi.json's components are generated from them.

The operations routes build these models and serialise them. The scoring answers (`Prediction`,
`Predictions`, `V2Response`) are built as plain dicts by the codecs and encoded by orjson, the
hot path's cheapest encoder; tests validate real answers of every route against the document.
A field that may be absent but is never null is typed `X | SkipJsonSchema[None] = None`.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from ..schema import FEATURES


class Body(BaseModel):
    """A response body: its fields are its keys ("model_" ones included)."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)


class Contribution(Body):
    feature: str = Field(json_schema_extra={"enum": list(FEATURES)})
    value: float
    contribution: float


class Explanation(Body):
    """TreeSHAP: expected_value plus every feature's contribution is the model's raw score (a
    probability for forests, log-odds for boosters); the largest are listed."""

    output: Literal["probability", "log_odds"]
    expected_value: float
    top_features: list[Contribution]


class Prediction(Body):
    transaction_id: str
    fraud_probability: float = Field(ge=0, le=1)
    is_fraud: bool
    threshold: float
    model_version: str
    explanation: Explanation | None = Field(
        default=None,
        description="Present with explain, for every transaction (flagged ones are explained "
        "in the prediction log otherwise); null when the model carries no cover to explain "
        "with.",
    )


class Predictions(Body):
    """A batch's answers, in request order, and the champion that the batch was addressed to."""

    predictions: list[Prediction]
    model_version: str


class Stored(Body):
    """Labels stored; a later label for the same id replaces it."""

    stored: int = Field(ge=0)


class Model(Body):
    """What an operator wants to know about a served model."""

    version: str
    threshold: float
    metrics: dict[str, Any] | None = None
    created_at: str | None = None
    loaded_at: str
    source: str
    synthetic: bool
    explainable: bool


class Canary(Model):
    """A rollout's canary: a served model and the share of traffic it takes."""

    share: float = Field(ge=0, le=1)


class Models(Body):
    """The champion, challenger and canary (with its traffic share, `share`) this worker
    serves."""

    name: str
    champion: Model | None
    challenger: Model | None
    canary: Canary | None


class Health(Body):
    status: Literal["ok", "loading"]
    model_version: str | None


class Reloaded(Body):
    reloaded: bool
    model_version: str | None


class V2BinaryData(Body):
    binary_data_size: int = Field(ge=0)


class V2Output(Body):
    """One output tensor: its `data`, or with binary outputs its `parameters.binary_data_size`
    (its bytes follow the JSON header)."""

    name: Literal["probabilities", "is_fraud"]
    shape: list[int]
    datatype: Literal["FP32", "BOOL"]
    data: list[float | bool] | SkipJsonSchema[None] = None
    parameters: V2BinaryData | SkipJsonSchema[None] = None


class V2Parameters(Body):
    threshold: float
    row_model_versions: list[str] | SkipJsonSchema[None] = Field(
        default=None,
        description="Each row's model version, when A/B routing answered some rows with the "
        "challenger.",
    )


class V2Response(Body):
    model_name: str
    model_version: str
    id: str | SkipJsonSchema[None] = None
    outputs: list[V2Output]
    parameters: V2Parameters


class V2TensorMetadata(Body):
    name: str
    datatype: str
    shape: list[int]


class V2ModelParameters(Body):
    features: list[str]
    threshold: float


class V2ModelMetadata(Body):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]
    parameters: V2ModelParameters


class V2ServerMetadata(Body):
    name: str
    version: str
    extensions: list[str]


class V2Live(Body):
    live: bool


class V2Ready(Body):
    ready: bool


class V2ModelReady(Body):
    name: str
    ready: bool


class ErrorDetail(Body):
    code: str
    message: str
    field: str | None


class Error(Body):
    """The /predict, /feedback and operations error."""

    error: ErrorDetail


class V2Error(Body):
    """The Open Inference Protocol error, on every /v2 route."""

    error: str


BODIES: tuple[type[Body], ...] = (
    Prediction,
    Predictions,
    Stored,
    Models,
    Health,
    Reloaded,
    V2Response,
    V2ModelMetadata,
    V2ServerMetadata,
    V2Live,
    V2Ready,
    V2ModelReady,
    Error,
    V2Error,
)
"""The bodies routes answer (the models they hold come with them)."""
