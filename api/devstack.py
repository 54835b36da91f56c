"""``tokenhub dev``: Temporal dev server, worker and gateway as one supervised group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine import devserver
from shared.config import Settings


def _wait_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _tokenhub(*args: str) -> list[str]:
    return [sys.executable, "-m", "api", *args]


def _stop(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name, p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"tokenhub dev: {name} did not stop, killing it", file=sys.stderr)
            p.kill()
            p.wait()


def run_devstack(settings: Settings, *, port: int) -> int:
    """Start everything, supervise until Ctrl-C or a child exits; returns an exit code."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    host, tport = settings.temporal_address.rsplit(":", 1)
    env = {**os.environ, "TOKENHUB_ENV": settings.env, "TOKENHUB_DATA_DIR": str(data)}
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cmd = devserver.command(ip=host, port=int(tport), ui_port=8233,
                                db_file=Path(data) / "temporal.db")
        procs.append(("temporal", subprocess.Popen(cmd, env=env)))
        if not _wait_port(host, int(tport), 30, procs[0][1]):
            print("tokenhub dev: the Temporal dev server did not start", file=sys.stderr)
            return 1
        print(f"tokenhub dev: Temporal on {host}:{tport}, UI http://{host}:8233",
              file=sys.stderr)
        procs.append(("worker", subprocess.Popen(_tokenhub("worker"), env=env)))
        procs.append(("gateway", subprocess.Popen(_tokenhub("serve", "--port", str(port)),
                                                  env=env)))
        while not stopping:
            for name, p in procs:
                if p.poll() is not None:
                    print(f"tokenhub dev: {name} exited ({p.returncode}); stopping",
                          file=sys.stderr)
                    return 1
            time.sleep(0.3)
        return 0
    finally:
        _stop(procs)
