"""The ``tokenhub`` command line (typer)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import typer

from api.cli_remote import batch_app, runs_app
from shared.config import load_catalog, load_settings
from shared.errors import ConfigError
from shared.telemetry.logging import configure_logging

app = typer.Typer(help="TokenHub: a self-hosted LLM routing gateway.", no_args_is_help=True,
                  add_completion=False)
app.add_typer(batch_app, name="batch")  # HTTP clients of a gateway (api/cli_remote.py)
app.add_typer(runs_app, name="runs")


def _fail(err: ConfigError) -> None:
    typer.secho(f"configuration error: {err.message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (TOKENHUB_HOST)."),
    port: int | None = typer.Option(None, help="Port (TOKENHUB_PORT)."),
    workers: int = typer.Option(1, min=1, help="Gateway worker processes."),
) -> None:
    """Run the gateway (uvicorn)."""
    import uvicorn

    try:
        settings = load_settings()
        load_catalog(settings)
    except ConfigError as err:
        _fail(err)
        return
    configure_logging(settings.log_level, fmt=settings.log_format, process="gateway")
    if settings.temporal_enabled:
        from engine.client import forward_core_logs

        forward_core_logs()
    if workers > 1:  # migrate once, before the worker processes race to it
        from shared.store.migrations import migrate_sync

        migrate_sync(settings.effective_database_url)
    kwargs = {"app": "api.app:create_app", "factory": True, "host": host or settings.host,
              "port": port or settings.port, "access_log": False, "log_config": None,
              "log_level": settings.log_level.lower(), "loop": settings.event_loop}
    from api import processes as gateway_processes
    from api.http_server import uvicorn_options

    kwargs.update(uvicorn_options(settings))  # connection limits; bad HTTP in our shape

    if workers > 1 and gateway_processes.supported():
        raise typer.Exit(gateway_processes.run(workers, kwargs, log_level=settings.log_level))
    if workers > 1:  # no SO_REUSEPORT: uvicorn's own processes, same shared environment
        with gateway_processes.shared_environment(workers):
            uvicorn.run(**kwargs, workers=workers)  # type: ignore[arg-type]
        return
    uvicorn.run(**kwargs, workers=workers)  # type: ignore[arg-type]


@app.command()
def migrate() -> None:
    """Apply database migrations (also done on every start)."""
    from shared.store.migrations import migrate as run_migrations

    try:
        settings = load_settings()
    except ConfigError as err:
        _fail(err)
        return
    asyncio.run(run_migrations(settings.effective_database_url))
    typer.echo("migrations applied")


@app.command("config")
def show_config() -> None:
    """Print the effective configuration, secrets masked."""
    try:
        settings = load_settings()
        catalog = load_catalog(settings)
    except ConfigError as err:
        _fail(err)
        return
    out = {
        "settings": settings.masked(),
        "providers": [p.model_dump(mode="json", exclude={"api_key"}) for p in catalog.providers],
        "models": [m.model_dump(mode="json") for m in catalog.models],
        "aliases": [a.model_dump(mode="json") for a in catalog.aliases],
    }
    typer.echo(json.dumps(out, indent=2, default=str))


@app.command()
def worker() -> None:
    """Run a Temporal worker (workflows + activities) against TOKENHUB_TEMPORAL_ADDRESS."""
    from worker.main import run_worker

    try:
        settings = load_settings()
        catalog = load_catalog(settings)
    except ConfigError as err:
        _fail(err)
        return
    configure_logging(settings.log_level, fmt=settings.log_format, process="worker")
    from engine.client import forward_core_logs

    forward_core_logs()
    raise typer.Exit(asyncio.run(run_worker(settings, catalog)))


@app.command("codec-key")
def codec_key(key_id: str = typer.Option("k1", "--id", help="The key's id (in every "
                                          "payload's metadata; a new id per rotation).")
              ) -> None:
    """Print a new payload key entry for TOKENHUB_TEMPORAL_PAYLOAD_KEYS (put it first to
    rotate; keep the old entries after it so runs written with them still decode)."""
    from shared.security.payload_keys import new_key_entry

    try:
        typer.echo(new_key_entry(key_id))
    except ConfigError as err:
        _fail(err)


@app.command()
def dev(
    port: int | None = typer.Option(None, help="Gateway port (TOKENHUB_PORT)."),
    temporal_port: int | None = typer.Option(
        None, min=1, max=65535,
        help="The Temporal dev server's gRPC port (default: the port of "
             "TOKENHUB_TEMPORAL_ADDRESS, 7233); its UI is on TOKENHUB_TEMPORAL_UI_PORT."),
) -> None:
    """Start the local stack: Temporal dev server, worker and gateway, with SQLite.

    A child that dies is restarted (with a growing delay); the gateway serves in-process
    while Temporal is away. Ctrl-C stops everything."""
    os.environ.setdefault("TOKENHUB_ENV", "development")
    os.environ.setdefault("TOKENHUB_REQUIRE_API_KEY", "false")
    try:
        settings = load_settings()
        catalog = load_catalog(settings)
    except ConfigError as err:
        _fail(err)
        return
    gport = port or settings.port
    from api.devstack import Output, run_devstack
    from shared.telemetry.logging import resolve_format, use_colour

    fmt = resolve_format(settings.log_format, sys.stderr)
    out = Output(fmt, colour=use_colour(fmt, sys.stderr), stream=sys.stderr)
    names = ", ".join(m.id for m in catalog.models)
    out.event("info", f"TokenHub dev: gateway on http://{settings.host}:{gport}  "
                      f"models: {names}")
    if any(p.type == "simulated" for p in catalog.providers):
        out.event("warning", "No provider configured: using the built-in SIMULATED provider "
                             "(answers are fake). Set TOKENHUB_OPENAI_API_KEY or "
                             "TOKENHUB_CONFIG.")
    if not settings.temporal_enabled:
        serve(host=None, port=gport, workers=1)
        return
    raise typer.Exit(run_devstack(settings, port=gport, temporal_port=temporal_port,
                                  output=out))


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
