"""The schema (SQLAlchemy 2 typed declarative). Portable across SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.store.base import Base, UTCDateTime, utcnow


class ProviderRow(Base):
    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str | None] = mapped_column(String(1024))
    endpoints: Mapped[list[Any] | None] = mapped_column(JSON)
    api_key_env: Mapped[str | None] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(128), index=True)
    upstream_model: Mapped[str | None] = mapped_column(String(256))
    weight: Mapped[float] = mapped_column(Float, default=5)
    max_context_tokens: Mapped[int] = mapped_column(Integer, default=8192)
    input_per_1k: Mapped[float] = mapped_column(Float, default=0)
    output_per_1k: Mapped[float] = mapped_column(Float, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(16), default="chat", server_default="chat")
    cache_ttl_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AliasRow(Base):
    __tablename__ = "aliases"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    cache_ttl_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RequestLogRow(Base):
    __tablename__ = "request_log"
    __table_args__ = (Index("ix_request_log_key_time", "api_key_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128), index=True)
    provider: Mapped[str | None] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0)
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int] = mapped_column(Integer, default=200)
    error_class: Mapped[str | None] = mapped_column(String(32))
    executor: Mapped[str] = mapped_column(String(16))
    api_key_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    request_body: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    size_bucket: Mapped[str | None] = mapped_column(String(16))


class RewardRow(Base):
    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    model: Mapped[str] = mapped_column(String(128))
    size_bucket: Mapped[str] = mapped_column(String(16))
    reward: Mapped[float] = mapped_column(Float)
    success: Mapped[bool] = mapped_column(Boolean)
    cost_usd: Mapped[float] = mapped_column(Float, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0)
    # None: automatic (the run's own outcome); "feedback:<source>": a user's score
    source: Mapped[str | None] = mapped_column(String(80))
    weight: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")


class FeedbackRow(Base):
    """One rating of a request by one source (POST /v1/feedback); its reward row is in
    ``rewards`` with ``source = "feedback:<source>"``."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("request_id", "source", name="uq_feedback_request_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    thumbs: Mapped[str | None] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(128))
    size_bucket: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ResponseCacheRow(Base):
    """An exact-response cache entry (shared/cache/sql.py): the key is the hash of the
    canonical request (shared/cache/keys.py), the value the answer as JSON."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    value: Mapped[str] = mapped_column(Text)


class RuntimeConfigRow(Base):
    """Runtime settings every process must agree on (``routing``: routing defaults and score
    weights; ``retention``: what the prune keeps), one JSON value per key. Written in the
    transaction that bumps the catalog version, so they ride the catalog poll."""

    __tablename__ = "runtime_config"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CatalogVersionRow(Base):
    """One row (id 1): bumped in the transaction of every admin catalog change (providers,
    models, vault keys), so every process can tell by one primary-key SELECT whether its
    catalog is current (shared/catalog.py polls it)."""

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IdempotencyRow(Base):
    """A client-supplied request id run in-process (shared/store/idempotency.py): its body's
    fingerprint and, once done, its result, so a repeat gets the same answer in any
    gateway process (workflow-path runs are deduplicated by Temporal's workflow id)."""

    __tablename__ = "idempotency"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # running | ok | error | streamed
    result: Mapped[str | None] = mapped_column(Text)  # the outcome or the error, as JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FileRow(Base):
    """An uploaded file (``/v1/files``, purpose ``batch``) or a batch's output/error file.

    An upload's bytes are :class:`FileChunkRow` rows (in the database, so every gateway
    process and worker, on any host, reads the same file); an output or error file has no
    chunks: it is rendered from the batch's items when read (``batch_id``, ``kind``)."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # upload | output | errors
    filename: Mapped[str] = mapped_column(String(256))
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FileChunkRow(Base):
    """One piece (≤ 1 MiB) of an uploaded file's bytes, in order."""

    __tablename__ = "file_chunks"

    file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BatchRow(Base):
    """A batch (``/v1/batches``); its counts are those of its items."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    input_file_id: Mapped[str] = mapped_column(String(64))
    output_file_id: Mapped[str] = mapped_column(String(64))
    error_file_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # when each status was reached: {"in_progress_at": ..., "completed_at": ...}
    times: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BatchItemRow(Base):
    """One line of a batch's input: its prepared run, then its result (stored as it
    completes, keyed by (batch, line): a retried store writes the same row)."""

    __tablename__ = "batch_items"
    __table_args__ = (Index("ix_batch_items_status", "batch_id", "status"),)

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    custom_id: Mapped[str | None] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | completed | failed | cancelled
    run_input: Mapped[str | None] = mapped_column(Text)  # the prepared ChatInput / PlanInput
    outcome: Mapped[str | None] = mapped_column(Text)  # the ChatOutcome / PlanOutcome
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {status_code, type, message}
    cost_usd: Mapped[float] = mapped_column(Float, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
