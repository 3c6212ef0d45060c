"""Ops settings: alert routing and SLOs in the UI (issue 15)

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ops_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('slo_availability', sa.Float(), nullable=True),
        sa.Column('slo_window_days', sa.Integer(), nullable=False),
        sa.Column('alert_routes', sa.JSON(), nullable=False),
        sa.Column('webhook_url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('webhook_flavor', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_ops_settings_deployment_id', 'ops_settings', ['deployment_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_ops_settings_deployment_id', table_name='ops_settings')
    op.drop_table('ops_settings')
