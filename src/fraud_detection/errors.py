"""The failures users must tell apart, each with its CLI exit code (SPEC section 11)."""


class FraudError(Exception):
    """Base of every error the product reports to users."""

    exit_code = 1


class DataValidationError(FraudError):
    """The input data breaks the schema; nothing was trained or written."""

    exit_code = 2


class StoreError(FraudError):
    """The model store could not be read or written."""


class NotFoundError(StoreError):
    """A version, alias or file is not in the store."""

    exit_code = 2


class IntegrityError(StoreError):
    """An artifact's sha256 does not match its manifest."""


class DatasetUnavailableError(FraudError):
    """The real dataset could not be obtained (offline and no cache)."""
