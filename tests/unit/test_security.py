"""Vault, API keys, rate limits, redaction (issue: security)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import BudgetExceeded, Forbidden, RateLimited, Unauthorized, VaultLocked
from shared.security.apikeys import ApiKeyService
from shared.security.ratelimit import TokenBuckets, client_ip, parse_networks
from shared.security.redact import RedactingFilter, SecretRegistry, redact_headers
from shared.security.tables import VaultSecretRow
from shared.security.vault import KDF_DEFAULTS, Vault, VaultError
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate

FAST_KDF = {"t": 1, "m": 1024, "p": 1}
SECRET = "sk-live-provider-secret-0123456789"


@pytest.fixture
async def sm(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sec.db'}"
    await migrate(url)
    engine = create_engine(url)
    yield create_sessionmaker(engine)
    await engine.dispose()


def test_production_kdf_parameters() -> None:
    assert KDF_DEFAULTS == {"t": 3, "m": 65536, "p": 4}  # Argon2id, 64 MiB


async def test_vault_round_trip_and_wrong_password(sm: async_sessionmaker[AsyncSession],
                                                   tmp_path: Path) -> None:
    vault = Vault(sm, kdf=FAST_KDF)
    assert await vault.state() == "uninitialized"
    await vault.unlock("correct horse battery")
    await vault.put_secret("openai", SECRET)
    assert await vault.get_secret("openai") == SECRET
    vault.lock()
    assert await vault.state() == "locked"
    with pytest.raises(VaultLocked):
        await vault.get_secret("openai")
    with pytest.raises(Unauthorized, match="wrong vault password"):
        await vault.unlock("wrong password!")
    await vault.unlock("correct horse battery")
    assert await vault.get_secret("openai") == SECRET
    raw = await asyncio.to_thread(
        lambda: b"".join(p.read_bytes() for p in tmp_path.glob("sec.db*")))
    assert SECRET.encode() not in raw  # never stored in plaintext


async def test_tampered_or_moved_ciphertext_fails(sm: async_sessionmaker[AsyncSession]) -> None:
    vault = Vault(sm, kdf=FAST_KDF)
    await vault.unlock("correct horse battery")
    await vault.put_secret("a", SECRET)
    await vault.put_secret("b", "another-secret-value")
    async with sm() as s, s.begin():
        a = await s.get(VaultSecretRow, "a")
        b = await s.get(VaultSecretRow, "b")
        assert a is not None and b is not None
        b.nonce, b.ciphertext = a.nonce, a.ciphertext  # move a's secret to b
        a.ciphertext = bytes([a.ciphertext[0] ^ 1]) + a.ciphertext[1:]  # flip a bit
    for pid in ("a", "b"):
        with pytest.raises(VaultError, match="failed authentication"):
            await vault.get_secret(pid)


async def test_rotate_and_crash_during_rotation(sm: async_sessionmaker[AsyncSession]) -> None:
    vault = Vault(sm, kdf=FAST_KDF)
    await vault.unlock("old password 1")
    for i in range(3):
        await vault.put_secret(f"p{i}", f"secret-number-{i}")
    with pytest.raises(RuntimeError, match="injected"):
        await vault.rotate("old password 1", "new password 2", _fail_after=2)
    vault.lock()
    await vault.unlock("old password 1")  # the crash left the old password valid
    assert await vault.get_secret("p2") == "secret-number-2"
    await vault.rotate("old password 1", "new password 2")
    vault.lock()
    with pytest.raises(Unauthorized):
        await vault.unlock("old password 1")
    await vault.unlock("new password 2")
    assert [await vault.get_secret(f"p{i}") for i in range(3)] == [
        f"secret-number-{i}" for i in range(3)]


async def test_autolock_after_idle(sm: async_sessionmaker[AsyncSession]) -> None:
    now = [100.0]
    vault = Vault(sm, kdf=FAST_KDF, autolock_s=60, clock=lambda: now[0])
    await vault.unlock("correct horse battery")
    await vault.put_secret("x", SECRET)
    now[0] += 59
    assert await vault.get_secret("x") == SECRET  # use resets the idle timer
    now[0] += 61
    assert not vault.is_unlocked
    with pytest.raises(VaultLocked):
        await vault.get_secret("x")


async def test_api_keys_lifecycle(sm: async_sessionmaker[AsyncSession]) -> None:
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    svc = ApiKeyService(sm, pepper=b"pepper" * 6, clock=lambda: now[0])
    token, info = await svc.issue(name="ci", scopes=["chat"],
                                  expires_at=now[0] + timedelta(days=1))
    assert token.startswith("thk_") and info.prefix == token[:10]
    principal = await svc.authenticate(token)
    svc.require_scope(principal, "chat")
    with pytest.raises(Forbidden, match="'plan'"):
        svc.require_scope(principal, "plan")
    assert token not in str([k.model_dump() for k in await svc.list()])
    new_token, _ = await svc.rotate(info.id)
    with pytest.raises(Unauthorized):
        await svc.authenticate(token)  # the old token stops at once
    assert (await svc.authenticate(new_token)).key_id == info.id
    await svc.revoke(info.id)
    with pytest.raises(Unauthorized, match="revoked"):
        await svc.authenticate(new_token)
    other, _ = await svc.issue(name="x", scopes=["chat"], expires_at=now[0])
    with pytest.raises(Unauthorized, match="expired"):
        await svc.authenticate(other)
    with pytest.raises(Unauthorized):
        await svc.authenticate("thk_not-a-real-key")


async def test_budget_holds_under_concurrency(sm: async_sessionmaker[AsyncSession]) -> None:
    svc = ApiKeyService(sm, pepper=b"p" * 32)
    token, _ = await svc.issue(name="b", scopes=["chat"], monthly_budget_usd=0.05)
    principal = await svc.authenticate(token)

    async def request() -> bool:
        try:
            res = await svc.reserve(principal, 0.01)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0.01)  # the provider call
        await svc.settle(res, 0.01)
        return True

    results = await asyncio.gather(*(request() for _ in range(20)))
    assert sum(results) == 5  # a budget for 5: the rest refused, none overspent
    with pytest.raises(BudgetExceeded, match=r"spent \$0.05,"):
        await svc.reserve(principal, 0.01)


def test_token_buckets() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=10, burst=20, clock=lambda: now[0])
    for _ in range(20):
        buckets.check("a")
    with pytest.raises(RateLimited) as exc:
        buckets.check("a")
    assert 0 < exc.value.retry_after <= 0.1 and exc.value.headers()["Retry-After"] == "1"
    buckets.check("b")  # another client is unaffected
    now[0] += 0.1
    buckets.check("a")  # refilled


def test_client_ip_honours_xff_only_from_trusted_proxies() -> None:
    trusted = parse_networks(["10.0.0.0/8"])
    assert client_ip("203.0.113.9", "1.2.3.4", trusted) == "203.0.113.9"
    assert client_ip("10.0.0.5", "1.2.3.4, 10.0.0.7", trusted) == "1.2.3.4"
    assert client_ip("10.0.0.5", "6.6.6.6, 1.2.3.4", trusted) == "1.2.3.4"


def test_redaction(caplog: pytest.LogCaptureFixture) -> None:
    reg = SecretRegistry()
    reg.add("admin-token-xyz-123")
    logger = logging.getLogger("tokenhub.test.redact")
    logger.addFilter(RedactingFilter(reg))
    with caplog.at_level(logging.INFO, logger="tokenhub.test.redact"):
        logger.info("auth %s key %s admin %s", "Bearer thk_abcdefghijkl",
                    "sk-ant-api03-secretvalue", "admin-token-xyz-123")
    text = caplog.text
    assert "thk_abcdefghijkl" not in text and "sk-ant-api03" not in text
    assert "admin-token-xyz-123" not in text and "***" in text
    assert redact_headers({"Authorization": "Bearer x", "Accept": "json"}) == {
        "Authorization": "***", "Accept": "json"}


def test_budgets_print_with_the_digits_they_need() -> None:
    from shared.security.apikeys import usd

    assert [usd(x) for x in (2.5, 12, 0.00042, 3e-8, 0, 1e-10)] == [
        "$2.50", "$12.00", "$0.00042", "$0.00000003", "$0.00", "<$0.00000001"]
