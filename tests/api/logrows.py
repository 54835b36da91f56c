"""Read the gateway's request log straight from its SQLite file (the writer is batched)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from tests.support.server import ThreadedServer


def _db_path(gateway: ThreadedServer) -> str:
    app: Any = gateway.server.config.app
    url: str = app.state.tokenhub.settings.effective_database_url
    return url.split(":///", 1)[1]


def wait_rows(gateway: ThreadedServer, request_id: str, *, count: int = 1,
              timeout_s: float = 5.0, table: str = "request_log") -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        con = sqlite3.connect(_db_path(gateway))
        con.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in con.execute(
                f"SELECT * FROM {table} WHERE request_id = ? ORDER BY id", (request_id,))]
        finally:
            con.close()
        if len(rows) >= count or time.monotonic() > deadline:
            for r in rows:
                if isinstance(r.get("attempts"), str):
                    r["attempts"] = json.loads(r["attempts"])
            return rows
        time.sleep(0.05)
