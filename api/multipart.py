"""A small ``multipart/form-data`` reader for ``POST /v1/files`` (what the ``openai`` SDK and
curl ``-F`` send): the body, already bounded by the middleware, split on its boundary
with ``bytes.find`` (C speed; no per-byte Python). python-multipart is not a dependency
and one route does not justify it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import BadRequest

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_DISPOSITION = re.compile(r'([a-z*]+)="((?:[^"\\]|\\.)*)"', re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes


def parse(body: bytes, content_type: str) -> dict[str, Part]:
    """The form's parts by name (the first of each name)."""
    media = content_type.split(";", 1)[0].strip().lower()
    m = _BOUNDARY.search(content_type)
    if media != "multipart/form-data" or m is None:
        raise BadRequest("upload the file as multipart/form-data (fields 'file' and "
                         "'purpose')")
    delim = b"--" + m.group(1).encode("latin-1")
    start = body.find(delim)
    if start < 0:
        raise BadRequest("malformed multipart body: no boundary")
    parts: dict[str, Part] = {}
    pos = start + len(delim)
    while body[pos:pos + 2] != b"--":
        if body[pos:pos + 2] != b"\r\n":
            raise BadRequest("malformed multipart body")
        head_end = body.find(b"\r\n\r\n", pos + 2)
        end = body.find(b"\r\n" + delim, head_end + 4) if head_end >= 0 else -1
        if head_end < 0 or end < 0:
            raise BadRequest("malformed multipart body: a part does not end")
        headers = body[pos + 2:head_end].decode("utf-8", "replace")
        name = filename = None
        for line in headers.split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                fields = dict((k.lower(), v) for k, v in _DISPOSITION.findall(value))
                name, filename = fields.get("name"), fields.get("filename")
        if name is not None and name not in parts:
            parts[name] = Part(name, filename, body[head_end + 4:end])
        pos = end + 2 + len(delim)
    return parts
