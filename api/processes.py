"""``tokenhub serve --workers N``: N uvicorn processes, one SO_REUSEPORT socket each.

uvicorn's own multi-process mode shares one listening socket between its workers, and
asyncio accepts every pending connection in one go: when a client pool opens its
connections at once (a load balancer, a benchmark's 64 connections) the first worker to
wake takes most of them and the others idle. Measured here with 2 workers at c=64: one
worker at 98 % of a core, the other at 28 %, 1,190 req/s. With a socket per worker and
SO_REUSEPORT the kernel spreads new connections over the workers by hash.

The supervisor stops everything on SIGINT/SIGTERM (each worker shuts down gracefully,
then is killed after a grace period) and gives up when one of the first workers dies
during start-up (a bad config would otherwise loop). Later a dead worker is replaced,
with a growing delay while replacements keep dying young. Workers get SIGTERM when the
supervisor itself dies (Linux parent-death signal), so none is left holding the port.

What the processes must agree on reaches them through the environment they inherit
(:func:`shared_environment`): their number, ``TOKENHUB_GATEWAY_PROCESSES`` (each enforces
1/N of the rate limits: the buckets are per process, README "Budgets and rate limits"),
and ``PROMETHEUS_MULTIPROC_DIR``, a fresh directory where every process writes its metrics
so that ``/metrics`` sums them (removed at exit; a dead worker's live gauges are dropped
with ``mark_process_dead``). Budgets need nothing here: they live in the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

log = logging.getLogger("tokenhub.workers")

STARTUP_GRACE_S = 10.0  # a worker exiting sooner than this after its start failed to start
STOP_GRACE_S = 15.0  # after SIGTERM; uvicorn's own graceful shutdown gets GRACEFUL_S
GRACEFUL_S = 10
MAX_RESTART_DELAY_S = 30.0
_PR_SET_PDEATHSIG = 1


PROCESSES_ENV = "TOKENHUB_GATEWAY_PROCESSES"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_environment(workers: int) -> Iterator[str]:
    """Set the process count and a metrics directory for the workers about to start (an
    operator's own PROMETHEUS_MULTIPROC_DIR is used, and kept); restore both after."""
    saved = {k: os.environ.get(k) for k in (PROCESSES_ENV, METRICS_DIR_ENV)}
    own = not saved[METRICS_DIR_ENV]
    path = saved[METRICS_DIR_ENV] or tempfile.mkdtemp(prefix="tokenhub-metrics-")
    os.environ[PROCESSES_ENV], os.environ[METRICS_DIR_ENV] = str(workers), path
    try:
        yield path
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if own:
            shutil.rmtree(path, ignore_errors=True)


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port_free(host: str, port: int) -> None:
    """Fail fast (and clearly) when something else listens on the port: sockets with
    SO_REUSEPORT would otherwise share it silently with another process of this user."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"cannot listen on {host}:{port}: address already in use") from None
        raise
    finally:
        probe.close()


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when the supervisor dies (Linux); exit if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(0)


def _worker_main(uvicorn_kwargs: dict[str, Any], log_level: str,
                 parent: int) -> None:  # pragma: no cover - runs in the child
    _die_with_parent(parent)
    import uvicorn

    from shared.telemetry.logging import configure_logging

    configure_logging(log_level)
    config = uvicorn.Config(**uvicorn_kwargs, timeout_graceful_shutdown=GRACEFUL_S)
    sock = reuseport_socket(config.host, config.port)
    uvicorn.Server(config).run(sockets=[sock])


def run(workers: int, uvicorn_kwargs: dict[str, Any], *, log_level: str) -> int:
    """Run ``workers`` processes until SIGINT/SIGTERM; the exit status of the group."""
    host, port = str(uvicorn_kwargs["host"]), int(uvicorn_kwargs["port"])
    if port == 0:
        raise SystemExit("--workers > 1 needs a fixed port")
    check_port_free(host, port)
    with shared_environment(workers) as metrics_dir:
        return _supervise(workers, uvicorn_kwargs, log_level=log_level,
                          metrics_dir=metrics_dir)


def _supervise(workers: int, uvicorn_kwargs: dict[str, Any], *, log_level: str,
               metrics_dir: str) -> int:
    host, port = str(uvicorn_kwargs["host"]), int(uvicorn_kwargs["port"])
    ctx = multiprocessing.get_context("spawn")
    started: dict[int, float] = {}
    parent = os.getpid()

    def start() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=_worker_main, args=(uvicorn_kwargs, log_level, parent),
                           name="tokenhub-gateway", daemon=False)
        proc.start()
        started[proc.pid or 0] = time.monotonic()
        return proc

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: list[multiprocessing.process.BaseProcess] = []
    first: set[int | None] = set()  # the first workers: dying young there is a bad start
    young_deaths = 0  # replacements in a row that died within the grace period
    status = 0
    try:
        for _ in range(workers):
            procs.append(start())
        first = {p.pid for p in procs}
        log.info("gateway: %d worker processes on %s:%d (SO_REUSEPORT)", workers, host, port)
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.5)
            for i, proc in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                age = time.monotonic() - started.pop(proc.pid or 0, 0.0)
                if proc.pid is not None:
                    mark_process_dead(proc.pid, metrics_dir)  # type: ignore[no-untyped-call]
                if age < STARTUP_GRACE_S and proc.pid in first:
                    log.error("gateway worker %s failed to start (exit code %s)",
                              proc.pid, proc.exitcode)
                    stopping, status = True, 1
                    break
                young_deaths = young_deaths + 1 if age < STARTUP_GRACE_S else 0
                delay = min(MAX_RESTART_DELAY_S, 0.5 * 2 ** young_deaths) if young_deaths else 0
                log.warning("gateway worker %s exited (code %s): restarting in %.1f s",
                            proc.pid, proc.exitcode, delay)
                deadline = time.monotonic() + delay
                while not stopping and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not stopping:
                    procs[i] = start()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
