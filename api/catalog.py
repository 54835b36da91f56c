"""The gateway's side of the live catalog (shared/catalog.py): build it, mirror each swap
into AppState (catalog, registry, vault keys, health of vault-backed providers) and
reload at once after this process's own admin changes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.state import AppState
from shared.catalog import LiveCatalog
from shared.config import Catalog, Settings
from shared.security.redact import SecretRegistry
from shared.security.vault import Vault


def build_live_catalog(settings: Settings, catalog: Catalog,
                       sessionmaker: async_sessionmaker[AsyncSession],
                       secrets: SecretRegistry) -> LiveCatalog:
    return LiveCatalog(settings, catalog, sessionmaker, secrets=secrets, role="gateway")


def attach(state: AppState, live: LiveCatalog, vault: Vault) -> None:
    """Make ``live`` the source of ``state``'s catalog and registry. The gateway's vault is
    unlocked by the admin (or TOKENHUB_VAULT_PASSWORD at start), so ``live`` takes it
    without a password: auto-lock stays effective."""
    live.vault = vault
    state.live = live
    live.subscribe(lambda lc: _mirror(state, lc))
    _mirror(state, live)


def _mirror(state: AppState, live: LiveCatalog) -> None:
    state.vault_keys = live.vault_keys
    state.registry = live.registry
    state.set_catalog(live.catalog)
    if state.routing != live.routing:
        state.set_routing(live.routing)
    reason = "vault locked (key unavailable)"
    for p in live.catalog.providers:
        if p.uses_vault:
            ok = p.id in live.vault_keys
            state.health.mark(p.id, ok, None if ok else reason)


async def reload_catalog(state: AppState) -> None:
    """Reload now (after an admin change by this process, or a vault lock/unlock)."""
    if state.live is not None:
        await state.live.reload()
