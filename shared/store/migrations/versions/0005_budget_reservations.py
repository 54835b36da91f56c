"""budget reservations: key_spend.reserved_usd and the key_reservations table

Revision ID: 0005_budget_reservations
Revises: 0004_idempotency
Create Date: 2026-12-09 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_budget_reservations'
down_revision = '0004_idempotency'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('key_spend', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved_usd', sa.Float(), nullable=False,
                                      server_default='0'))
    op.create_table('key_reservations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('amount_usd', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('key_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_key_reservations_key_expires', ['key_id', 'expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('key_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_key_reservations_key_expires')
    op.drop_table('key_reservations')
    with op.batch_alter_table('key_spend', schema=None) as batch_op:
        batch_op.drop_column('reserved_usd')
