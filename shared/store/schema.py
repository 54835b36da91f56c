"""Every table of the database in one metadata (migrations and schema tests use it)."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.security import tables as security_tables
from shared.store import tables as store_tables
from shared.store.base import Base

TABLE_MODULES = (store_tables, security_tables)
metadata: MetaData = Base.metadata
