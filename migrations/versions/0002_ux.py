"""Every role's screens (issue: UX)

Revision ID: 0002
Revises: 0001
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- helper 15A (deployment request form): acknowledged input-schema change ---------------
    with op.batch_alter_table("deployment_requests") as batch:
        batch.add_column(sa.Column("schema_change_ack", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=""))
    # --- end helper 15A ------------------------------------------------------------------------


def downgrade() -> None:
    # --- helper 15A ----------------------------------------------------------------------------
    with op.batch_alter_table("deployment_requests") as batch:
        batch.drop_column("schema_change_ack")
    # --- end helper 15A ------------------------------------------------------------------------
