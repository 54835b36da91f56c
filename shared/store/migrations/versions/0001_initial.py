"""initial schema

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22 14:12:14.615689
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('aliases',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('models',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('provider_id', sa.String(length=128), nullable=False),
    sa.Column('upstream_model', sa.String(length=256), nullable=True),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('max_context_tokens', sa.Integer(), nullable=False),
    sa.Column('input_per_1k', sa.Float(), nullable=False),
    sa.Column('output_per_1k', sa.Float(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_models_provider_id'), ['provider_id'], unique=False)

    op.create_table('providers',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('base_url', sa.String(length=1024), nullable=True),
    sa.Column('endpoints', sa.JSON(), nullable=True),
    sa.Column('api_key_env', sa.String(length=256), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('request_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('provider', sa.String(length=128), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=False),
    sa.Column('error_class', sa.String(length=32), nullable=True),
    sa.Column('executor', sa.String(length=16), nullable=False),
    sa.Column('api_key_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.JSON(), nullable=False),
    sa.Column('request_body', sa.Text(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_log_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_request_log_key_time', ['api_key_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_log_model'), ['model'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_log_request_id'), ['request_id'], unique=False)

    op.create_table('rewards',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('size_bucket', sa.String(length=16), nullable=False),
    sa.Column('reward', sa.Float(), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rewards_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rewards_request_id'), ['request_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rewards_request_id'))
        batch_op.drop_index(batch_op.f('ix_rewards_created_at'))

    op.drop_table('rewards')
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_log_request_id'))
        batch_op.drop_index(batch_op.f('ix_request_log_model'))
        batch_op.drop_index('ix_request_log_key_time')
        batch_op.drop_index(batch_op.f('ix_request_log_created_at'))

    op.drop_table('request_log')
    op.drop_table('providers')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_models_provider_id'))

    op.drop_table('models')
    op.drop_table('aliases')

