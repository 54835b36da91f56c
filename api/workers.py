"""``tokenhub serve --workers N``: N uvicorn processes, one SO_REUSEPORT socket each.

uvicorn's own multi-process mode shares one listening socket between its workers, and
asyncio accepts every pending connection in one go: when a client pool opens its
connections at once (a load balancer, a benchmark's 64 connections) the first worker to
wake takes most of them and the others idle. Measured here with 2 workers at c=64: one
worker at 98 % of a core, the other at 28 %, 1,190 req/s. With a socket per worker and
SO_REUSEPORT the kernel spreads new connections over the workers by hash.

The supervisor restarts a worker that dies once it has been serving, stops everything on
SIGINT/SIGTERM (each worker shuts down gracefully, then is killed after a grace period)
and gives up when a worker fails during start-up (a bad config would otherwise loop).
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import time
from typing import Any

log = logging.getLogger("tokenhub.workers")

STARTUP_GRACE_S = 10.0  # a worker exiting sooner than this after its start failed to start
STOP_GRACE_S = 15.0


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


def _worker_main(uvicorn_kwargs: dict[str, Any], log_level: str) -> None:  # pragma: no cover
    import uvicorn

    from shared.telemetry.logging import configure_logging

    configure_logging(log_level)
    config = uvicorn.Config(**uvicorn_kwargs)
    sock = reuseport_socket(config.host, config.port)
    uvicorn.Server(config).run(sockets=[sock])


def run(workers: int, uvicorn_kwargs: dict[str, Any], *, log_level: str) -> int:
    """Run ``workers`` processes until SIGINT/SIGTERM; the exit status of the group."""
    host, port = str(uvicorn_kwargs["host"]), int(uvicorn_kwargs["port"])
    if port == 0:
        raise SystemExit("--workers > 1 needs a fixed port")
    check_port_free(host, port)
    ctx = multiprocessing.get_context("spawn")
    started: dict[int, float] = {}

    def start() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=_worker_main, args=(uvicorn_kwargs, log_level),
                           name="tokenhub-gateway", daemon=False)
        proc.start()
        started[proc.pid or 0] = time.monotonic()
        return proc

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [start() for _ in range(workers)]
    log.info("gateway: %d worker processes on %s:%d (SO_REUSEPORT)", workers, host, port)
    status = 0
    try:
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.5)
            for i, proc in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                age = time.monotonic() - started.pop(proc.pid or 0, 0.0)
                if age < STARTUP_GRACE_S:
                    log.error("gateway worker %s failed to start (exit code %s)",
                              proc.pid, proc.exitcode)
                    stopping, status = True, 1
                    break
                log.warning("gateway worker %s exited (code %s): restarting",
                            proc.pid, proc.exitcode)
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
