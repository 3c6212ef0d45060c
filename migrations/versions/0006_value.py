"""ML canvas and value model

Revision ID: 0006
Revises: 0005
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('use_case_canvases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('use_case_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('problem_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('positive_class', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['use_case_id'], ['use_cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('use_case_id', 'version', name='uq_canvas_version')
    )
    with op.batch_alter_table('use_case_canvases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_use_case_canvases_use_case_id'), ['use_case_id'], unique=False)

    op.create_table('value_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('use_case_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('problem_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('volume_per_period', sa.Float(), nullable=True),
    sa.Column('value_tp', sa.Float(), nullable=True),
    sa.Column('value_fp', sa.Float(), nullable=True),
    sa.Column('value_fn', sa.Float(), nullable=True),
    sa.Column('value_tn', sa.Float(), nullable=True),
    sa.Column('cost_per_unit_error', sa.Float(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['use_case_id'], ['use_cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('use_case_id', 'version', name='uq_value_model_version')
    )
    with op.batch_alter_table('value_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_value_models_use_case_id'), ['use_case_id'], unique=False)

    op.create_table('model_version_thresholds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('value_per_period', sa.Float(), nullable=True),
    sa.Column('default_value_per_period', sa.Float(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('value_model_version', sa.Integer(), nullable=True),
    sa.Column('chosen_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('chosen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_version_thresholds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_version_thresholds_model_version_id'), ['model_version_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('model_version_thresholds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_version_thresholds_model_version_id'))
    op.drop_table('model_version_thresholds')
    with op.batch_alter_table('value_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_value_models_use_case_id'))
    op.drop_table('value_models')
    with op.batch_alter_table('use_case_canvases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_use_case_canvases_use_case_id'))
    op.drop_table('use_case_canvases')
