"""All configuration read from the environment, in one place (names: SPEC section 11).

Only the edges read it: `create_app(settings)`, each `fraud` command and the gunicorn config.
Everything below them takes the values it needs as arguments.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import UsageError

HOME = Path(".fraud")
MAX_BATCH = 1000
"""Transactions (or labels) one request may carry unless FRAUD_MAX_BATCH says otherwise."""
LABEL_MATURITY_DAYS = 60.0
"""Days after which an unlabelled prediction is presumed legitimate, unless
FRAUD_LABEL_MATURITY_DAYS says otherwise."""


def _named(variable: str, default: Any) -> Any:
    """A field read from `variable` itself: a name other tools own (SPEC section 11)."""
    return Field(default=default, validation_alias=variable)


class Settings(BaseSettings):
    """Settings for every command and the service: each field is read from FRAUD_<FIELD>,
    unless it names a variable of its own."""

    # An empty variable (a workflow secret that is not set) means "use the default".
    model_config = SettingsConfigDict(
        env_prefix="FRAUD_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    model_store: str = str(HOME / "store")
    model_name: str = "fraud-detector"
    data: str | None = None
    data_cache: Path = HOME / "data"
    api_tokens: str = ""
    admin_token: str = ""
    analyst_tokens: str = ""
    """The review page's sign-in tokens: comma-separated `token` or `name:token` entries."""
    reload_interval: float = 30.0
    serving_cache: Path = HOME / "serving-cache"
    max_batch: int = MAX_BATCH
    challenger_traffic: float = Field(default=0.0, ge=0.0, le=1.0)
    shadow: bool = False
    explain_flagged: bool = True
    explain_top: int = Field(default=5, ge=1, le=30)
    database_url: str = _named("DATABASE_URL", f"sqlite:///{HOME / 'predictions.db'}")
    log_capacity: int = 10_000
    log_spool_dir: Path = HOME / "log-spool"
    # Per worker. A single-row record takes about 460 bytes: 256 MB hold about 580,000 rows,
    # 39 minutes of a database outage at 500 rows/s over 2 workers.
    log_spool_max_mb: float = Field(default=256.0, gt=0)
    log_retention_days: float = Field(default=90.0, gt=0)
    """Days of predictions `fraud log prune` keeps: three times retraining's 30-day lookback."""
    label_maturity_days: float = Field(default=LABEL_MATURITY_DAYS, ge=0)
    """Days after which an unlabelled prediction is presumed legitimate (the dispute window
    most chargebacks arrive within); a younger one is unknown, never legitimate."""
    mlflow_tracking_uri: str = _named("MLFLOW_TRACKING_URI", "")
    on_drift: Literal["", "retrain", "dispatch"] = ""
    github_token: str = _named("GITHUB_TOKEN", "")
    github_repository: str = _named("GITHUB_REPOSITORY", "")
    # Set to "true" by GitHub on every Actions runner.
    github_actions: bool = _named("GITHUB_ACTIONS", False)
    github_api_url: str = _named("GITHUB_API_URL", "https://api.github.com")
    # Set by GitHub on every Actions runner: who started the run, and the commit it runs.
    github_actor: str = _named("GITHUB_ACTOR", "")
    github_sha: str = _named("GITHUB_SHA", "")
    retrain_workflow: str = "retrain.yml"
    retrain_ref: str = "main"
    pushgateway_url: str = _named("PUSHGATEWAY_URL", "")
    reports: Path = HOME / "reports"
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = Field(default=2, ge=1)
    access_log: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    # Set by the gunicorn config for its workers; prometheus_client reads it too.
    prometheus_multiproc_dir: str = _named("PROMETHEUS_MULTIPROC_DIR", "")


def variable_names() -> dict[str, str]:
    """Each setting's environment variable, by field name."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {
        name: field.validation_alias
        if isinstance(field.validation_alias, str)
        else f"{prefix}{name.upper()}"
        for name, field in Settings.model_fields.items()
    }


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
