"""OpenAI-compatible files: ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET
/v1/files``, ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``, ``DELETE
/v1/files/{id}``. A batch's output and error files are rendered from its items when read
(OpenAI's line format: ``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}``). Scope ``runs``; a key sees only its own files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from api import multipart
from api.batches import Batches
from api.deps import gateway_of
from api.openai_wire import completion_object
from api.responses import JSONResponse
from api.routes.chat import chat_answer
from api.routes.plan import plan_answer
from api.security import authorize
from shared.errors import BadRequest
from shared.orchestration.chat import ChatOutcome
from shared.orchestration.plan import PlanOutcome
from shared.store.batches import BatchStore
from shared.store.tables import BatchItemRow, FileRow

router = APIRouter(tags=["batches"])


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


def batches_of(request: Request) -> Batches:
    batches: Batches = gateway_of(request).batches
    return batches


def file_object(row: FileRow) -> dict[str, Any]:
    return FileObject(id=row.id, bytes=row.bytes, created_at=int(row.created_at.timestamp()),
                      filename=row.filename, purpose=row.purpose).model_dump()


@router.post("/v1/files", summary="Upload a JSONL batch input (multipart, purpose=batch)",
             response_model=FileObject, openapi_extra={"requestBody": {
                 "required": True, "content": {"multipart/form-data": {"schema": {
                     "type": "object", "required": ["file", "purpose"],
                     "properties": {"file": {"type": "string", "format": "binary"},
                                    "purpose": {"type": "string", "enum": ["batch"]}}}}}}})
async def upload_file(request: Request) -> Response:
    principal = await authorize(request, "runs")
    form = multipart.parse(await request.body(), request.headers.get("content-type", ""))
    file, purpose = form.get("file"), form.get("purpose")
    if file is None or purpose is None:
        raise BadRequest("the form needs the fields 'file' and 'purpose'")
    row = await batches_of(request).upload(
        principal, filename=file.filename or "batch.jsonl",
        purpose=purpose.data.decode("utf-8", "replace").strip(), data=file.data)
    return JSONResponse(file_object(row))


@router.get("/v1/files", summary="List files", response_model=FileList)
async def list_files(request: Request) -> Response:
    principal = await authorize(request, "runs")
    key = None if principal is None or "admin" in principal.scopes else principal.key_id
    rows = await batches_of(request).store.files(key, limit=1000)
    return JSONResponse({"object": "list", "data": [file_object(r) for r in rows]})


@router.get("/v1/files/{file_id}", summary="A file's record", response_model=FileObject)
async def get_file(file_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    row = await batches_of(request).file(file_id, principal)
    return JSONResponse(file_object(row))


@router.delete("/v1/files/{file_id}", summary="Delete a file", response_model=FileDeleted)
async def delete_file(file_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    batches = batches_of(request)
    row = await batches.file(file_id, principal)
    if row.kind != "upload":
        raise BadRequest(f"file {file_id} is a batch's {row.kind} file: it goes with the batch")
    await batches.store.delete_file(file_id)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


@router.get("/v1/files/{file_id}/content", summary="A file's content (JSONL)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def file_content(file_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    batches = batches_of(request)
    row = await batches.file(file_id, principal)
    store = batches.store
    if row.kind == "upload":
        body = store.file_bytes(row.id)
    else:
        body = _rendered(store, row)
    return StreamingResponse(body, media_type="application/octet-stream")


async def _rendered(store: BatchStore, row: FileRow) -> AsyncIterator[bytes]:
    assert row.batch_id is not None
    statuses = ("completed",) if row.kind == "output" else ("failed", "cancelled")
    buf: list[bytes] = []
    async for item in store.items(row.batch_id, statuses):
        buf.append(orjson.dumps(output_line(row.batch_id, item)) + b"\n")
        if len(buf) >= 200:
            yield b"".join(buf)
            buf.clear()
    if buf:
        yield b"".join(buf)


def output_line(batch_id: str, item: BatchItemRow) -> dict[str, Any]:
    """One line of a batch's output or error file, in OpenAI's format."""
    line: dict[str, Any] = {"id": f"batch_req_{batch_id}_{item.idx}",
                            "custom_id": item.custom_id}
    request_id = f"{batch_id}-{item.idx}"
    if item.status == "completed" and item.outcome is not None:
        body: dict[str, Any]
        if item.url == "/v1/plan":
            body = plan_answer(PlanOutcome.model_validate_json(item.outcome))
        else:
            chat = ChatOutcome.model_validate_json(item.outcome)
            body = chat_answer(chat) if item.url == "/v1/chat" else completion_object(chat)
        line.update(response={"status_code": 200, "request_id": request_id, "body": body},
                    error=None)
        return line
    err = item.error or {"status_code": 499, "type": "cancelled",
                         "message": "the batch was cancelled before this request ran"}
    shape = {"type": err.get("type"), "message": err.get("message"),
             "request_id": request_id}
    line.update(response={"status_code": err.get("status_code", 500), "request_id": request_id,
                          "body": {"error": shape}},
                error={"code": err.get("type"), "message": err.get("message")})
    return line
