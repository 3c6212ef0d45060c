"""All tables. Importing this module registers every table on SQLModel.metadata
(Alembic's env.py and the schema test rely on that): add one import per aggregate module."""
from .audit import AuditEvent  # noqa: F401
from .users import PersonalAccessToken, User  # noqa: F401
# stage modules (one line each):
from .experiments import ModelAlias, ModelVersion, RegisteredModel, Run, RunArtifact, RunLatestMetric, RunMetric  # noqa: F401
