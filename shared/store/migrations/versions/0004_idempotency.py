"""idempotency of client request ids on the local path

Revision ID: 0004_idempotency
Revises: 0003_catalog_version
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_idempotency'
down_revision = '0003_catalog_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency',
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )
    op.create_index(op.f('ix_idempotency_created_at'), 'idempotency', ['created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_idempotency_created_at'), table_name='idempotency')
    op.drop_table('idempotency')
