"""feedback (ratings and weighted reward rows) and the exact response cache

Revision ID: 0007_feedback_cache
Revises: 0006_runtime_config
Create Date: 2026-12-12 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_feedback_cache'
down_revision = '0006_runtime_config'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('api_key_id', sa.String(length=64), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('thumbs', sa.String(length=8), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('size_bucket', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'source', name='uq_feedback_request_source')
    )
    op.create_index(op.f('ix_feedback_created_at'), 'feedback', ['created_at'], unique=False)
    op.create_table('response_cache',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index(op.f('ix_response_cache_model'), 'response_cache', ['model'], unique=False)
    op.create_index(op.f('ix_response_cache_expires_at'), 'response_cache', ['expires_at'],
                    unique=False)
    with op.batch_alter_table('rewards') as batch:
        batch.add_column(sa.Column('source', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('weight', sa.Float(), nullable=False, server_default='1'))
    with op.batch_alter_table('request_log') as batch:
        batch.add_column(sa.Column('size_bucket', sa.String(length=16), nullable=True))
    with op.batch_alter_table('models') as batch:
        batch.add_column(sa.Column('cache_ttl_s', sa.Integer(), nullable=True))
    with op.batch_alter_table('aliases') as batch:
        batch.add_column(sa.Column('cache_ttl_s', sa.Integer(), nullable=True))


def downgrade() -> None:
    for table, column in (('aliases', 'cache_ttl_s'), ('models', 'cache_ttl_s'),
                          ('request_log', 'size_bucket'), ('rewards', 'weight'),
                          ('rewards', 'source')):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.drop_index(op.f('ix_response_cache_expires_at'), table_name='response_cache')
    op.drop_index(op.f('ix_response_cache_model'), table_name='response_cache')
    op.drop_table('response_cache')
    op.drop_index(op.f('ix_feedback_created_at'), table_name='feedback')
    op.drop_table('feedback')
