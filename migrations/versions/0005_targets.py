"""Deployment targets, bundles, upload keys

Revision ID: 0005
Revises: 0004
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'deployment_targets',
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('bundle_manifest', sa.JSON(), nullable=True),
        sa.Column('last_upload_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('rows_received', sa.Integer(), nullable=False),
        sa.Column('backlog', sa.Integer(), nullable=False),
        sa.Column('dropped', sa.Integer(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['deployment_id'],
            ['deployments.id'],
        ),
        sa.PrimaryKeyConstraint('deployment_id'),
    )
    op.create_table(
        'upload_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ['deployment_id'],
            ['deployments.id'],
        ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('upload_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_keys_deployment_id'), ['deployment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_keys_key_hash'), ['key_hash'], unique=True)

    op.create_table(
        'upload_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('deployment_id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['deployment_id'],
            ['deployments.id'],
        ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('deployment_id', 'batch_id', name='uq_upload_batch'),
    )
    with op.batch_alter_table('upload_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_batches_deployment_id'), ['deployment_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('upload_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_batches_deployment_id'))
    op.drop_table('upload_batches')
    with op.batch_alter_table('upload_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_keys_key_hash'))
        batch_op.drop_index(batch_op.f('ix_upload_keys_deployment_id'))
    op.drop_table('upload_keys')
    op.drop_table('deployment_targets')
