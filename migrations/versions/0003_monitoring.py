"""Estimated KPIs, segments, explanations

Revision ID: 0003
Revises: 0002
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'monitor_check_estimates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('check_id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('monitor_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('estimates', sa.JSON(), nullable=False),
        sa.Column('kpis', sa.JSON(), nullable=False),
        sa.Column('kpi_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('segments', sa.JSON(), nullable=False),
        sa.Column('drift_ranking', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['check_id'], ['monitor_checks.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('check_id'),
    )
    op.create_index(
        op.f('ix_monitor_check_estimates_deployment_id'), 'monitor_check_estimates', ['deployment_id'], unique=False
    )
    op.create_table(
        'deployment_fairness',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('column', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('tolerance', sa.Float(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('deployment_id'),
    )
    with op.batch_alter_table('monitors') as batch:
        batch.add_column(sa.Column('alert_on_estimated', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('segments', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column('drift_min_importance', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitors') as batch:
        batch.drop_column('drift_min_importance')
        batch.drop_column('segments')
        batch.drop_column('alert_on_estimated')
    op.drop_table('deployment_fairness')
    op.drop_index(op.f('ix_monitor_check_estimates_deployment_id'), table_name='monitor_check_estimates')
    op.drop_table('monitor_check_estimates')
