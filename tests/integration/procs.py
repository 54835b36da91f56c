"""Processes the fault tests kill: a `tokenhub worker`, a gateway (`tokenhub serve`) and a
Temporal dev server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine import devserver


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


def start_worker(*, config: Path, data_dir: Path, address: str, queue: str,
                 log: Path, extra_env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TOKENHUB_CONFIG": str(config), "TOKENHUB_DATA_DIR": str(data_dir),
           "TOKENHUB_TEMPORAL_ADDRESS": address, "TOKENHUB_TEMPORAL_TASK_QUEUE": queue,
           "TOKENHUB_TEMPORAL_HEARTBEAT_TIMEOUT_S": "2", "TOKENHUB_LOG_LEVEL": "WARNING",
           **(extra_env or {})}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "api", "worker"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_gateway(*, config: Path, data_dir: Path, address: str, queue: str, port: int,
                  log: Path, extra_env: dict[str, str] | None = None
                  ) -> subprocess.Popen[bytes]:
    """``python -m api serve`` on 127.0.0.1:``port`` (Temporal on, no embedded worker: its
    own relay queue only), once it listens."""
    env = {**os.environ, "TOKENHUB_CONFIG": str(config), "TOKENHUB_DATA_DIR": str(data_dir),
           "TOKENHUB_TEMPORAL_ADDRESS": address, "TOKENHUB_TEMPORAL_TASK_QUEUE": queue,
           "TOKENHUB_TEMPORAL_ENABLED": "true", "TOKENHUB_TEMPORAL_EMBEDDED_WORKER": "false",
           "TOKENHUB_REQUIRE_API_KEY": "false", "TOKENHUB_ENV": "test",
           "TOKENHUB_HOST": "127.0.0.1", "TOKENHUB_LOG_LEVEL": "WARNING",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           **(extra_env or {})}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_port(port, timeout_s=60)
    except TimeoutError:
        kill(proc)
        raise
    return proc


def start_devserver(port: int, db_file: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = devserver.command(ip="127.0.0.1", port=port, ui_port=None, db_file=db_file)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    wait_port(port)
    return proc


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group (no graceful shutdown)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
