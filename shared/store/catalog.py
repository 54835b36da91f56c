"""Providers, models and aliases defined at runtime (admin API), persisted in the DB,
and the catalog version every process polls (bumped in the same transaction as each
change: :func:`bump_version`)."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import AliasConfig, Catalog, ModelConfig, ProviderConfig
from shared.store.base import utcnow
from shared.store.tables import AliasRow, CatalogVersionRow, ModelRow, ProviderRow

_PROVIDER_COLUMNS = {"id", "type", "base_url", "endpoints", "api_key_env", "enabled"}


def _provider(row: ProviderRow) -> ProviderConfig:
    return ProviderConfig.model_validate({
        **(row.extra or {}), "id": row.id, "type": row.type, "base_url": row.base_url,
        "endpoints": row.endpoints, "api_key_env": row.api_key_env, "enabled": row.enabled})


def _model(row: ModelRow) -> ModelConfig:
    return ModelConfig(id=row.id, provider=row.provider_id, upstream_model=row.upstream_model,
                       weight=row.weight, max_context_tokens=row.max_context_tokens,
                       input_per_1k=row.input_per_1k, output_per_1k=row.output_per_1k,
                       enabled=row.enabled, aliases=list(row.aliases or []),
                       kind=row.kind or "chat", cache_ttl_s=row.cache_ttl_s)


VERSION_ID = 1


async def read_version(session: AsyncSession) -> int:
    """The current catalog version (one primary-key lookup; 0 before any change)."""
    value = await session.scalar(select(CatalogVersionRow.version)
                                 .where(CatalogVersionRow.id == VERSION_ID))
    return int(value or 0)


async def bump_version(session: AsyncSession) -> None:
    """Count one catalog change. Call it inside the transaction that makes the change, so
    a process that sees the new version also sees the change (and a rolled-back change
    bumps nothing). The row-level UPDATE also serializes concurrent admin changes."""
    result = await session.execute(
        update(CatalogVersionRow).where(CatalogVersionRow.id == VERSION_ID)
        .values(version=CatalogVersionRow.version + 1, updated_at=utcnow()))
    if getattr(result, "rowcount", 1) == 0:  # the migration inserts it; a wiped row only
        session.add(CatalogVersionRow(id=VERSION_ID, version=1))
        await session.flush()


async def load(session: AsyncSession) -> tuple[list[ProviderConfig], list[ModelConfig],
                                               list[AliasConfig]]:
    providers = [_provider(r) for r in (await session.scalars(select(ProviderRow))).all()]
    models = [_model(r) for r in (await session.scalars(select(ModelRow))).all()]
    aliases = [AliasConfig(id=r.id, targets=r.targets, cache_ttl_s=r.cache_ttl_s)
               for r in (await session.scalars(select(AliasRow))).all()]
    return providers, models, aliases


def merge(base: Catalog, providers: list[ProviderConfig], models: list[ModelConfig],
          aliases: list[AliasConfig]) -> Catalog:
    """DB definitions override file/env ones with the same id."""
    pmap = {p.id: p for p in base.providers} | {p.id: p for p in providers}
    mmap = {m.id: m for m in base.models} | {m.id: m for m in models}
    amap = {a.id: a for a in base.aliases} | {a.id: a for a in aliases}
    return Catalog(providers=list(pmap.values()), models=list(mmap.values()),
                   aliases=list(amap.values()))


async def upsert_provider(session: AsyncSession, *, provider: ProviderConfig) -> None:
    data = provider.model_dump(mode="json", exclude={"api_key"})
    extra = {k: v for k, v in data.items() if k not in _PROVIDER_COLUMNS}
    row = await session.get(ProviderRow, provider.id)
    if row is None:
        row = ProviderRow(id=provider.id)
        session.add(row)
    row.type, row.base_url, row.endpoints = provider.type, provider.base_url, provider.endpoints
    row.api_key_env, row.enabled, row.extra = provider.api_key_env, provider.enabled, extra
    await bump_version(session)


async def delete_provider(session: AsyncSession, *, provider_id: str) -> None:
    await session.execute(delete(ProviderRow).where(ProviderRow.id == provider_id))
    await bump_version(session)


async def upsert_model(session: AsyncSession, *, model: ModelConfig) -> None:
    row = await session.get(ModelRow, model.id)
    if row is None:
        row = ModelRow(id=model.id)
        session.add(row)
    row.provider_id, row.upstream_model = model.provider, model.upstream_model
    row.weight, row.max_context_tokens = model.weight, model.max_context_tokens
    row.input_per_1k, row.output_per_1k = model.input_per_1k, model.output_per_1k
    row.enabled, row.aliases, row.kind = model.enabled, model.aliases, model.kind
    row.cache_ttl_s = model.cache_ttl_s
    await bump_version(session)


async def delete_model(session: AsyncSession, *, model_id: str) -> None:
    await session.execute(delete(ModelRow).where(ModelRow.id == model_id))
    await bump_version(session)


async def upsert_alias(session: AsyncSession, *, alias: AliasConfig) -> None:
    row = await session.get(AliasRow, alias.id)
    if row is None:
        session.add(AliasRow(id=alias.id, targets=dict(alias.targets),
                             cache_ttl_s=alias.cache_ttl_s))
    else:
        row.targets, row.cache_ttl_s = dict(alias.targets), alias.cache_ttl_s
    await bump_version(session)


async def delete_alias(session: AsyncSession, *, alias_id: str) -> None:
    await session.execute(delete(AliasRow).where(AliasRow.id == alias_id))
    await bump_version(session)
