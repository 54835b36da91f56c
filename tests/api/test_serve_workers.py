"""``tokenhub serve --workers 2``: one SO_REUSEPORT socket per process, connections spread
over both, a clean stop on SIGTERM, and a clear error when the port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENHUB_")}
    env.update({"TOKENHUB_DATA_DIR": str(tmp_path), "TOKENHUB_ENV": "development",
                "TOKENHUB_REQUIRE_API_KEY": "false", "TOKENHUB_TEMPORAL_ENABLED": "false",
                "TOKENHUB_LOG_LEVEL": "WARNING", "TOKENHUB_RATE_LIMIT_RPS": "100000",
                "TOKENHUB_RATE_LIMIT_BURST": "100000"})  # no provider: the simulated one
    return env


def _serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "2"],
        env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _workers(pid: int) -> list[int]:
    """The gateway processes among the supervisor's children (not multiprocessing's
    resource tracker)."""
    return [p for p in _children(pid)
            if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]


def _established(pid: int, port: int) -> set[int]:
    """Inodes of the ESTABLISHED sockets on ``port`` that process ``pid`` holds."""
    mine = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            mine.add(int(target[8:-1]))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                found.add(int(cols[9]))
    return mine & found


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            if httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("gateway did not start")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_two_workers_share_the_connections_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers
        clients = [httpx.Client(base_url=url, trust_env=False, timeout=30) for _ in range(32)]
        try:
            for c in clients:  # each client keeps its one connection open
                assert c.post("/v1/chat/completions", json=BODY).status_code == 200
            held = {p: len(_established(p, port)) for p in workers}
        finally:
            for c in clients:
                c.close()
        assert sum(held.values()) == 32, held
        assert min(held.values()) >= 4, held  # spread by the kernel, not all on one
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert all(not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status")
               .read_text().lower() for p in workers)


def test_port_in_use_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _serve(tmp_path, port)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"address already in use" in out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        workers = _workers(proc.pid)
        time.sleep(10.5)  # past the start-up grace: a death now is a crash, not a bad start
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = _workers(proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        assert workers[0] not in now and len(now) == 2, (workers, now)
        _wait_ready(url, proc)
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
            for _ in range(10):  # new connections land on either worker
                assert c.post("/v1/chat/completions", json=BODY,
                              headers={"connection": "close"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path, port)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        workers = _children(proc.pid)
    finally:
        proc.kill()  # SIGKILL: no chance to stop its workers itself
        proc.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert workers and not any(_alive(p) for p in workers)
    with socket.socket() as s:  # and the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text().lower()
    except OSError:
        return False
