"""Settings from the environment (see DESIGN.md, "Contracts" -> Configuration)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


class Settings(BaseSettings):
    """Every knob of MLOps Hub; each field is read from the environment variable of the same name."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(default=f"sqlite:///{DATA_DIR / 'mlops_hub.db'}", alias="DATABASE_URL")
    # A folder (local or a shared mount) or an fsspec URL such as s3://bucket/prefix (see mlops_core/artifacts.py).
    artifact_root: str = Field(default=str(DATA_DIR / "artifacts"), alias="ARTIFACT_ROOT")
    # Local scratch for a URL store: downloaded copies of immutable artifacts and staging (default data/artifact_cache).
    artifact_cache_dir: str | None = Field(default=None, alias="ARTIFACT_CACHE_DIR")
    mlops_demo_password: str | None = Field(default=None, alias="MLOPS_DEMO_PASSWORD")
    mlops_api_port: int = Field(default=8000, alias="MLOPS_API_PORT")
    mlops_api_host: str = Field(default="127.0.0.1", alias="MLOPS_API_HOST")
    mlops_ui_port: int = Field(default=8501, alias="MLOPS_UI_PORT")
    # Upload limit for datasets and batch scoring, in megabytes (Streamlit's own limit is in .streamlit/config.toml).
    max_upload_mb: int = Field(default=500, alias="MLOPS_MAX_UPLOAD_MB")
    # Largest number of records one scoring request may carry (past it: HTTP 413).
    max_records_per_request: int = Field(default=10_000, alias="MLOPS_MAX_RECORDS")
    max_request_bytes: int = Field(default=20 * 1024 * 1024, alias="MLOPS_MAX_REQUEST_BYTES")
    # Worker: seconds without a heartbeat after which a running job is considered dead.
    job_heartbeat_timeout: int = Field(default=30, alias="MLOPS_JOB_HEARTBEAT_TIMEOUT")
    worker_poll_seconds: float = Field(default=0.5, alias="MLOPS_WORKER_POLL_SECONDS")
    # Whether this worker may become the (single, elected) scheduler.
    scheduler_enabled: bool = Field(default=True, alias="MLOPS_SCHEDULER")
    alert_webhook_url: str | None = Field(default=None, alias="MLOPS_ALERT_WEBHOOK_URL")
    log_level: str = Field(default="WARNING", alias="MLOPS_LOG_LEVEL")

    # --- security (see docs/SECURITY.md) -----------------------------------------------------------
    # Interface the UI listens on (`up`, `ui`); 0.0.0.0 only behind a proxy that terminates TLS.
    mlops_ui_host: str = Field(default="127.0.0.1", alias="MLOPS_UI_HOST")
    # A UI session with no interaction for this long must log in again.
    session_idle_hours: float = Field(default=8.0, alias="MLOPS_SESSION_IDLE_HOURS")
    # Failed logins: after this many failures per account (or per client) in the window, a growing delay and
    # then a temporary lock of `login_lock_minutes`.
    login_max_failures: int = Field(default=5, alias="MLOPS_LOGIN_MAX_FAILURES")
    login_lock_minutes: float = Field(default=15.0, alias="MLOPS_LOGIN_LOCK_MINUTES")
    # Source SQL connections (MLOPS_SQL_CONNECTIONS): longest a query may run, in seconds.
    sql_source_timeout_seconds: float = Field(default=30.0, alias="MLOPS_SQL_TIMEOUT_SECONDS")
    # Dataset files: refused before reading when the Parquet footer (or the CSV) says more than this.
    max_dataset_rows: int = Field(default=25_000_000, alias="MLOPS_MAX_DATASET_ROWS")
    max_dataset_columns: int = Field(default=10_000, alias="MLOPS_MAX_DATASET_COLUMNS")
    max_uncompressed_mb: int = Field(default=20_000, alias="MLOPS_MAX_UNCOMPRESSED_MB")
    # Scoring: longest string accepted in one field of a record (longer: HTTP 400).
    max_string_length: int = Field(default=256, alias="MLOPS_MAX_STRING_LENGTH")
    # GET /metrics needs `Authorization: Bearer <this>` when set; unset: /metrics answers only loopback clients.
    metrics_token: str | None = Field(default=None, alias="MLOPS_METRICS_TOKEN")
    # The model check of a deployment gate runs in a child process with these limits.
    model_check_memory_mb: int = Field(default=2048, alias="MLOPS_MODEL_CHECK_MEMORY_MB")
    model_check_timeout_seconds: float = Field(default=120.0, alias="MLOPS_MODEL_CHECK_TIMEOUT_SECONDS")
    # Folders the UI may register server files from, os.pathsep-separated (unset: data/); see data_io.allowed_roots.
    ingest_roots: str | None = Field(default=None, alias="MLOPS_INGEST_ROOTS")
    # Named source databases as JSON {"name": "sqlalchemy-url"}; kept raw so data_io refuses a bad value in one line.
    sql_connections: str | None = Field(default=None, alias="MLOPS_SQL_CONNECTIONS")
    # The tracking SDK's personal access token (create one with `python -m mlops_core user token NAME`).
    mlops_token: str | None = Field(default=None, alias="MLOPS_TOKEN")
    # A new personal access token expires this many days after it is created (Hub API, SDK, CI).
    token_days: int = Field(default=90, alias="MLOPS_TOKEN_DAYS")
    # The Hub the tracking SDK and the pipeline CLI talk to (the `serve` process); no database URL is needed there.
    hub_url: str = Field(default="http://127.0.0.1:8000", alias="MLOPS_HUB_URL")
    # `demo --scale large`: multiplies every size of the large workspace (kept raw: "" means 1, as before).
    large_factor: str | None = Field(default=None, alias="MLOPS_LARGE_FACTOR")

    # --- Scale-out (Dask) ---
    # A Dask scheduler address (tcp://host:8786): training searches and batch scoring run there; unset means local.
    dask_scheduler: str | None = Field(default=None, alias="MLOPS_DASK_SCHEDULER")
    # Rows per batch for streaming passes over datasets, scoring and monitoring windows.
    stream_batch_rows: int = Field(default=65_536, alias="MLOPS_STREAM_BATCH_ROWS")
    # Peak memory a streaming dataset pass may use (MiB); larger files are processed in passes, not loaded whole.
    stream_memory_mb: int = Field(default=1024, alias="MLOPS_STREAM_MEMORY_MB")

    # --- Scaling advice (Infrastructure page; the same figures are Prometheus metrics) ---
    # Jobs waited longer than this at p95 over the last hour: add a worker.
    scale_queue_wait_p95_seconds: float = Field(default=60.0, alias="MLOPS_SCALE_QUEUE_WAIT_P95_SECONDS")
    # Workers busy this share of the last hour while jobs wait: add a worker; each under the idle share: one fewer.
    scale_worker_busy_ratio: float = Field(default=0.85, alias="MLOPS_SCALE_WORKER_BUSY_RATIO")
    scale_worker_idle_ratio: float = Field(default=0.05, alias="MLOPS_SCALE_WORKER_IDLE_RATIO")
    # Scoring p95 latency over this (ms) at this CPU % (100 = one core), or more requests in flight: add a replica.
    scale_replica_p95_ms: float = Field(default=300.0, alias="MLOPS_SCALE_REPLICA_P95_MS")
    scale_replica_cpu_percent: float = Field(default=80.0, alias="MLOPS_SCALE_REPLICA_CPU_PERCENT")
    scale_replica_in_flight: float = Field(default=8.0, alias="MLOPS_SCALE_REPLICA_IN_FLIGHT")

    # --- Notifications (email, chat webhooks) ---
    # The UI address used in links inside emails and chat messages.
    public_url: str = Field(default="http://127.0.0.1:8501", alias="MLOPS_PUBLIC_URL")
    smtp_host: str | None = Field(default=None, alias="MLOPS_SMTP_HOST")
    smtp_port: int = Field(default=25, alias="MLOPS_SMTP_PORT")
    smtp_user: str | None = Field(default=None, alias="MLOPS_SMTP_USER")
    smtp_password: str | None = Field(default=None, alias="MLOPS_SMTP_PASSWORD")
    smtp_from: str = Field(default="mlops-hub@localhost", alias="MLOPS_SMTP_FROM")
    smtp_starttls: bool = Field(default=False, alias="MLOPS_SMTP_STARTTLS")
    # One subscriber gets at most one message per object and event kind within this window.
    notify_cooldown_minutes: float = Field(default=30.0, alias="MLOPS_NOTIFY_COOLDOWN_MINUTES")

    # --- UI sessions ---
    # Signs the UI session cookie (a refresh keeps you logged in); unset: a random key kept in the data folder.
    session_secret: str | None = Field(default=None, alias="MLOPS_SESSION_SECRET")
    # A UI session ends this long after login even when used all along (idle expiry: MLOPS_SESSION_IDLE_HOURS).
    session_max_days: float = Field(default=7.0, alias="MLOPS_SESSION_MAX_DAYS")

    # --- Monitoring ---
    # A segment with fewer rows than this in a window is marked "too few" instead of judged.
    segment_min_rows: int = Field(default=30, alias="MLOPS_SEGMENT_MIN_ROWS")
    # A deployment served elsewhere (bundle target) that uploads nothing for this long raises an alert.
    target_silence_hours: float = Field(default=2.0, alias="MLOPS_TARGET_SILENCE_HOURS")
    # A window of more logged predictions than this is checked for drift from binned sketches, read once in
    # batches of MLOPS_STREAM_BATCH_ROWS (bounded memory); smaller windows are loaded whole (exact). 0: always sketches.
    drift_sketch_rows: int = Field(default=200_000, alias="MLOPS_DRIFT_SKETCH_ROWS")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
    return get_settings()
