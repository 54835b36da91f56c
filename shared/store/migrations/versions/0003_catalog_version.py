"""catalog version

Revision ID: 0003_catalog_version
Revises: 0002_security
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0003_catalog_version'
down_revision = '0002_security'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('catalog_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # The one row exists from the start: a bump is then a plain UPDATE.
    op.bulk_insert(table, [{"id": 1, "version": 0, "updated_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('catalog_version')
