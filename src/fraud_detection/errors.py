"""Every failure users must tell apart, in one hierarchy.

Each is mapped once: to a CLI exit code (SPEC section 11) by `exit_code`, in the CLI's one
error handler; and, for the service, to an HTTP status by `ServiceError.status`, in the app
factory's one error handler.
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


class ServiceNotReadyError(FraudError):
    """A running service did not become ready in time."""


STATUS_REASONS = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


class ServiceError(FraudError):
    """A request the service answers with an error: an HTTP status and a closed-set reason,
    and any headers the status calls for (`Allow` on a 405, `WWW-Authenticate` on a 401)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        reason: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.headers = headers or {}
        if reason is None and status == 400:
            reason = "invalid_field" if field else "invalid_request"
        self.reason = reason or STATUS_REASONS.get(status, f"http_{status}")


class CodecError(ServiceError):
    """A request body the codecs cannot decode; a 4xx naming the field."""
