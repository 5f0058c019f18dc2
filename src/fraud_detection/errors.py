"""Every failure users must tell apart, in one hierarchy.

Each is mapped once: to a CLI exit code (SPEC section 11) by `exit_code`, in the CLI's one
error handler; and, for the service, each `RequestError` to an HTTP status and error body in
the transport's one table (serving/http_errors.py).
"""


class FraudError(Exception):
    """Base of every error the product reports to users."""

    exit_code = 1


class UsageError(FraudError):
    """A caller's mistake (a bad argument or option value); nothing was done."""

    exit_code = 2


class DataValidationError(UsageError):
    """The input data breaks the schema; nothing was trained or written."""


class StoreError(FraudError):
    """The model store could not be read or written."""


class NotFoundError(StoreError):
    """A version, alias or file is not in the store."""

    exit_code = 2


class IntegrityError(StoreError):
    """An artifact's sha256 does not match its manifest."""


class ParityError(FraudError):
    """ONNX and scikit-learn disagree beyond the tolerance: the export cannot be served."""


class DatasetUnavailableError(FraudError):
    """The real dataset could not be obtained (offline and no cache)."""


class PredictionLogError(FraudError):
    """The prediction-log database could not be read or written."""


class PushError(FraudError):
    """The Pushgateway refused or could not be reached."""


class TriggerError(FraudError):
    """The retrain that drift asked for could not be started, or failed."""


class RolloutAborted(FraudError):
    """A rollout step found a breach: the canary was removed and the champion serves all."""


class ServiceNotReadyError(FraudError):
    """A running service did not become ready in time."""


class RequestError(FraudError):
    """A request the service refuses or cannot answer now, in domain terms: no HTTP status.

    The transport maps each kind to its status and error body, once per API surface
    (serving/http_errors.py), as KServe's errors.py does; `field` names the input at fault.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidInput(RequestError):
    """The body, a header or a parameter breaks the API's rules; nothing was scored."""


class TooLarge(InvalidInput):
    """A body or batch over the service's limits."""


class UnsupportedMediaType(InvalidInput):
    """A body in a content type the API does not take."""


class Unauthorized(RequestError):
    """No bearer token, or one the route's guard does not accept."""


class UnknownModel(RequestError):
    """A model name this service does not serve."""


class VersionNotServed(RequestError):
    """A version of the served model that is neither its champion nor its challenger."""


class ModelNotReady(RequestError):
    """No champion is loaded yet (a first start with the store down, or an empty store)."""


class LogUnavailable(RequestError):
    """The prediction log cannot be written now (feedback); retry later."""
