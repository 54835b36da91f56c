"""A JSON response rendered with orjson (fast; FastAPI's ORJSONResponse is deprecated), and
the run link header."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from shared.config import Settings


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def run_link(settings: Settings, request_id: str, executor: str) -> dict[str, str]:
    """``X-TokenHub-Run-URL``: the run in the Temporal UI, for runs on the workflow path
    when TOKENHUB_TEMPORAL_RUN_LINKS is on (by default: TOKENHUB_TEMPORAL_UI_URL set, or
    development; a derived URL is usually an internal address, no use to a client)."""
    if executor != "temporal" or not settings.temporal_run_links:
        return {}
    return {"X-TokenHub-Run-URL": f"{settings.temporal_ui_url}/namespaces/"
            f"{quote(settings.temporal_namespace, safe='')}/workflows/"
            f"{quote(request_id, safe='')}"}
