"""Idempotency of client request ids on the in-process path, across gateway processes.

A client that sends ``X-Request-ID`` may send the same request again (a retry after a
timeout). On the workflow path Temporal deduplicates (workflow id = request id, the body's
fingerprint in the memo); on the in-process path this table does, so any gateway process
of ``serve --workers N`` answers a repeat with the first run's result:

- the first request **claims** the id (an INSERT: the primary key makes one winner among
  concurrent processes), runs, and stores its outcome (or its error) as JSON;
- a repeat with the **same fingerprint** gets the stored result; while the first is still
  running it waits for it (polling the row), and never calls a provider itself;
- a repeat with a **different fingerprint** is a 409 ``conflict`` naming the id;
- a **stream** is not replayed: a repeat of a streamed request is a 409;
- ids older than the window (``TOKENHUB_IDEMPOTENCY_WINDOW_S``, 24 h) are fresh again, and
  a claim left ``running`` by a process that died is taken over after ``stale_after_s``.

Fingerprint = SHA-256 of the route, the API key id and the canonical (key-sorted) body.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import Conflict, TokenHubError, rebuild_error
from shared.store.tables import IdempotencyRow

Out = TypeVar("Out", bound=BaseModel)
Replayed = Callable[[Out], None]


def fingerprint(*, route: str, api_key_id: str | None, body: BaseModel) -> str:
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    h = hashlib.sha256(f"{route}\0{api_key_id or ''}\0".encode())
    h.update(canonical)
    return h.hexdigest()


def conflict(request_id: str, why: str) -> Conflict:
    return Conflict(f"request id {request_id!r} {why}", details={"request_id": request_id})


@dataclass(frozen=True)
class _Seen:
    fingerprint: str
    kind: str
    state: str
    result: str | None
    created_at: datetime
    updated_at: datetime


class IdempotencyStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, window_s: float,
                 stale_after_s: float = 600.0, wait_s: float = 120.0,
                 poll_s: float = 0.05) -> None:
        self._sm = sessionmaker
        self._window = timedelta(seconds=window_s)
        self._stale = timedelta(seconds=stale_after_s)
        self._wait_s, self._poll_s = wait_s, poll_s

    async def run(self, *, request_id: str, fp: str, kind: str, result_type: type[Out],
                  run: Callable[[], Awaitable[Out]],
                  replayed: Callable[[Out | TokenHubError], None]) -> Out:
        """Run once per (request id, window): the first caller runs ``run``, repeats get
        its result (``replayed`` marks it, so it is not charged or counted twice)."""
        deadline = asyncio.get_running_loop().time() + self._wait_s
        while True:
            seen = await self._claim(request_id, fp, kind)
            if seen is None:
                break
            self._check(request_id, fp, kind, seen)
            if seen.state != "running":
                return self._replay(request_id, seen, result_type, replayed)
            if asyncio.get_running_loop().time() > deadline:
                raise conflict(request_id, "is still running: retry later")
            await asyncio.sleep(self._poll_s)
        try:
            out = await run()
        except TokenHubError as err:
            await self._finish(request_id, "error", orjson.dumps({
                "type": err.error_type, "message": err.message, "details": err.details,
                "summary": _dump(err.summary)}).decode())
            raise
        except BaseException:
            await asyncio.shield(self.release(request_id))  # may run again
            raise
        await self._finish(request_id, "ok", out.model_dump_json())
        return out

    async def claim_stream(self, *, request_id: str, fp: str) -> None:
        """A stream is not replayed: the first claims the id, any repeat is a 409."""
        seen = await self._claim(request_id, fp, "stream")
        if seen is None:
            return
        self._check(request_id, fp, "stream", seen)
        raise conflict(request_id, "was already used for a streamed request "
                                   "(streams are not replayed)")

    async def finish_stream(self, request_id: str) -> None:
        await self._finish(request_id, "streamed", None)

    # -- rows ------------------------------------------------------------------------------
    async def _claim(self, request_id: str, fp: str, kind: str) -> _Seen | None:
        """None when this caller now owns the id; else the row as it stands."""
        now = datetime.now(UTC)
        try:
            async with self._sm() as s, s.begin():
                s.add(IdempotencyRow(request_id=request_id, fingerprint=fp, kind=kind,
                                     state="running", created_at=now, updated_at=now))
            return None
        except IntegrityError:
            pass
        async with self._sm() as s:
            row = await s.get(IdempotencyRow, request_id)
            if row is None:  # released meanwhile: try again
                return await self._claim(request_id, fp, kind)
            seen = _Seen(row.fingerprint, row.kind, row.state, row.result, row.created_at,
                         row.updated_at)
        expired = seen.created_at < now - self._window
        abandoned = seen.state == "running" and seen.updated_at < now - self._stale
        if expired or abandoned:  # take it over (one winner: the row must be unchanged)
            async with self._sm() as s, s.begin():
                res = await s.execute(
                    update(IdempotencyRow)
                    .where(IdempotencyRow.request_id == request_id,
                           IdempotencyRow.updated_at == seen.updated_at)
                    .values(fingerprint=fp, kind=kind, state="running", result=None,
                            created_at=now, updated_at=now))
            if getattr(res, "rowcount", 0) == 1:
                return None
            return await self._claim(request_id, fp, kind)
        return seen

    @staticmethod
    def _check(request_id: str, fp: str, kind: str, seen: _Seen) -> None:
        if seen.fingerprint != fp:
            raise conflict(request_id, "was already used for a different request")
        if seen.kind == "stream" and kind != "stream":
            raise conflict(request_id, "was already used for a streamed request "
                                       "(streams are not replayed)")

    async def _finish(self, request_id: str, state: str, result: str | None) -> None:
        async with self._sm() as s, s.begin():
            await s.execute(update(IdempotencyRow)
                            .where(IdempotencyRow.request_id == request_id)
                            .values(state=state, result=result,
                                    updated_at=datetime.now(UTC)))

    async def release(self, request_id: str) -> None:
        """Forget a running claim (its run never started or died): a repeat runs again."""
        async with self._sm() as s, s.begin():
            await s.execute(delete(IdempotencyRow).where(
                IdempotencyRow.request_id == request_id, IdempotencyRow.state == "running"))

    @staticmethod
    def _replay(request_id: str, seen: _Seen, result_type: type[Out],
                replayed: Callable[[Out | TokenHubError], None]) -> Out:
        if seen.state == "ok" and seen.result is not None:
            out = result_type.model_validate_json(seen.result)
            replayed(out)
            return out
        if seen.state == "error" and seen.result is not None:
            data: dict[str, Any] = orjson.loads(seen.result)
            err = rebuild_error(data["type"], data["message"], data.get("details"))
            if err is not None:
                err.summary = data.get("summary")
                replayed(err)
                raise err
        raise conflict(request_id, "was already used for a streamed request "
                                   "(streams are not replayed)")


def _dump(summary: Any) -> Any:
    return summary.model_dump(mode="json") if isinstance(summary, BaseModel) else None
