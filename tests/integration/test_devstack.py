"""``tokenhub dev`` as a real process tree: a dead Temporal dev server or worker is
restarted while the gateway keeps answering, SIGTERM stops everything, taken ports are
refused before anything starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.server import free_port

pytestmark = pytest.mark.temporal

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}


def _ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgrp) of a live process, None if it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def children(pid: int) -> dict[int, str]:
    """Live children of ``pid`` and their command lines."""
    out: dict[int, str] = {}
    for p in _all_pids():
        st = _stat(p)
        if st is not None and st[0] == pid:
            try:
                out[p] = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return out


def group_members(pgid: int) -> list[int]:
    return [p for p in _all_pids() if (st := _stat(p)) is not None and st[1] == pgid]


_MATCH = {"temporal": "server start-dev", "worker": "-m api worker", "gateway": "-m api serve"}


def child(pid: int, name: str) -> int:
    found = [p for p, cmd in children(pid).items() if _MATCH[name] in cmd]
    assert len(found) == 1, (name, children(pid))
    return found[0]


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.log.read_text().splitlines()]

    def events(self) -> list[str]:
        return [str(x["msg"]) for x in self.lines() if x.get("proc") == "dev"]

    def wait_event(self, text: str, timeout_s: float, after: int = 0) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in e for e in self.events()[after:]):
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {text!r} in {self.events()}")
            time.sleep(0.1)


def _env(tmp_path: Path, config_file: Path, tport: int, uiport: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENHUB_")}
    env.update({"PYTHONPATH": str(ROOT), "TOKENHUB_CONFIG": str(config_file),
                "TOKENHUB_DATA_DIR": str(tmp_path / "data"),
                "TOKENHUB_TEMPORAL_ADDRESS": f"127.0.0.1:{tport}",
                "TOKENHUB_TEMPORAL_UI_PORT": str(uiport),
                "TOKENHUB_TEMPORAL_CIRCUIT_COOLDOWN_S": "2",
                "TOKENHUB_RATE_LIMIT_RPS": "100000", "TOKENHUB_RATE_LIMIT_BURST": "100000"})
    return env


def _first_temporal(c: httpx.Client, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            r = c.post("/v1/chat/completions", json=BODY)
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code == 200 and \
                r.headers["x-tokenhub-executor"] == "temporal":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer by Temporal: {r and r.text}")
        time.sleep(0.2)


@contextmanager
def dev_stack(tmp_path: Path, config_file: Path) -> Iterator[Stack]:
    port, tport, uiport = _ports(3)
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api", "dev", "--port", str(port)],
                                env=_env(tmp_path, config_file, tport, uiport), cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack = Stack(proc, f"http://127.0.0.1:{port}", log)
    try:
        yield stack
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for p in group_members(proc.pid):  # what SIGTERM should not have left behind
            os.kill(p, signal.SIGKILL)


def _stop_and_check_nothing_left(stack: Stack) -> None:
    kids = list(children(stack.proc.pid))
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=20) == 0, stack.log.read_text()[-3000:]
    deadline = time.monotonic() + 5
    while any(_stat(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [k for k in kids if _stat(k)] == []
    assert group_members(stack.proc.pid) == []
    assert "stopping gateway, worker, temporal" in stack.events()


def _check_output(stack: Stack) -> None:
    """JSON lines only (stdout is not a terminal), each tagged, no ANSI colour, no key."""
    text = stack.log.read_text()
    assert "\x1b[" not in text
    assert "sk-test-openai-secret" not in text
    assert {str(x["proc"]) for x in stack.lines()} >= {"dev", "temporal", "worker",
                                                        "gateway"}


def test_dev_keeps_serving_while_temporal_is_killed_and_restarted(
        tmp_path: Path, config_file: Path) -> None:
    with dev_stack(tmp_path, config_file) as stack, \
            httpx.Client(base_url=stack.url, trust_env=False, timeout=15) as c:
        _first_temporal(c, 90)
        executors: list[str] = []
        slowest = 0.0
        kills = 0
        # Kill the dev server; while no request was served locally yet, kill it again as
        # soon as it is back (each restart waits twice as long: 0.5, 1, 2, 4 s).
        while "local" not in executors and kills < 4:
            seen = len(stack.events())
            old = child(stack.proc.pid, "temporal")
            os.kill(old, signal.SIGKILL)
            kills += 1
            stack.wait_event("temporal exited with code -9 (SIGKILL); restarting in", 10,
                             after=seen)
            deadline = time.monotonic() + 30
            while not any("temporal is back" in e for e in stack.events()[seen:]):
                t0 = time.perf_counter()
                r = c.post("/v1/chat/completions", json=BODY)
                slowest = max(slowest, time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                executors.append(r.headers["x-tokenhub-executor"])
                assert time.monotonic() < deadline, stack.events()
        assert "local" in executors, (kills, executors)
        assert slowest < 5.0
        assert child(stack.proc.pid, "temporal") != old
        # back on the workflow path (after the breaker's cooldown), every answer a 200
        deadline = time.monotonic() + 60
        while executors[-1] != "temporal":
            r = c.post("/v1/chat/completions", json=BODY)
            assert r.status_code == 200, r.text
            executors.append(r.headers["x-tokenhub-executor"])
            assert time.monotonic() < deadline, executors
            time.sleep(0.2)
        events = stack.events()
        assert any("restarting in 0.5 s" in e for e in events)
        if kills > 1:
            assert any("restarting in 1.0 s" in e for e in events)
        _check_output(stack)
        _stop_and_check_nothing_left(stack)


def test_dev_restarts_a_killed_worker(tmp_path: Path, config_file: Path) -> None:
    with dev_stack(tmp_path, config_file) as stack, \
            httpx.Client(base_url=stack.url, trust_env=False, timeout=60) as c:
        _first_temporal(c, 90)
        seen = len(stack.events())
        old = child(stack.proc.pid, "worker")
        os.kill(old, signal.SIGKILL)
        stack.wait_event("worker exited with code -9 (SIGKILL); restarting in 0.5 s", 10,
                         after=seen)
        # a run started now waits on its task queue until the new worker polls it
        r = c.post("/v1/chat/completions", json=BODY)
        assert r.status_code == 200, r.text
        assert r.headers["x-tokenhub-executor"] == "temporal"
        stack.wait_event("worker is back", 30, after=seen)
        assert child(stack.proc.pid, "worker") != old
        _stop_and_check_nothing_left(stack)


@pytest.mark.parametrize("taken, variable", [
    ("ui", "TOKENHUB_TEMPORAL_UI_PORT"),
    ("temporal", "TOKENHUB_TEMPORAL_ADDRESS or --temporal-port"),
    ("gateway", "TOKENHUB_PORT or --port"),
])
def test_dev_refuses_a_taken_port(tmp_path: Path, config_file: Path, taken: str,
                                  variable: str) -> None:
    port, tport, uiport = _ports(3)
    busy = {"ui": uiport, "temporal": tport, "gateway": port}[taken]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        proc = subprocess.Popen([sys.executable, "-m", "api", "dev", "--port", str(port)],
                                env=_env(tmp_path, config_file, tport, uiport), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = out.decode()
    assert proc.returncode != 0
    assert f"port {busy} is in use: set {variable}" in text, text
    assert group_members(proc.pid) == []
    assert not (tmp_path / "data" / "temporal.db").exists()  # nothing was started


def test_dev_temporal_port_option_wins(tmp_path: Path, config_file: Path) -> None:
    """--temporal-port is the port checked (and used), not TOKENHUB_TEMPORAL_ADDRESS's."""
    port, tport, uiport, other = _ports(4)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", other))
        holder.listen()
        r = subprocess.run([sys.executable, "-m", "api", "dev", "--port", str(port),
                            "--temporal-port", str(other)],
                           env=_env(tmp_path, config_file, tport, uiport), cwd=ROOT,
                           capture_output=True, timeout=60)
    assert r.returncode != 0
    assert f"port {other} is in use: set TOKENHUB_TEMPORAL_ADDRESS or --temporal-port" in \
        r.stderr.decode()
