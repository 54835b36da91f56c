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
from datetime import timedelta
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

from engine.client import FAST_FAIL, connect, ensure_search_attributes
from engine.failures import run_error
from shared.config import Settings

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

    async def run(self, workflow: str, inp: BaseModel, *, request_id: str, result_type: type[T],
                  search_attributes: TypedSearchAttributes, memo: dict[str, Any]) -> T:
        handle = await self.start(workflow, inp, request_id=request_id, result_type=result_type,
                                  search_attributes=search_attributes, memo=memo)
        return await self.result(handle)

    async def start(self, workflow: str, inp: BaseModel, *, request_id: str,
                    result_type: type[T], search_attributes: TypedSearchAttributes,
                    memo: dict[str, Any]) -> WorkflowHandle[Any, T]:
        """Start the run (or attach to the one with this request id)."""
        client = await self.client()
        s = self._settings
        try:
            handle: WorkflowHandle[Any, T] = await asyncio.wait_for(client.start_workflow(
                workflow, inp, id=request_id, task_queue=s.temporal_task_queue,
                result_type=result_type, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search_attributes if self.tagging else None, memo=memo,
                execution_timeout=timedelta(hours=24), request_eager_start=self.eager,
            ), s.temporal_start_timeout_s)
        except WorkflowAlreadyStartedError:  # same request id, run already closed: reuse it
            handle = client.get_workflow_handle(request_id, result_type=result_type)
        except TimeoutError:
            raise TemporalUnavailable("timed out starting the workflow") from None
        except RPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise TemporalUnavailable(f"Temporal RPC failed: {exc.status.name}") from None
            raise
        return handle

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
