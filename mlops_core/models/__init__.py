"""All tables. Importing this module registers every table on SQLModel.metadata
(Alembic's env.py and the schema test rely on that): add one import per aggregate module."""

from .audit import AuditEvent  # noqa: F401
from .users import PersonalAccessToken, User  # noqa: F401

# stage modules (one line each):
from .datasets import Dataset, DatasetSchema, DatasetVersion, IngestionRun, IngestionSource  # noqa: F401
from .usecases import Kpi, KpiReading, UseCase, UseCaseMember, UseCaseTag, UseCaseTransition  # noqa: F401
from .collab import Comment, InboxItem, Signoff  # noqa: F401
from .deployments import ApiKey, Deployment, DeploymentEvent, DeploymentRequest, Prediction  # noqa: F401
from .experiments import ModelAlias, ModelVersion, RegisteredModel, Run, RunArtifact, RunLatestMetric, RunMetric  # noqa: F401
from .jobs import Job, Lease, Schedule, Worker  # noqa: F401
from .monitoring import Alert, Monitor, MonitorCheck, MonitorCheckColumn, RetrainingProposal  # noqa: F401
from .estimates import MonitorCheckEstimate  # noqa: F401
from .ui import UiPreference, UiSession  # noqa: F401
from .value import ModelVersionThreshold, UseCaseCanvas, ValueModelRow  # noqa: F401
from .targets import DeploymentTarget, UploadBatch, UploadKey  # noqa: F401
from .subscriptions import ChatWebhook, Delivery, NotificationEvent, NotificationSetting, Subscription  # noqa: F401
from .infra import ServiceReplica  # noqa: F401
from .ops_settings import OpsSettings  # noqa: F401
