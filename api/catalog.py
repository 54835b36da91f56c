"""The live catalog: file/env definitions merged with the DB's (admin API), with provider
keys from the vault when it is unlocked. Changes take effect without a restart."""

from __future__ import annotations

import asyncio
import contextlib

from api.security import SecurityState
from api.state import AppState
from shared.config import ProviderConfig
from shared.errors import NotFound, VaultLocked
from shared.providers.registry import ProviderRegistry
from shared.store import catalog as store_catalog

GRACE_S = 30.0  # old adapters stay open this long for requests already using them


def key_for(state: AppState) -> object:
    def lookup(p: ProviderConfig) -> str | None:
        return state.vault_keys.get(p.id) if p.uses_vault else p.resolve_key()
    return lookup


async def reload_catalog(state: AppState, sec: SecurityState) -> None:
    async with state.sessionmaker() as session:
        providers, models, aliases = await store_catalog.load(session)
    catalog = store_catalog.merge(state.base_catalog or state.catalog, providers, models, aliases)
    keys: dict[str, str] = {}
    for p in catalog.providers:
        if p.uses_vault and sec.vault.is_unlocked:
            with contextlib.suppress(NotFound, VaultLocked):
                keys[p.id] = await sec.vault.get_secret(p.id)
    state.vault_keys = keys
    old = state.registry
    state.registry = ProviderRegistry(catalog, state.settings,
                                      key_lookup=key_for(state))  # type: ignore[arg-type]
    state.set_catalog(catalog)
    for p in catalog.providers:
        if p.uses_vault:
            state.health.mark(p.id, p.id in keys,
                              None if p.id in keys else "vault locked (key unavailable)")
    task = asyncio.create_task(_close_later(old))
    state.background.add(task)
    task.add_done_callback(state.background.discard)


async def _close_later(registry: ProviderRegistry) -> None:
    try:
        await asyncio.sleep(GRACE_S)
    finally:  # also on shutdown (cancelled)
        await registry.aclose()
