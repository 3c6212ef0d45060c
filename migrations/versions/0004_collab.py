"""Subscriptions, deliveries, report

Revision ID: 0004
Revises: 0003
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notification_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('use_case_id', sa.Integer(), nullable=True),
        sa.Column('actor_username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('direct_user_ids', sa.JSON(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_notification_events_created_at'), 'notification_events', ['created_at'], unique=False)
    op.create_index(op.f('ix_notification_events_use_case_id'), 'notification_events', ['use_case_id'], unique=False)
    op.create_table(
        'deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('event_kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('digest', sa.Boolean(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['event_id'],
            ['notification_events.id'],
        ),
        sa.ForeignKeyConstraint(
            ['user_id'],
            ['users.id'],
        ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_deliveries_cooldown',
        'deliveries',
        ['user_id', 'entity_type', 'entity_id', 'event_kind', 'created_at'],
        unique=False,
    )
    op.create_index(op.f('ix_deliveries_created_at'), 'deliveries', ['created_at'], unique=False)
    op.create_index(op.f('ix_deliveries_event_id'), 'deliveries', ['event_id'], unique=False)
    op.create_index('ix_deliveries_status', 'deliveries', ['status', 'digest'], unique=False)
    op.create_table(
        'notification_settings',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('last_digest_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'],
            ['users.id'],
        ),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'subscriptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('channels', sa.JSON(), nullable=False),
        sa.Column('muted', sa.Boolean(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'],
            ['users.id'],
        ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'entity_type', 'entity_id', name='uq_subscription'),
    )
    op.create_index('ix_subscriptions_entity', 'subscriptions', ['entity_type', 'entity_id'], unique=False)
    op.create_index(op.f('ix_subscriptions_user_id'), 'subscriptions', ['user_id'], unique=False)
    op.create_table(
        'chat_webhooks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('use_case_id', sa.Integer(), nullable=True),
        sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('flavor', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['use_case_id'],
            ['use_cases.id'],
        ),
        sa.ForeignKeyConstraint(
            ['user_id'],
            ['users.id'],
        ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_chat_webhooks_use_case_id'), 'chat_webhooks', ['use_case_id'], unique=False)
    op.create_index(op.f('ix_chat_webhooks_user_id'), 'chat_webhooks', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_table('deliveries')
    op.drop_table('chat_webhooks')
    op.drop_table('notification_settings')
    op.drop_table('subscriptions')
    op.drop_table('notification_events')
