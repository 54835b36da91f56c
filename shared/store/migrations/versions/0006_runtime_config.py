"""runtime config (routing config, retention) and the model kind (chat | embedding)

Revision ID: 0006_runtime_config
Revises: 0005_budget_reservations
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_runtime_config'
down_revision = '0005_budget_reservations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runtime_config',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('models') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='chat'))


def downgrade() -> None:
    with op.batch_alter_table('models') as batch:
        batch.drop_column('kind')
    op.drop_table('runtime_config')
