"""The live catalog (shared/catalog.py) and its version row, on SQLite and PostgreSQL:
every admin change bumps the version in its own transaction, another process's catalog
picks it up, and a worker unlocks (never initializes) the vault for its keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.catalog import LiveCatalog
from shared.config import Catalog, ModelConfig, ProviderConfig, Settings, load_settings
from shared.errors import ConfigError, ProviderError
from shared.providers.base import ProviderCall
from shared.security.redact import SecretRegistry
from shared.security.vault import Vault
from shared.store import catalog as store_catalog
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from tests.store_fixtures import db_url

__all__ = ["db_url"]
FAST_KDF = {"t": 1, "m": 1024, "p": 1}
PW = "catalog test vault password"
KEY = "sk-vault-key-for-catalog-tests-42"
BASE = Catalog(providers=[ProviderConfig(id="sim", type="simulated")],
               models=[ModelConfig(id="sim-model", provider="sim")])


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(db_url)
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


def settings() -> Settings:
    return Settings(_env_file=None, env="test")


async def version(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as s:
        return await store_catalog.read_version(s)


def vaulted(pid: str = "vp") -> ProviderConfig:
    return ProviderConfig(id=pid, type="openai", base_url="http://127.0.0.1:9", uses_vault=True)


async def test_every_catalog_change_bumps_the_version_in_its_transaction(
        sm: async_sessionmaker[AsyncSession]) -> None:
    assert await version(sm) == 0  # the migration's row
    async with sm() as s, s.begin():
        await store_catalog.upsert_provider(s, provider=vaulted("p1"))
    assert await version(sm) == 1
    async with sm() as s, s.begin():
        await store_catalog.upsert_model(s, model=ModelConfig(id="m1", provider="p1"))
    assert await version(sm) == 2
    with pytest.raises(RuntimeError):
        async with sm() as s, s.begin():
            await store_catalog.delete_model(s, model_id="m1")
            raise RuntimeError("rolled back")
    assert await version(sm) == 2  # a rolled-back change bumps nothing
    async with sm() as s, s.begin():
        await store_catalog.delete_model(s, model_id="m1")
        await store_catalog.delete_provider(s, provider_id="p1")
    assert await version(sm) == 4


async def test_vault_changes_bump_the_version(sm: async_sessionmaker[AsyncSession]) -> None:
    vault = Vault(sm, kdf=FAST_KDF, on_change=store_catalog.bump_version)
    await vault.unlock(PW)  # initializes
    assert await version(sm) == 1
    await vault.put_secret("vp", KEY)
    assert await version(sm) == 2
    async with sm() as s, s.begin():  # key and provider in one transaction
        await vault.put_secret("vp", KEY + "2", session=s)
        await store_catalog.upsert_provider(s, provider=vaulted())
    assert await version(sm) == 4
    await vault.rotate(PW, PW + "!")
    await vault.delete_secret("vp")
    assert await version(sm) == 6
    vault.lock()
    await vault.unlock(PW + "!")  # unlocking changes nothing stored
    assert await version(sm) == 6


async def test_another_process_sees_the_change_and_its_vault_key(
        sm: async_sessionmaker[AsyncSession]) -> None:
    admin_vault = Vault(sm, kdf=FAST_KDF, on_change=store_catalog.bump_version)
    secrets = SecretRegistry()
    worker = LiveCatalog(settings(), BASE, sm, vault=Vault(sm), secrets=secrets, password=PW,
                         role="worker")
    await worker.reload()
    assert worker.version == 0 and worker.catalog.provider("vp") is None
    assert not await worker.refresh_if_changed()  # nothing changed: no reload
    await admin_vault.unlock(PW)
    async with sm() as s, s.begin():
        await admin_vault.put_secret("vp", KEY, session=s)
        await store_catalog.upsert_provider(s, provider=vaulted())
        await store_catalog.upsert_model(s, model=ModelConfig(id="vm", provider="vp"))
    old = worker.registry
    assert await worker.refresh_if_changed()
    assert worker.version == await version(sm)
    assert worker.catalog.model("vm") is not None and worker.registry.usable("vp")
    assert worker.vault_keys == {"vp": KEY}
    assert worker.registry is not old and old.ids()  # the old one is in its grace period
    assert secrets.redact(f"key={KEY}") == "key=***"
    await worker.aclose()
    assert old.ids() == [] and worker.registry.ids() == []  # closed on shutdown


async def test_a_worker_never_initializes_the_vault_and_fails_fast_without_a_key(
        sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as s, s.begin():
        await store_catalog.upsert_provider(s, provider=vaulted())
    worker_vault = Vault(sm)
    worker = LiveCatalog(settings(), BASE, sm, vault=worker_vault, password=PW, role="worker",
                         grace_s=0.01)
    await worker.reload()
    assert await worker_vault.state() == "uninitialized"  # not created by the worker
    adapter = await worker.adapter("vp")
    with pytest.raises(ProviderError) as info:
        await adapter.complete(ProviderCall(upstream_model="x",
                                            messages=[{"role": "user", "content": "hi"}]))
    assert info.value.error_class == "fatal" and not info.value.retryable
    assert "vault key unavailable on this worker" in info.value.message
    assert "TOKENHUB_VAULT_PASSWORD" in info.value.message
    assert "not initialized" in info.value.message
    # the admin initializes the vault and stores the key: the next change is picked up
    admin_vault = Vault(sm, kdf=FAST_KDF, on_change=store_catalog.bump_version)
    await admin_vault.unlock(PW)
    await admin_vault.put_secret("vp", KEY)
    assert (await worker.adapter("vp")).id == "vp"  # refreshed on demand
    assert worker.registry.usable("vp") and worker.vault_keys == {"vp": KEY}
    await asyncio.sleep(0.05)
    await worker.aclose()


async def test_wrong_or_missing_password_keeps_vault_providers_keyless(
        sm: async_sessionmaker[AsyncSession]) -> None:
    admin_vault = Vault(sm, kdf=FAST_KDF, on_change=store_catalog.bump_version)
    await admin_vault.unlock(PW)
    await admin_vault.put_secret("vp", KEY)
    async with sm() as s, s.begin():
        await store_catalog.upsert_provider(s, provider=vaulted())
    wrong = LiveCatalog(settings(), BASE, sm, vault=Vault(sm), password="not the password")
    none = LiveCatalog(settings(), BASE, sm, vault=None)
    for live in (wrong, none):
        await live.reload()
        assert not live.registry.usable("vp") and live.vault_keys == {}
        await live.aclose()
    assert "password is wrong" in wrong.missing_key_reason()


async def test_poll_picks_up_a_change(sm: async_sessionmaker[AsyncSession]) -> None:
    live = LiveCatalog(settings(), BASE, sm, grace_s=0.01)
    await live.reload()
    live.start_polling(0.05)
    async with sm() as s, s.begin():
        await store_catalog.upsert_provider(s, provider=ProviderConfig(id="p2",
                                                                       type="simulated"))
    for _ in range(100):
        if live.catalog.provider("p2") is not None:
            break
        await asyncio.sleep(0.02)
    assert live.registry.usable("p2")
    await live.aclose()


def test_poll_interval_and_password_file(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(_env_file=None).catalog_poll_s == 1.0
    monkeypatch.setenv("TOKENHUB_CATALOG_POLL_S", "0")
    with pytest.raises(ConfigError, match="TOKENHUB_CATALOG_POLL_S"):
        load_settings(_env_file=None)
    monkeypatch.delenv("TOKENHUB_CATALOG_POLL_S")
    pw = tmp_path / "vault-pw"
    pw.write_text(f"  {PW}\n")
    monkeypatch.setenv("TOKENHUB_VAULT_PASSWORD_FILE", str(pw))
    assert load_settings(_env_file=None).read_vault_password() == PW
    monkeypatch.setenv("TOKENHUB_VAULT_PASSWORD", "")  # compose's `${VAR:-}`: unset
    assert load_settings(_env_file=None).read_vault_password() == PW
    monkeypatch.delenv("TOKENHUB_VAULT_PASSWORD")
    monkeypatch.setenv("TOKENHUB_VAULT_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="TOKENHUB_VAULT_PASSWORD_FILE"):
        load_settings(_env_file=None).read_vault_password()
