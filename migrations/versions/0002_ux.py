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
    # --- helper 15B (sessions, table preferences): ui_sessions, ui_preferences ------------------
    op.create_table(
        "ui_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("handoff_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("handoff_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        sa.UniqueConstraint("handoff_hash"),
    )
    with op.batch_alter_table("ui_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "ui_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "key", name="uq_ui_preference"),
    )
    with op.batch_alter_table("ui_preferences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_preferences_user_id"), ["user_id"], unique=False)
    # --- end helper 15B ------------------------------------------------------------------------


def downgrade() -> None:
    # --- helper 15A ----------------------------------------------------------------------------
    with op.batch_alter_table("deployment_requests") as batch:
        batch.drop_column("schema_change_ack")
    # --- end helper 15A ------------------------------------------------------------------------
    # --- helper 15B ----------------------------------------------------------------------------
    op.drop_table("ui_preferences")
    op.drop_table("ui_sessions")
    # --- end helper 15B ------------------------------------------------------------------------
