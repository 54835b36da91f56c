"""The credential vault: provider keys encrypted at rest (SPEC §6).

- Key: Argon2id(admin password, 16-byte random salt; t=3, m=64 MiB, p=4) → 32 bytes.
- Secrets: AES-256-GCM, a fresh 12-byte nonce each time, the provider id as associated
  data (a ciphertext copied to another provider's row fails authentication).
- Verifier: an AES-GCM encryption of a constant under the key, so a wrong password is
  rejected without decrypting any secret.
- Lock drops the key (zeroed bytearray); auto-lock after ``autolock_s`` idle seconds
  (clock injected); rotation re-encrypts everything in one transaction.
- ``on_change`` (optional) runs inside the transaction of every change of the stored
  secrets (initialize, put, delete, rotate): the gateway bumps the catalog version there,
  so other processes (workers, gateway processes) reload their provider keys.
- ``unlock(password, initialize=False)`` only unlocks a vault that exists: a worker holding
  the password must never create the vault (raises :class:`VaultUninitialized`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import (
    BadRequest,
    Conflict,
    NotFound,
    TokenHubError,
    Unauthorized,
    VaultLocked,
)
from shared.security.tables import VaultMetaRow, VaultSecretRow

KDF_DEFAULTS: dict[str, int] = {"t": 3, "m": 65536, "p": 4}  # m in KiB = 64 MiB
_VERIFIER_PLAINTEXT = b"tokenhub-vault-verifier-v1"
_VERIFIER_AD = b"tokenhub:verifier"
VaultState = Literal["uninitialized", "locked", "unlocked"]
OnChange = Callable[[AsyncSession], Awaitable[None]]


class VaultError(TokenHubError):
    """A ciphertext failed authentication (tampered, or bound to another provider)."""

    status_code = 500
    error_type = "vault_integrity_error"


class VaultUninitialized(VaultLocked):
    """``unlock(..., initialize=False)`` on a vault nobody has initialized yet."""


def derive_key(password: str, salt: bytes, kdf: dict[str, int]) -> bytearray:
    raw = hash_secret_raw(password.encode(), salt, time_cost=kdf["t"], memory_cost=kdf["m"],
                          parallelism=kdf["p"], hash_len=32, type=Type.ID)
    return bytearray(raw)


def _seal(key: bytearray, plaintext: bytes, ad: bytes) -> tuple[bytes, bytes]:
    nonce = os.urandom(12)
    return nonce, AESGCM(bytes(key)).encrypt(nonce, plaintext, ad)


def _open(key: bytearray, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    return AESGCM(bytes(key)).decrypt(nonce, ciphertext, ad)


def _ad(provider_id: str) -> bytes:
    return f"tokenhub:provider:{provider_id}".encode()


class Vault:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 autolock_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 kdf: dict[str, int] | None = None, on_change: OnChange | None = None) -> None:
        self._sm = sessionmaker
        self._on_change = on_change
        self._autolock = autolock_s
        self._clock = clock
        self._kdf = dict(kdf or KDF_DEFAULTS)
        self._key: bytearray | None = None
        self._last_used = 0.0
        self._initialized: bool | None = None

    # -- state ---------------------------------------------------------------------------
    async def state(self) -> VaultState:
        self.check_autolock()
        if self._key is not None:
            return "unlocked"
        return "locked" if await self._meta() is not None else "uninitialized"

    @property
    def is_unlocked(self) -> bool:
        self.check_autolock()
        return self._key is not None

    def check_autolock(self) -> None:
        if (self._key is not None and self._autolock is not None
                and self._clock() - self._last_used >= self._autolock):
            self.lock()

    def lock(self) -> None:
        """Drop the key material (zeroed in place)."""
        if self._key is not None:
            for i in range(len(self._key)):
                self._key[i] = 0
        self._key = None

    def _touch(self) -> bytearray:
        self.check_autolock()
        if self._key is None:
            raise VaultLocked("the vault is locked: unlock it with the admin password")
        self._last_used = self._clock()
        return self._key

    async def _meta(self, session: AsyncSession | None = None) -> VaultMetaRow | None:
        if session is not None:
            return await session.get(VaultMetaRow, 1)
        async with self._sm() as s:
            return await s.get(VaultMetaRow, 1)

    @asynccontextmanager
    async def _changing(self, session: AsyncSession | None = None
                        ) -> AsyncIterator[AsyncSession]:
        """A transaction changing stored secrets (the caller's, when ``session`` is given),
        with ``on_change`` run inside it."""
        if session is not None:
            yield session
            if self._on_change is not None:
                await self._on_change(session)
            return
        async with self._sm() as s, s.begin():
            yield s
            if self._on_change is not None:
                await self._on_change(s)

    # -- password ------------------------------------------------------------------------
    async def initialize(self, password: str) -> None:
        """Create the vault with ``password``. Two first unlocks racing (two requests, two
        processes): one inserts the vault row; the other finds it and unlocks with it
        (or gets 401 if its password differs), never a uniqueness error."""
        if len(password) < 8:
            raise BadRequest("password: the vault password must have at least 8 characters "
                             "(the first unlock creates the vault with it)")
        if await self._meta() is not None:
            raise Conflict("the vault is already initialized")
        salt = os.urandom(16)
        key = await asyncio.to_thread(derive_key, password, salt, self._kdf)
        nonce, verifier = _seal(key, _VERIFIER_PLAINTEXT, _VERIFIER_AD)
        try:
            async with self._changing() as s:
                s.add(VaultMetaRow(id=1, salt=salt, kdf=self._kdf, verifier_nonce=nonce,
                                   verifier=verifier))
        except IntegrityError:
            meta = await self._meta()
            if meta is None:
                raise
            key = await self._check(password, meta)  # the winner's vault, if ours opens it
        self._key, self._last_used = key, self._clock()

    async def _check(self, password: str, meta: VaultMetaRow) -> bytearray:
        key = await asyncio.to_thread(derive_key, password, meta.salt, dict(meta.kdf))
        try:
            _open(key, meta.verifier_nonce, meta.verifier, _VERIFIER_AD)
        except InvalidTag:
            raise Unauthorized("wrong vault password") from None
        return key

    async def unlock(self, password: str, *, initialize: bool = True) -> None:
        """Unlock with the admin password; a vault not yet initialized is initialized with
        it (the admin API), or, with ``initialize=False``, left alone: VaultUninitialized."""
        meta = await self._meta()
        if meta is None:
            if not initialize:
                raise VaultUninitialized("the vault is not initialized yet")
            try:
                await self.initialize(password)
                return
            except Conflict:  # another unlock initialized it meanwhile: open that one
                meta = await self._meta()
                if meta is None:
                    raise
        key = await self._check(password, meta)
        self.lock()
        self._key, self._last_used = key, self._clock()

    async def rotate(self, old_password: str, new_password: str,
                     _fail_after: int | None = None) -> None:
        """Re-encrypt every secret and the verifier under a new key, in one transaction
        (``_fail_after`` injects a crash for tests: the old password must stay valid)."""
        if len(new_password) < 8:
            raise BadRequest("new_password: the vault password must have at least 8 "
                             "characters")
        async with self._changing() as s:
            meta = await self._meta(s)
            if meta is None:
                raise NotFound("the vault is not initialized")
            old = await self._check(old_password, meta)
            salt = os.urandom(16)
            new = await asyncio.to_thread(derive_key, new_password, salt, self._kdf)
            rows = (await s.scalars(select(VaultSecretRow))).all()
            for i, row in enumerate(rows):
                if _fail_after is not None and i >= _fail_after:
                    raise RuntimeError("injected crash during rotation")
                plain = self._decrypt_row(old, row)
                row.nonce, row.ciphertext = _seal(new, plain, _ad(row.provider_id))
            meta.salt, meta.kdf = salt, self._kdf
            meta.verifier_nonce, meta.verifier = _seal(new, _VERIFIER_PLAINTEXT, _VERIFIER_AD)
        self.lock()
        self._key, self._last_used = new, self._clock()

    # -- secrets -------------------------------------------------------------------------
    def _decrypt_row(self, key: bytearray, row: VaultSecretRow) -> bytes:
        try:
            return _open(key, row.nonce, row.ciphertext, _ad(row.provider_id))
        except InvalidTag:
            raise VaultError(f"secret of provider {row.provider_id!r} failed "
                             "authentication (tampered or moved)") from None

    async def put_secret(self, provider_id: str, plaintext: str, *,
                         session: AsyncSession | None = None) -> None:
        """Store a provider's key (in ``session``'s transaction when given)."""
        key = self._touch()
        nonce, ct = _seal(key, plaintext.encode(), _ad(provider_id))
        async with self._changing(session) as s:
            row = await s.get(VaultSecretRow, provider_id)
            if row is None:
                s.add(VaultSecretRow(provider_id=provider_id, nonce=nonce, ciphertext=ct))
            else:
                row.nonce, row.ciphertext = nonce, ct

    async def get_secret(self, provider_id: str) -> str:
        key = self._touch()
        async with self._sm() as s:
            row = await s.get(VaultSecretRow, provider_id)
        if row is None:
            raise NotFound(f"no secret stored for provider {provider_id!r}")
        return self._decrypt_row(key, row).decode()

    async def has_secret(self, provider_id: str) -> bool:
        async with self._sm() as s:
            return await s.get(VaultSecretRow, provider_id) is not None

    async def delete_secret(self, provider_id: str, *,
                            session: AsyncSession | None = None) -> None:
        async with self._changing(session) as s:
            await s.execute(delete(VaultSecretRow).where(
                VaultSecretRow.provider_id == provider_id))

    def describe(self) -> dict[str, Any]:
        return {"unlocked": self._key is not None, "autolock_s": self._autolock}
