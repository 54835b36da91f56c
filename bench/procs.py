"""Start and stop the benchmark's processes, each in its own process group.

Every ``Group`` registers itself; ``stop_all()`` (called from ``python -m bench``'s
``finally``, on SIGTERM/SIGHUP and at exit) kills whatever is still running, by PID.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WORK_ROOT = ROOT / "bench" / ".work"
WORK = WORK_ROOT / f"run-{os.getpid()}"  # per run: two runs never share configs or data
LOOPBACK = "127.0.0.1"
# Children talk to 127.0.0.1 only: no proxy may be picked up from the environment.
_NO_PROXY_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
               "all_proxy")

_GROUPS: list[Group] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float = 60, proc: subprocess.Popen[bytes] | None = None
              ) -> None:
    """Poll ``url`` (GET) until it answers below 500, the process dies, or the time is up."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1, trust_env=False).status_code < 500:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s")


def wait_port(port: int, timeout_s: float = 30, proc: subprocess.Popen[bytes] | None = None
              ) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} not open after {timeout_s:.0f} s")


class Group:
    """Processes started for one target; ``stop()`` kills them all by process group."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen[bytes]] = []
        WORK.mkdir(parents=True, exist_ok=True)
        self.log = WORK / f"{name}.log"
        self.log.write_bytes(b"")
        _GROUPS.append(self)

    def start(self, cmd: list[str], env: dict[str, str] | None = None,
              drop_env: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        full = {k: v for k, v in os.environ.items()
                if k not in drop_env and k not in _PROXY_VARS}
        full.update(_NO_PROXY_ENV)
        full.update(env or {})
        with self.log.open("ab") as out:
            out.write(f"$ {' '.join(cmd)}\n".encode())
            out.flush()
            proc = subprocess.Popen(cmd, env=full, cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        """Signal the process group of ``proc``; SIGKILL after 10 s."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Children that left the group leader behind (uvicorn workers) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            self.kill(proc)
        self.procs.clear()
        with contextlib.suppress(ValueError):
            _GROUPS.remove(self)

    def tail(self, lines: int = 5) -> str:
        """The last lines of the group's log (for a 'not available' reason)."""
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(x.strip() for x in text[-lines:] if x.strip())[:400]


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_all() -> None:
    """Stop every group still running; a second Ctrl-C cannot cut this short."""
    if not _GROUPS:
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SIGNALS}
    try:
        for group in list(reversed(_GROUPS)):
            with contextlib.suppress(Exception):
                group.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def prune_work() -> None:
    """Remove the work folders (logs, configs, SQLite files) of runs no longer alive."""
    for d in WORK_ROOT.glob("run-*"):
        pid = int(d.name[4:]) if d.name[4:].isdigit() else 0
        if pid and pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def install_cleanup() -> None:
    """Ctrl-C, SIGTERM and SIGHUP unwind through ``finally`` (SIGINT too when started in
    the background, where it would be ignored); anything left dies at exit."""
    atexit.register(stop_all)
    for sig in _SIGNALS:
        signal.signal(sig, _on_signal)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024
