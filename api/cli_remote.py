"""``tokenhub batch …`` and ``tokenhub runs …``: the CLI as an HTTP client of a gateway
(``--url`` / ``TOKENHUB_URL``, ``--api-key`` / ``TOKENHUB_API_KEY``), so it works against a
remote deployment. The progress display is rich's (installed with typer)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

batch_app = typer.Typer(help="OpenAI-compatible batches on a TokenHub gateway.",
                        no_args_is_help=True)
runs_app = typer.Typer(help="Async runs on a TokenHub gateway.", no_args_is_help=True)

FINAL = {"completed", "failed", "cancelled", "expired"}
URL = typer.Option("http://127.0.0.1:8080", "--url", envvar="TOKENHUB_URL",
                   help="The gateway (TOKENHUB_URL).")
KEY = typer.Option(None, "--api-key", envvar="TOKENHUB_API_KEY",
                   help="A client key thk_… with the runs scope (TOKENHUB_API_KEY).")


def _client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120,
                        trust_env=False)


def _check(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        try:
            err = r.json()["error"]
            msg = f"{err.get('type')}: {err.get('message')}"
        except (ValueError, KeyError, TypeError):
            msg = r.text[:500]
        typer.secho(f"error {r.status_code}: {msg}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    return r.json() if r.headers.get("content-type", "").startswith("application/json") \
        else r.content


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


class _Counts(ProgressColumn):
    """done/failed/total, rate and cost of the batch."""

    def render(self, task: Task) -> Text:
        f = task.fields
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"done {f.get('done', 0)}  failed {f.get('failed', 0)}  "
                    f"total {task.total or 0}  {rate:.1f}/s  ${f.get('cost', 0.0):.6f}")


def watch_batch(c: httpx.Client, batch_id: str, *, poll_s: float = 1.0) -> dict[str, Any]:
    """A live progress bar until the batch ends; the batch as it ended."""
    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               _Counts(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(batch_id, total=None)
        while True:
            b: dict[str, Any] = _check(c.get(f"/v1/batches/{batch_id}"))
            n = b["request_counts"]
            finished = n["completed"] + n["failed"] + n.get("cancelled", 0)
            bar.update(task, total=n["total"], completed=finished, done=n["completed"],
                       failed=n["failed"], cost=b.get("cost_usd", 0.0),
                       description=f"{batch_id} {b['status']}")
            if b["status"] in FINAL:
                return b
            time.sleep(poll_s)


@batch_app.command("submit")
def batch_submit(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                     help="JSONL of requests.")],
                 endpoint: str = typer.Option("/v1/chat/completions", help="The batch's "
                                              "endpoint: /v1/chat/completions, /v1/chat or "
                                              "/v1/plan."),
                 wait: bool = typer.Option(False, "--wait", help="Show progress until it "
                                           "ends."),
                 url: str = URL, api_key: str | None = KEY) -> None:
    """Upload FILE and create a batch from it (prints the batch)."""
    with _client(url, api_key) as c:
        with file.open("rb") as fh:
            f = _check(c.post("/v1/files", files={"file": (file.name, fh)},
                              data={"purpose": "batch"}))
        b = _check(c.post("/v1/batches", json={"input_file_id": f["id"], "endpoint": endpoint,
                                                "completion_window": "24h"}))
        typer.echo(b["id"])
        if wait:
            b = watch_batch(c, b["id"])
            _echo(b)
            if b["status"] != "completed":
                raise typer.Exit(1)


@batch_app.command("status")
def batch_status(batch_id: str, url: str = URL, api_key: str | None = KEY) -> None:
    """A batch: status, request counts, cost."""
    with _client(url, api_key) as c:
        _echo(_check(c.get(f"/v1/batches/{batch_id}")))


@batch_app.command("cancel")
def batch_cancel(batch_id: str, url: str = URL, api_key: str | None = KEY) -> None:
    """Cancel a batch (running items are cancelled, no new one starts)."""
    with _client(url, api_key) as c:
        _echo(_check(c.post(f"/v1/batches/{batch_id}/cancel")))


@batch_app.command("results")
def batch_results(batch_id: str,
                  output: Annotated[Path | None, typer.Option(
                      "-o", "--output", help="Write here (default: stdout).")] = None,
                  errors: bool = typer.Option(False, "--errors",
                                              help="The error file instead."),
                  url: str = URL, api_key: str | None = KEY) -> None:
    """The batch's output file (or, with --errors, its error file): JSONL."""
    with _client(url, api_key) as c:
        b = _check(c.get(f"/v1/batches/{batch_id}"))
        file_id = b["error_file_id" if errors else "output_file_id"]
        data: bytes = _check(c.get(f"/v1/files/{file_id}/content"))
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        typer.echo(f"{len(data.splitlines())} line(s) written to {output}", err=True)


@runs_app.command("list")
def runs_list(status: str | None = typer.Option(None, help="queued, running, waiting, "
                                                "completed, failed or cancelled."),
              limit: int = typer.Option(20, min=1, max=100),
              url: str = URL, api_key: str | None = KEY) -> None:
    """Your runs, newest first (one line each)."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    with _client(url, api_key) as c:
        page = _check(c.get("/v1/runs", params=params))
    for r in page["data"]:
        typer.echo(f"{r['id']}  {r['kind']:4}  {r['status']:9}  {r.get('created_at') or ''}")


@runs_app.command("show")
def runs_show(run_id: str, url: str = URL, api_key: str | None = KEY) -> None:
    """A run: status, progress, cost, and its result or error."""
    with _client(url, api_key) as c:
        _echo(_check(c.get(f"/v1/runs/{run_id}")))


@runs_app.command("watch")
def runs_watch(run_id: str, url: str = URL, api_key: str | None = KEY) -> None:
    """Follow a run's progress events until it ends."""
    with _client(url, api_key) as c, c.stream("GET", f"/v1/runs/{run_id}/events",
                                              timeout=None) as r:
        if r.status_code >= 400:
            r.read()
            _check(r)
        event = ""
        for raw in r.iter_lines():
            if raw.startswith("event: "):
                event = raw[7:]
            elif raw.startswith("data: "):
                data = json.loads(raw[6:])
                what = " ".join(f"{k}={v}" for k, v in data.items() if k not in ("type",))
                typer.echo(f"{event:14} {what}")


@runs_app.command("cancel")
def runs_cancel(run_id: str, url: str = URL, api_key: str | None = KEY) -> None:
    """Cancel a run."""
    with _client(url, api_key) as c:
        r = c.post(f"/v1/runs/{run_id}/cancel")
        _echo(_check(r) if r.status_code != 409 else r.json())
