"""Security wiring for the gateway: admin auth, client API keys, rate limits, vault.

Dependencies (``AdminDep``, ``client(scope)``) run per route; the services live on
``SecurityState``, built in the lifespan.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel

from api.state import AppState
from shared.config import Settings
from shared.errors import Forbidden, RateLimited, Unauthorized
from shared.security.apikeys import ApiKeyService, Principal
from shared.security.audit import AuditLog
from shared.security.ratelimit import TokenBuckets, client_ip, parse_networks
from shared.security.redact import SecretRegistry
from shared.security.vault import Vault
from shared.store import catalog as store_catalog

log = logging.getLogger("tokenhub.security")


def _persisted_secret(path: Path, *, announce: str | None = None) -> str:
    """Read a generated secret, or create it (0600, exclusive: one winner across workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    if announce:  # printed once, to the terminal, never logged
        print(announce.format(value=value, path=path), file=sys.stderr, flush=True)
    return value


@dataclass
class SecurityState:
    admin_token: str
    apikeys: ApiKeyService
    vault: Vault
    audit: AuditLog
    secrets: SecretRegistry
    ip_limits: TokenBuckets
    key_limits: TokenBuckets
    admin_limits: TokenBuckets
    trusted: list[object] = field(default_factory=list)


def build_security(state: AppState, secrets_registry: SecretRegistry) -> SecurityState:
    s: Settings = state.settings
    if s.admin_token is not None:
        admin = s.admin_token.get_secret_value()
    else:
        admin = _persisted_secret(
            s.data_dir / "admin_token",
            announce="TokenHub admin token (shown once; stored in {path}): {value}")
    pepper = (s.api_key_pepper.get_secret_value() if s.api_key_pepper is not None
              else _persisted_secret(s.data_dir / "api_key_pepper"))
    secrets_registry.add(admin)
    secrets_registry.add(pepper)  # the generated one too: redaction knows every secret
    autolock = s.vault_autolock_minutes * 60 if s.vault_autolock_minutes else None
    share = 1 / s.gateway_processes  # buckets are per process (README: budgets and limits)
    return SecurityState(
        admin_token=admin, apikeys=ApiKeyService(state.sessionmaker, pepper=pepper.encode(),
                                       reservation_ttl_s=s.budget_reservation_ttl_s),
        vault=Vault(state.sessionmaker, autolock_s=autolock,
                    on_change=store_catalog.bump_version),  # other processes reload keys
        audit=AuditLog(state.sessionmaker),
        secrets=secrets_registry,
        ip_limits=TokenBuckets(rate=s.rate_limit_rps * share,
                               burst=max(1.0, s.rate_limit_burst * share), scope="client"),
        key_limits=TokenBuckets(rate=s.rate_limit_rps * share,
                                burst=max(1.0, s.rate_limit_burst * share), scope="API key"),
        admin_limits=TokenBuckets(rate=s.admin_rate_limit_rps * share,
                                  burst=max(1.0, s.admin_rate_limit_burst * share),
                                  scope="admin client"),
        trusted=list(parse_networks(s.trusted_proxies)))


def security_of(request: Request) -> SecurityState:
    sec: SecurityState = request.app.state.tokenhub.security
    return sec


def request_ip(request: Request) -> str:
    sec = security_of(request)
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), sec.trusted)  # type: ignore[arg-type]


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


async def require_admin(request: Request) -> str:
    """Bearer TOKENHUB_ADMIN_TOKEN, compared in constant time; returns the actor."""
    sec = security_of(request)
    ip = request_ip(request)
    try:
        sec.admin_limits.check(ip)
    except RateLimited:
        request.app.state.tokenhub.metrics.rate_limited.labels("admin").inc()
        raise
    token = bearer(request) or ""
    if not hmac.compare_digest(token.encode(), sec.admin_token.encode()):
        raise Unauthorized("admin token required: Authorization: Bearer $TOKENHUB_ADMIN_TOKEN")
    request.state.actor = "admin"
    return "admin"


AdminDep = Annotated[str, Depends(require_admin)]


async def authorize(request: Request, scope: str | tuple[str, ...]) -> Principal | None:
    """Per-IP limit, then (when keys are required, or one is given) key auth, scope (any
    one of a tuple) and per-key limit. Returns the principal, or None when keys are
    optional and absent."""
    sec = security_of(request)
    state: AppState = request.app.state.tokenhub.state
    try:
        sec.ip_limits.check(request_ip(request))
    except RateLimited:
        state.metrics.rate_limited.labels("ip").inc()
        raise
    token = bearer(request)
    if not state.settings.api_keys_required and not (token or "").startswith("thk_"):
        return None  # keys optional: a foreign token (e.g. an SDK placeholder) is ignored
    principal = await sec.apikeys.authenticate(token)
    if isinstance(scope, str):
        sec.apikeys.require_scope(principal, scope)
    elif not any(s in principal.scopes for s in (*scope, "admin")):
        raise Forbidden(f"API key {principal.key_id} lacks a scope among {', '.join(scope)}")
    try:
        sec.key_limits.check(principal.key_id)
    except RateLimited:
        state.metrics.rate_limited.labels("key").inc()
        raise
    request.state.api_key_id = principal.key_id
    return principal


def stored_body(request: Request, body: BaseModel) -> str | None:
    """The request body for the request log (TOKENHUB_LOG_BODIES), secrets masked."""
    state: AppState = request.app.state.tokenhub.state
    if not state.settings.log_bodies:
        return None
    return security_of(request).secrets.redact(body.model_dump_json())
