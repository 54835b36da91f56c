"""Admin: vault, client API keys, audit log (all behind the admin token, all audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from api.catalog import reload_catalog
from api.deps import StateDep
from api.responses import JSONResponse
from api.schemas import AuditPage, IssuedKey, KeyInfo, KeyList, VaultState
from api.security import AdminDep, request_ip, security_of
from shared.security.apikeys import SCOPES

router = APIRouter(prefix="/admin/v1", tags=["admin"])


class PasswordBody(BaseModel):
    password: str = Field(min_length=1, max_length=1024, description=(
        "the admin password; the first unlock creates the vault with it (8 characters "
        "or more)"))


class RotateBody(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class KeyBody(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=lambda: ["chat", "models"], min_length=1)
    expires_at: datetime | None = Field(default=None, description=(
        "when the key stops working; without an offset, UTC"))
    monthly_budget_usd: float | None = Field(default=None, ge=0)

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in SCOPES]
        if bad:
            raise ValueError(f"unknown scope(s) {bad}: allowed are {', '.join(SCOPES)}")
        return v

    @field_validator("expires_at")
    @classmethod
    def _in_utc(cls, v: datetime | None) -> datetime | None:
        """Stored in UTC: a time whose UTC form is outside years 1-9999 is refused here."""
        if v is None:
            return None
        try:
            return v.astimezone(UTC) if v.tzinfo is not None else v.replace(tzinfo=UTC)
        except OverflowError:
            raise ValueError("date out of range once converted to UTC") from None


async def audit(request: Request, action: str, target: str | None, outcome: str = "ok",
                detail: dict[str, Any] | None = None) -> None:
    await security_of(request).audit.record(
        actor=getattr(request.state, "actor", "admin"), action=action, target=target,
        client_ip=request_ip(request), outcome=outcome, detail=detail)


async def audited(request: Request, action: str, target: str | None, op: Any) -> Any:
    """Run ``op`` and write the audit entry with its outcome (failures too)."""
    try:
        result = await op
    except Exception as exc:
        await audit(request, action, target, outcome=f"error:{type(exc).__name__}")
        raise
    await audit(request, action, target)
    return result


@router.get("/vault", response_model=VaultState)
async def vault_state(request: Request, _: AdminDep) -> Response:
    return JSONResponse({"state": await security_of(request).vault.state()})


@router.post("/vault/unlock", response_model=VaultState)
async def vault_unlock(body: PasswordBody, request: Request, state: StateDep,
                       _: AdminDep) -> Response:
    sec = security_of(request)
    await audited(request, "vault.unlock", "vault", sec.vault.unlock(body.password))
    sec.secrets.add(body.password)
    await reload_catalog(state)
    state.metrics.vault_unlocked.set(1)
    return JSONResponse({"state": await sec.vault.state()})


@router.post("/vault/lock", response_model=VaultState)
async def vault_lock(request: Request, state: StateDep, _: AdminDep) -> Response:
    sec = security_of(request)
    sec.vault.lock()
    await audit(request, "vault.lock", "vault")
    await reload_catalog(state)
    state.metrics.vault_unlocked.set(0)
    return JSONResponse({"state": await sec.vault.state()})


@router.post("/vault/rotate", response_model=VaultState)
async def vault_rotate(body: RotateBody, request: Request, _: AdminDep) -> Response:
    sec = security_of(request)
    await audited(request, "vault.rotate", "vault",
                  sec.vault.rotate(body.old_password, body.new_password))
    sec.secrets.add(body.new_password)
    return JSONResponse({"state": await sec.vault.state()})


@router.post("/apikeys", status_code=201, response_model=IssuedKey)
async def issue_key(body: KeyBody, request: Request, _: AdminDep) -> Response:
    sec = security_of(request)
    token, info = await audited(request, "apikey.issue", body.name, sec.apikeys.issue(
        name=body.name, scopes=body.scopes, expires_at=body.expires_at,
        monthly_budget_usd=body.monthly_budget_usd))
    sec.secrets.add(token)
    return JSONResponse({"token": token, "key": info.model_dump(mode="json"),
                         "note": "the token is shown once; store it now"}, status_code=201)


@router.get("/apikeys", response_model=KeyList)
async def list_keys(request: Request, _: AdminDep) -> Response:
    keys = await security_of(request).apikeys.list()
    return JSONResponse({"data": [k.model_dump(mode="json") for k in keys], "scopes": SCOPES})


@router.post("/apikeys/{key_id}/rotate", response_model=IssuedKey)
async def rotate_key(key_id: str, request: Request, _: AdminDep) -> Response:
    sec = security_of(request)
    token, info = await audited(request, "apikey.rotate", key_id, sec.apikeys.rotate(key_id))
    sec.secrets.add(token)
    return JSONResponse({"token": token, "key": info.model_dump(mode="json")})


@router.delete("/apikeys/{key_id}", response_model=KeyInfo)
async def revoke_key(key_id: str, request: Request, _: AdminDep) -> Response:
    sec = security_of(request)
    info = await audited(request, "apikey.revoke", key_id, sec.apikeys.revoke(key_id))
    return JSONResponse({"key": info.model_dump(mode="json")})


@router.get("/audit", response_model=AuditPage)
async def audit_log(request: Request, _: AdminDep, limit: int = Query(50, ge=1, le=500),
                    cursor: int | None = Query(None, ge=1, le=2**63 - 1)) -> Response:
    entries, nxt = await security_of(request).audit.list(limit=limit, before_id=cursor)
    return JSONResponse({"data": [e.model_dump(mode="json") for e in entries],
                         "next_cursor": nxt})
