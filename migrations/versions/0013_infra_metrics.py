"""Queue wait, utilisation and scaling figures (issue 16)

Revision ID: 0013
Revises: 0012
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'service_replicas',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('hostname', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('requests_per_s', sa.Float(), nullable=False),
        sa.Column('p95_ms', sa.Float(), nullable=True),
        sa.Column('in_flight', sa.Integer(), nullable=False),
        sa.Column('cpu_percent', sa.Float(), nullable=False),
        sa.Column('rss_mb', sa.Float(), nullable=False),
        sa.Column('requests_total', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_service_replicas_name'), 'service_replicas', ['name'], unique=True)
    op.create_index(op.f('ix_service_replicas_heartbeat_at'), 'service_replicas', ['heartbeat_at'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_started_at', ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_started_at')
    op.drop_index(op.f('ix_service_replicas_heartbeat_at'), table_name='service_replicas')
    op.drop_index(op.f('ix_service_replicas_name'), table_name='service_replicas')
    op.drop_table('service_replicas')
