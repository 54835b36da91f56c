"""OpenAI-compatible files and batches: upload a JSONL file, create a batch from it, read
its progress and its output and error files.

Every line is parsed, validated and routed when the batch is created (in the gateway,
where routing lives), and stored as an item with its prepared run; a line that is not
JSON, names an unknown ``url`` or carries an invalid body is an item failed at once, with
the error shape in the error file. The batch runs as one ``BatchWorkflow``
(shared/orchestration/batch.py); with Temporal down, creating one is a 503 and nothing is
left behind. A file that cannot be a batch at all (empty, not UTF-8, not JSONL, over
``TOKENHUB_MAX_BATCH_FILE_BYTES`` or ``TOKENHUB_MAX_BATCH_ITEMS``) is a 400 at upload,
naming the line or the limit.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from api.openai_wire import CompletionsBody
from api.runs import NEEDS_ENGINE, AsyncRuns
from api.service import Caller, RequestService
from engine import attributes
from engine.names import BATCH_WORKFLOW
from shared.config import Settings
from shared.contracts import ChatBody, PlanBody
from shared.errors import BadRequest, NotFound, ServiceUnavailable, TokenHubError
from shared.orchestration.batch import BatchInput, BatchProgress
from shared.security.apikeys import Principal
from shared.store.batches import BatchStore, NewItem
from shared.store.tables import BatchRow, FileRow

URLS = ("/v1/chat/completions", "/v1/chat", "/v1/plan")
FINAL = ("completed", "failed", "cancelled", "expired")


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def owned(principal: Principal | None, owner: str | None) -> bool:
    return principal is None or owner == principal.key_id or "admin" in principal.scopes


def _line_error(n: int, message: str, *, status: int = 400,
                type_: str = "invalid_request") -> dict[str, Any]:
    return {"status_code": status, "type": type_, "message": f"line {n}: {message}"}


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in ("body", *first.get("loc", ())))
    return f"{loc}: {first.get('msg', 'invalid')}"


class Batches:
    def __init__(self, service: RequestService, runs: AsyncRuns, store: BatchStore,
                 settings: Settings) -> None:
        self.service, self.runs, self.store, self.settings = service, runs, store, settings

    # -- files ---------------------------------------------------------------------------
    def check_jsonl(self, data: bytes) -> int:
        """The number of requests in an upload, or a 400 naming the line or the limit."""
        s = self.settings
        if len(data) > s.max_batch_file_bytes:
            raise BadRequest(f"the file has {len(data)} bytes, over the limit of "
                             f"{s.max_batch_file_bytes} (TOKENHUB_MAX_BATCH_FILE_BYTES)")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise BadRequest(f"not JSONL: line {line} is not UTF-8 text") from None
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        if not lines:
            raise BadRequest("the file is empty: a batch needs at least one request line")
        if len(lines) > s.max_batch_items:
            raise BadRequest(f"the file has {len(lines)} requests, over the limit of "
                             f"{s.max_batch_items} (TOKENHUB_MAX_BATCH_ITEMS)")
        first_no = next(i for i, ln in enumerate(data.split(b"\n"), 1) if ln.strip())
        try:
            first = orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            first = None
        if not isinstance(first, dict):
            raise BadRequest(f"not JSONL: line {first_no} is not a JSON object")
        return len(lines)

    async def upload(self, principal: Principal | None, *, filename: str, purpose: str,
                     data: bytes) -> FileRow:
        if purpose != "batch":
            raise BadRequest(f"purpose must be 'batch' (got {purpose!r})")
        n = self.check_jsonl(data)
        row = FileRow(id=new_id("file-"), api_key_id=principal.key_id if principal else None,
                      purpose="batch", kind="upload",
                      filename="".join(c for c in filename if c.isprintable())[:256]
                      or "batch.jsonl",
                      bytes=len(data), lines=n, created_at=datetime.now(UTC))
        return await self.store.add_file(row, data)

    async def file(self, file_id: str, principal: Principal | None) -> FileRow:
        row = await self.store.file(file_id)
        if row is None or not owned(principal, row.api_key_id):
            raise NotFound(f"file {file_id} not found")
        return row

    # -- batches -------------------------------------------------------------------------
    def _item(self, n: int, idx: int, line: bytes, batch_id: str,
              principal: Principal | None) -> NewItem:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return NewItem(idx, None, None, None, _line_error(n, f"not valid JSON ({exc})"))
        if not isinstance(obj, dict):
            return NewItem(idx, None, None, None, _line_error(n, "not a JSON object"))
        custom_id = obj.get("custom_id")  # NUL: not a PostgreSQL text value
        custom_id = str(custom_id)[:512].replace("\x00", "") if custom_id is not None else None
        url = obj.get("url")
        if url not in URLS:
            return NewItem(idx, custom_id, None, None, _line_error(
                n, f"unknown url {str(url)[:100]!r}: one of {', '.join(URLS)}"))
        if str(obj.get("method", "POST")).upper() != "POST":
            return NewItem(idx, custom_id, url, None, _line_error(n, "method must be POST"))
        caller = Caller(request_id=f"{batch_id}-{idx}", principal=principal)
        svc = self.service
        try:
            body = obj.get("body")
            inp: BaseModel
            if url == "/v1/plan":
                inp = svc.prepare_plan(PlanBody.model_validate(body), caller)
            elif url == "/v1/chat":
                chat = ChatBody.model_validate(body)
                if chat.request.stream:
                    raise BadRequest("body.request.stream: batch requests do not stream")
                inp = svc.prepare_chat(chat, caller, kind="chat")
            else:
                comp = CompletionsBody.model_validate(body)
                if comp.stream:
                    raise BadRequest("body.stream: batch requests do not stream")
                inp = svc.prepare_chat(comp.to_chat_body(), caller, kind="completions")
        except ValidationError as exc:
            return NewItem(idx, custom_id, url, None,
                           _line_error(n, _validation_message(exc)))
        except TokenHubError as err:
            return NewItem(idx, custom_id, url, None, _line_error(
                n, err.message, status=err.status_code, type_=err.error_type))
        # latency: the run's own; the provider call a regular activity (durable once it
        # completes: a worker or Temporal restart never repeats it), not a local one
        retry = dataclasses.replace(inp.retry, local_activities=False)
        run = inp.model_copy(update={"started_at": None, "retry": retry})
        return NewItem(idx, custom_id, url, run.model_dump_json())

    async def create(self, principal: Principal | None, *, input_file_id: str,
                     endpoint: str, completion_window: str,
                     metadata: dict[str, str] | None) -> BatchRow:
        if endpoint not in URLS:
            raise BadRequest(f"endpoint must be one of {', '.join(URLS)}")
        if completion_window != "24h":
            raise BadRequest("completion_window must be '24h'")
        client = await self.runs.client()  # a 503 before anything is written
        src = await self.file(input_file_id, principal)
        if src.kind != "upload":
            raise BadRequest(f"file {input_file_id} is a batch's output, not an input")
        data = b"".join([c async for c in self.store.file_bytes(src.id)])
        batch_id = new_id("batch_")
        items, idx = [], 0
        for n, line in enumerate(data.split(b"\n"), 1):
            if line.strip():
                items.append(self._item(n, idx, line, batch_id, principal))
                idx += 1
        now = datetime.now(UTC)
        key = principal.key_id if principal else None
        out_id, err_id = f"file-{batch_id}-output", f"file-{batch_id}-errors"
        row = BatchRow(id=batch_id, api_key_id=key, input_file_id=src.id,
                       output_file_id=out_id, error_file_id=err_id, endpoint=endpoint,
                       completion_window=completion_window, status="validating",
                       meta=metadata or {}, total=len(items), created_at=now, updated_at=now,
                       times={"expires_at": (now + timedelta(hours=24)).isoformat()})
        files = [FileRow(id=fid, api_key_id=key, purpose="batch_output", kind=kind,
                         filename=f"{batch_id}_{kind}.jsonl", batch_id=batch_id,
                         created_at=now) for fid, kind in ((out_id, "output"),
                                                           (err_id, "errors"))]
        await self.store.create_batch(row, files, items)
        inp = BatchInput(batch_id=batch_id, total=len(items), api_key_id=key,
                         monthly_budget_usd=principal.monthly_budget_usd if principal else None,
                         max_concurrency=self.settings.batch_max_concurrency,
                         items_per_run=self.settings.batch_items_per_run,
                         group_size=self.settings.batch_group_size,
                         failed=sum(1 for it in items if it.error is not None))
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(attributes.KIND, "batch"),
            SearchAttributePair(attributes.STATUS, "running"),
            SearchAttributePair(attributes.BATCH_ID, batch_id)]
        if key:
            pairs.append(SearchAttributePair(attributes.API_KEY_ID, key))
        temporal = self.runs.temporal
        try:
            await client.start_workflow(
                BATCH_WORKFLOW, inp, id=batch_id, task_queue=self.settings.temporal_task_queue,
                search_attributes=TypedSearchAttributes(pairs)
                if temporal is not None and temporal.tagging else None,
                memo={"kind": "batch", "api_key_id": key},
                execution_timeout=timedelta(hours=48))
        except RPCError as exc:  # never a half-created batch
            await self.store.delete_batch(batch_id)
            raise ServiceUnavailable(f"{NEEDS_ENGINE} ({exc.status.name})") from None
        return row

    async def batch(self, batch_id: str, principal: Principal | None) -> BatchRow:
        row = await self.store.batch(batch_id)
        if row is None or not owned(principal, row.api_key_id):
            raise NotFound(f"batch {batch_id} not found")
        return row

    async def cancel(self, batch_id: str, principal: Principal | None) -> BatchRow:
        row = await self.batch(batch_id, principal)
        if row.status in FINAL or row.status == "cancelling":
            return row
        client = await self.runs.client()
        try:
            await client.get_workflow_handle(batch_id).cancel()
        except RPCError as exc:
            raise ServiceUnavailable(f"{NEEDS_ENGINE} ({exc.status.name})") from None
        await self.store.set_status(batch_id, "cancelling", unless=FINAL)
        return await self.batch(batch_id, principal)

    async def progress(self, batch_id: str) -> BatchProgress | None:
        """The workflow's progress query (None when it cannot answer)."""
        try:
            client = await self.runs.client()
            p: BatchProgress = await client.get_workflow_handle(batch_id).query(
                "progress", result_type=BatchProgress, rpc_timeout=timedelta(seconds=2))
        except (ServiceUnavailable, RPCError, Exception):  # noqa: BLE001 - best effort
            return None
        return p
