"""All configuration read from the environment, in one place (names: SPEC section 11)."""

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import UsageError

HOME = Path(".fraud")


class Settings(BaseSettings):
    """Settings for every command and the service; each field maps to one variable."""

    # An empty variable (a workflow secret that is not set) means "use the default".
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    model_store: str = Field(
        default=str(HOME / "store"),
        validation_alias=AliasChoices("FRAUD_MODEL_STORE", "model_store"),
    )
    model_name: str = Field(
        default="fraud-detector", validation_alias=AliasChoices("FRAUD_MODEL_NAME", "model_name")
    )
    data: str | None = Field(default=None, validation_alias=AliasChoices("FRAUD_DATA", "data"))
    data_cache: Path = Field(
        default=HOME / "data", validation_alias=AliasChoices("FRAUD_DATA_CACHE", "data_cache")
    )
    api_tokens: str = Field(
        default="", validation_alias=AliasChoices("FRAUD_API_TOKENS", "api_tokens")
    )
    admin_token: str = Field(
        default="", validation_alias=AliasChoices("FRAUD_ADMIN_TOKEN", "admin_token")
    )
    analyst_tokens: str = Field(
        default="", validation_alias=AliasChoices("FRAUD_ANALYST_TOKENS", "analyst_tokens")
    )
    """The review page's sign-in tokens: comma-separated `token` or `name:token` entries."""
    reload_interval: float = Field(
        default=30.0, validation_alias=AliasChoices("FRAUD_RELOAD_INTERVAL", "reload_interval")
    )
    serving_cache: Path = Field(
        default=HOME / "serving-cache",
        validation_alias=AliasChoices("FRAUD_SERVING_CACHE", "serving_cache"),
    )
    max_batch: int = Field(
        default=1000, validation_alias=AliasChoices("FRAUD_MAX_BATCH", "max_batch")
    )
    challenger_traffic: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("FRAUD_CHALLENGER_TRAFFIC", "challenger_traffic"),
    )
    shadow: bool = Field(default=False, validation_alias=AliasChoices("FRAUD_SHADOW", "shadow"))
    explain_flagged: bool = Field(
        default=True,
        validation_alias=AliasChoices("FRAUD_EXPLAIN_FLAGGED", "explain_flagged"),
    )
    explain_top: int = Field(
        default=5, ge=1, le=30, validation_alias=AliasChoices("FRAUD_EXPLAIN_TOP", "explain_top")
    )
    database_url: str = Field(
        default=f"sqlite:///{HOME / 'predictions.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
    )
    log_capacity: int = Field(
        default=10_000, validation_alias=AliasChoices("FRAUD_LOG_CAPACITY", "log_capacity")
    )
    log_spool_dir: Path = Field(
        default=HOME / "log-spool",
        validation_alias=AliasChoices("FRAUD_LOG_SPOOL_DIR", "log_spool_dir"),
    )
    log_retention_days: float = Field(
        default=90.0,
        gt=0,
        validation_alias=AliasChoices("FRAUD_LOG_RETENTION_DAYS", "log_retention_days"),
    )
    """Days of predictions `fraud log prune` keeps: three times retraining's 30-day lookback."""
    label_maturity_days: float = Field(
        default=60.0,
        ge=0,
        validation_alias=AliasChoices("FRAUD_LABEL_MATURITY_DAYS", "label_maturity_days"),
    )
    """Days after which an unlabelled prediction is presumed legitimate (the dispute window
    most chargebacks arrive within); a younger one is unknown, never legitimate."""
    mlflow_tracking_uri: str = Field(
        default="", validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri")
    )
    on_drift: Literal["", "retrain", "dispatch"] = Field(
        default="", validation_alias=AliasChoices("FRAUD_ON_DRIFT", "on_drift")
    )
    github_token: str = Field(
        default="", validation_alias=AliasChoices("GITHUB_TOKEN", "github_token")
    )
    github_repository: str = Field(
        default="", validation_alias=AliasChoices("GITHUB_REPOSITORY", "github_repository")
    )
    # Set to "true" by GitHub on every Actions runner.
    github_actions: bool = Field(
        default=False, validation_alias=AliasChoices("GITHUB_ACTIONS", "github_actions")
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        validation_alias=AliasChoices("GITHUB_API_URL", "github_api_url"),
    )
    retrain_workflow: str = Field(
        default="retrain.yml",
        validation_alias=AliasChoices("FRAUD_RETRAIN_WORKFLOW", "retrain_workflow"),
    )
    retrain_ref: str = Field(
        default="main", validation_alias=AliasChoices("FRAUD_RETRAIN_REF", "retrain_ref")
    )
    pushgateway_url: str = Field(
        default="", validation_alias=AliasChoices("PUSHGATEWAY_URL", "pushgateway_url")
    )
    reports: Path = Field(
        default=HOME / "reports", validation_alias=AliasChoices("FRAUD_REPORTS", "reports")
    )
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("FRAUD_HOST", "host"))
    port: int = Field(default=5000, validation_alias=AliasChoices("FRAUD_PORT", "port"))
    workers: int = Field(default=2, ge=1, validation_alias=AliasChoices("FRAUD_WORKERS", "workers"))
    access_log: bool = Field(
        default=False, validation_alias=AliasChoices("FRAUD_ACCESS_LOG", "access_log")
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        validation_alias=AliasChoices("FRAUD_MAX_BODY_BYTES", "max_body_bytes"),
    )


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags, tests) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def training_settings(**overrides: Any) -> Settings:
    """Settings for a command that writes model versions; in GitHub Actions the store must be
    named, since the default folder is lost with the runner when the job ends."""
    settings = get_settings(**overrides)
    if settings.github_actions and "model_store" not in settings.model_fields_set:
        raise UsageError(
            "no model store: in GitHub Actions the default ./.fraud/store is thrown away with "
            "the runner. Set the repository variable FRAUD_MODEL_STORE (Settings → Secrets and "
            "variables → Actions → Variables), e.g. s3://your-bucket/fraud, or pass --store."
        )
    return settings
