"""The gateway's Temporal path: start (or attach to) the run's workflow and wait for it.

Failures are sorted in two: Temporal being unreachable (connect refused, RPC
unavailable, start timeout) raises :class:`TemporalUnavailable`, on which the
dispatcher falls back to the local runtime; a run that failed on purpose comes
back as the TokenHubError it was in the workflow (same status, type, details, run
summary; decoded by engine/failures.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from engine import attributes
from engine.client import FAST_FAIL, connect, ensure_search_attributes
from engine.failures import run_error
from shared.config import Settings
from shared.orchestration.records import RunSummary
from shared.store.idempotency import conflict

log = logging.getLogger("tokenhub.temporal")

T = TypeVar("T", bound=BaseModel)

_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN}


class TemporalUnavailable(Exception):
    """Temporal could not be reached; the run did not start (or its result is unreachable)."""


class TemporalRunner:
    """Holds the gateway's Temporal client (connected lazily, reconnected after outages)."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()
        self.eager = False  # set when a worker runs in this process
        self.tagging = False  # search attributes registered (else runs go untagged)
        self._checked = False

    async def client(self) -> Client:
        """The client, connected on first use; registers (or checks) search attributes once."""
        if self._client is not None and self._checked:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect(self._settings, retry=FAST_FAIL)
                except (TimeoutError, RuntimeError, RPCError, OSError) as exc:
                    raise TemporalUnavailable(f"cannot connect to Temporal: {exc}") from None
            if not self._checked:
                try:
                    await ensure_search_attributes(self._client, self._settings.temporal_namespace)
                    self.tagging = True
                except RPCError as exc:
                    if exc.status in _UNAVAILABLE:
                        raise TemporalUnavailable(f"Temporal RPC failed: {exc.status.name}"
                                                  ) from None
                    log.warning("search attributes unavailable (%s): runs will not be tagged",
                                exc.status.name)
                self._checked = True
            return self._client

    async def probe(self, timeout_s: float = 1.0) -> bool:
        """Is Temporal reachable? Connect (if not yet) and ask the frontend's health check,
        bounded by ``timeout_s``. Never raises."""
        try:
            client = await asyncio.wait_for(self.client(), timeout_s)
            return await client.service_client.check_health(
                timeout=timedelta(seconds=timeout_s))
        except (TemporalUnavailable, TimeoutError, RPCError, RuntimeError, OSError):
            return False

    async def _start(self, client: Client, workflow: str, inp: BaseModel, *, request_id: str,
                     result_type: type[T], search_attributes: TypedSearchAttributes,
                     memo: dict[str, Any], reuse: WorkflowIDReusePolicy,
                     execution_timeout: timedelta = timedelta(hours=24)
                     ) -> WorkflowHandle[Any, T]:
        s = self._settings
        summary, details = attributes.describe(search_attributes, memo)
        try:
            return await asyncio.wait_for(client.start_workflow(
                workflow, inp, id=request_id, task_queue=s.temporal_task_queue,
                result_type=result_type, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=reuse,
                search_attributes=search_attributes if self.tagging else None, memo=memo,
                execution_timeout=execution_timeout, request_eager_start=self.eager,
                static_summary=summary, static_details=details,
            ), s.temporal_start_timeout_s)
        except TimeoutError:
            raise TemporalUnavailable("timed out starting the workflow") from None
        except RPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise TemporalUnavailable(f"Temporal RPC failed: {exc.status.name}") from None
            raise

    async def run(self, workflow: str, inp: BaseModel, *, request_id: str, result_type: type[T],
                  search_attributes: TypedSearchAttributes, memo: dict[str, Any],
                  fingerprint: str | None = None) -> T:
        """Start the run (or attach to the one with this id) and wait for its result.

        Attaching happens when a client repeats its request id: a running run is joined
        (``USE_EXISTING``), a closed one is answered from (``REJECT_DUPLICATE``). The
        repeat must carry the same body (the fingerprint in the run's memo), else 409; a
        closed run older than the idempotency window is replaced by a fresh one. A result
        from an attached run is marked ``replayed`` (not charged or counted twice).
        """
        client = await self.client()
        args: dict[str, Any] = {"request_id": request_id, "result_type": result_type,
                                "search_attributes": search_attributes, "memo": memo}
        attached = True
        try:
            handle: WorkflowHandle[Any, T] = await self._start(
                client, workflow, inp, reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE, **args)
            resp = getattr(handle, "_start_workflow_response", None)  # SDK: no public flag
            attached = resp is None or not bool(getattr(resp, "started", False))
        except WorkflowAlreadyStartedError:  # same request id, run already closed: reuse it
            handle = client.get_workflow_handle(request_id, result_type=result_type)
        if attached and fingerprint is not None:
            if await self._expired(handle, request_id, fingerprint):
                handle = await self._start(
                    client, workflow, inp, reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE, **args)
                attached = False
        try:
            out = await handle.result()
        except WorkflowFailureError as failure:
            err = run_error(failure)
            if attached and isinstance(err.summary, RunSummary):
                err.summary.replayed = True
            raise err from None
        except RPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise TemporalUnavailable(
                    f"lost Temporal while waiting: {exc.status.name}") from None
            raise
        summary = getattr(out, "summary", None)
        if attached and isinstance(summary, RunSummary):
            summary.replayed = True
        return out

    async def start(self, workflow: str, inp: BaseModel, *, request_id: str,
                    result_type: type[T], search_attributes: TypedSearchAttributes,
                    memo: dict[str, Any]) -> WorkflowHandle[Any, T]:
        """Start the run, or attach to the one with this request id (durable streams:
        api/stream_relay.py reads the result with :meth:`result` while it relays)."""
        client = await self.client()
        try:
            return await self._start(
                client, workflow, inp, request_id=request_id, result_type=result_type,
                search_attributes=search_attributes, memo=memo,
                reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:  # same request id, run already closed: reuse it
            return client.get_workflow_handle(request_id, result_type=result_type)

    async def submit(self, workflow: str, inp: BaseModel, *, request_id: str,
                     result_type: type[T], search_attributes: TypedSearchAttributes,
                     memo: dict[str, Any], execution_timeout: timedelta
                     ) -> tuple[WorkflowHandle[Any, T], bool]:
        """Start an async run without waiting for it: (handle, whether this call started
        it). A repeated request id gets the run that has it, running or closed."""
        client = await self.client()
        try:
            handle: WorkflowHandle[Any, T] = await self._start(
                client, workflow, inp, request_id=request_id, result_type=result_type,
                search_attributes=search_attributes, memo=memo,
                reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                execution_timeout=execution_timeout)
        except WorkflowAlreadyStartedError:
            return client.get_workflow_handle(request_id, result_type=result_type), False
        resp = getattr(handle, "_start_workflow_response", None)  # SDK: no public flag
        return handle, resp is not None and bool(getattr(resp, "started", False))

    @staticmethod
    async def result(handle: WorkflowHandle[Any, T]) -> T:
        """The run's result, or the TokenHubError it failed with."""
        try:
            return await handle.result()
        except WorkflowFailureError as failure:
            raise run_error(failure) from None
        except RPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise TemporalUnavailable(
                    f"lost Temporal while waiting: {exc.status.name}") from None
            raise

    async def _expired(self, handle: WorkflowHandle[Any, Any], request_id: str,
                       fingerprint: str) -> bool:
        """The attached run's memo must carry this body's fingerprint (else 409). True when
        the run closed and started longer ago than the idempotency window."""
        try:
            desc = await handle.describe()
            memo = await desc.memo()
        except RPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise TemporalUnavailable(f"Temporal RPC failed: {exc.status.name}") from None
            raise
        window = timedelta(seconds=self._settings.idempotency_window_s)
        if desc.close_time is not None and desc.start_time < datetime.now(UTC) - window:
            return True
        if memo.get("fingerprint") != fingerprint:
            raise conflict(request_id, "was already used for a different request")
        return False
