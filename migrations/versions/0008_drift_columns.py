"""Per-column drift alerts: the monitor's important columns (issue 15)

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('monitors') as batch:
        batch.add_column(sa.Column('important_columns', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitors') as batch:
        batch.drop_column('important_columns')
