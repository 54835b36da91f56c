"""Benchmark targets: the upstream direct, TokenHub (local / workflow path), LiteLLM.

A target is a list of processes (command, env, readiness check) started in order in one
process group, a base URL that takes ``POST /v1/chat/completions``, and ``stop()``. A
target that cannot start raises ``Unavailable`` (its processes already stopped), and the
run goes on with a "not available" row. Add one by writing a ``Spec`` builder and naming
it in ``BUILDERS``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import LOOPBACK, ROOT, VENV_BIN, WORK, Group, free_port, wait_http, wait_port

LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
LITELLM_VERSION = "1.100.5"
UPSTREAM_MODEL = "bench-model"


class Unavailable(RuntimeError):
    """A target could not be started (missing binary, crash, not ready in time)."""


def model_name(delay: int) -> str:
    """Each proxy serves one model per upstream delay; the model picks the upstream."""
    return f"bench-{delay}ms"


@dataclass
class Upstreams:
    """One fake upstream (bench.upstream) per delay in ms → its port."""

    delays: tuple[int, ...] = (0, 50)
    ports: dict[int, int] = field(default_factory=dict)
    group: Group | None = None

    def start(self) -> None:
        self.group = Group("upstreams")
        for delay in self.delays:
            port = free_port()
            proc = self.group.start([sys.executable, "-m", "bench.upstream", "--port",
                                     str(port), "--delay-ms", str(delay)])
            wait_port(port, proc=proc)
            self.ports[delay] = port

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()

    def url(self, delay: int) -> str:
        return f"http://{LOOPBACK}:{self.ports[delay]}/v1"


@dataclass
class Proc:
    """One process of a target: started, then waited for (HTTP URL or TCP port)."""

    cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    ready_port: int | None = None
    ready_timeout_s: float = 60
    drop_env: tuple[str, ...] = ()


@dataclass
class Spec:
    name: str
    procs: list[Proc]
    base: str = ""  # http://127.0.0.1:port of the OpenAI-compatible API; "" for direct
    prepare: Callable[[], None] | None = None  # e.g. install LiteLLM into its venv


@dataclass
class Target:
    name: str
    group: Group
    base: str = ""
    pid: int = 0  # the main (last started) process, for RSS
    ups: Upstreams | None = None

    def url(self, delay: int) -> str:
        if not self.base:  # direct: straight to the upstream of that delay
            assert self.ups is not None
            return f"{self.ups.url(delay)}/chat/completions"
        return f"{self.base}/v1/chat/completions"

    def stop(self) -> None:
        self.group.stop()


def launch(spec: Spec, ups: Upstreams) -> Target:
    """Start ``spec``'s processes in order; on any failure stop them and raise Unavailable."""
    group = Group(spec.name)
    pid = 0
    try:
        if spec.prepare is not None:
            spec.prepare()
        for p in spec.procs:
            proc = group.start(p.cmd, p.env, drop_env=p.drop_env)
            pid = proc.pid
            if p.ready_port is not None:
                wait_port(p.ready_port, p.ready_timeout_s, proc=proc)
            if p.ready_url is not None:
                wait_http(p.ready_url, p.ready_timeout_s, proc=proc)
    except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as err:
        group.stop()
        tail = group.tail()
        raise Unavailable(f"{err}" + (f" — log: {tail}" if tail else "")) from err
    except BaseException:
        group.stop()
        raise
    return Target(spec.name, group, base=spec.base, pid=pid, ups=ups)


def direct_spec(ups: Upstreams, workers: int = 1) -> Spec:
    return Spec("direct", [])


def _write(name: str, text: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / name
    path.write_text(text)
    return path


def tokenhub_catalog(ups: Upstreams) -> Path:
    """One vllm provider per upstream; model bench-<d>ms → upstream model bench-model."""
    lines = ["providers:"]
    lines += [f"  - {{id: up{d}, type: vllm, base_url: '{ups.url(d)}'}}" for d in ups.delays]
    lines.append("models:")
    for d in ups.delays:
        weight = 6 if d else 5  # the vote measurement keeps to the 50 ms model (min_weight 6)
        lines.append(f"  - {{id: {model_name(d)}, provider: up{d}, upstream_model: "
                     f"{UPSTREAM_MODEL}, weight: {weight}, max_context_tokens: 32000}}")
    return _write("catalog.yaml", "\n".join(lines) + "\n")


def tokenhub_spec(ups: Upstreams, workers: int = 1, *, temporal: bool = False,
                  name: str | None = None) -> Spec:
    name = name or f"tokenhub-{'temporal' if temporal else 'local'}-w{workers}"
    data = WORK / name
    data.mkdir(parents=True, exist_ok=True)
    for f in data.glob("tokenhub.db*"):
        f.unlink()
    port = free_port()
    env = {"TOKENHUB_CONFIG": str(tokenhub_catalog(ups)), "TOKENHUB_DATA_DIR": str(data),
           "TOKENHUB_ENV": "development", "TOKENHUB_REQUIRE_API_KEY": "false",
           "TOKENHUB_LOG_LEVEL": "WARNING", "TOKENHUB_HOST": LOOPBACK,
           "TOKENHUB_TEMPORAL_ENABLED": "true" if temporal else "false",
           "TOKENHUB_ADMIN_TOKEN": "bench-admin-token",
           "TOKENHUB_RATE_LIMIT_RPS": "1000000", "TOKENHUB_RATE_LIMIT_BURST": "1000000"}
    exe = str(VENV_BIN / "tokenhub")
    procs: list[Proc] = []
    if temporal:
        tport = free_port()
        env["TOKENHUB_TEMPORAL_ADDRESS"] = f"{LOOPBACK}:{tport}"
        env["TOKENHUB_TEMPORAL_TASK_QUEUE"] = f"bench-{tport}"
        procs.append(Proc(_temporal_cmd(tport), ready_port=tport))
        procs.append(Proc([exe, "worker"], env))
    procs.append(Proc([exe, "serve", "--port", str(port), "--workers", str(workers)], env,
                      ready_url=f"http://{LOOPBACK}:{port}/healthz"))
    return Spec(name, procs, base=f"http://{LOOPBACK}:{port}")


def _temporal_cmd(port: int) -> list[str]:
    """The project's tuned dev-server command if it has one, else the plain CLI."""
    try:
        from engine import devserver

        return devserver.command(ip=LOOPBACK, port=port, ui_port=None, db_file=None)
    except (ImportError, AttributeError):
        return [str(VENV_BIN / "temporal"), "server", "start-dev", "--headless", "--ip",
                LOOPBACK, "--port", str(port), "--log-level", "warn"]


def ensure_litellm() -> None:
    """``litellm[proxy]==1.100.5`` in bench/.venv-litellm, installed on first use (PyPI)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV}", file=sys.stderr)
    subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True, timeout=300)
    subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q",
                    f"litellm[proxy]=={LITELLM_VERSION}"], check=True, timeout=1800)


def litellm_spec(ups: Upstreams, workers: int = 1) -> Spec:
    """LiteLLM proxy, no database, no callbacks, no telemetry, no access log, no
    cost-map download: one model per upstream delay, openai/ pointing at the fake."""
    lines = ["model_list:"]
    for d in ups.delays:
        lines += [f"  - model_name: {model_name(d)}", "    litellm_params:",
                  f"      model: openai/{UPSTREAM_MODEL}", f"      api_base: {ups.url(d)}",
                  "      api_key: dummy"]
    lines += ["litellm_settings:", "  telemetry: false", "  callbacks: []",
              "  success_callback: []", "  failure_callback: []", "general_settings: {}"]
    cfg = _write("litellm.yaml", "\n".join(lines) + "\n")
    # Quiet uvicorn like TokenHub's (access_log=False): no line per request.
    log_cfg = _write("litellm-logging.json", json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain",
                             "stream": "ext://sys.stderr"}},
        "loggers": {"uvicorn": {"handlers": ["err"], "level": "WARNING"},
                    "uvicorn.access": {"handlers": ["err"], "level": "WARNING",
                                       "propagate": False}}}))
    port = free_port()
    env = {"LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DISABLE_SCHEMA_UPDATE": "true"}
    exe = str(LITELLM_VENV / "bin" / "litellm")
    cmd = [exe, "--config", str(cfg), "--host", LOOPBACK, "--port", str(port),
           "--num_workers", str(workers), "--telemetry", "False", "--log_config", str(log_cfg)]
    return Spec(f"litellm-w{workers}",
                [Proc(cmd, env, ready_url=f"http://{LOOPBACK}:{port}/health/liveliness",
                      ready_timeout_s=180, drop_env=("DATABASE_URL", "DIRECT_URL"))],
                base=f"http://{LOOPBACK}:{port}", prepare=ensure_litellm)


def _tokenhub_temporal(ups: Upstreams, workers: int = 1) -> Spec:
    return tokenhub_spec(ups, workers, temporal=True)


BUILDERS: dict[str, Callable[[Upstreams, int], Spec]] = {
    "direct": direct_spec,
    "tokenhub-local": tokenhub_spec,
    "tokenhub-temporal": _tokenhub_temporal,
    "litellm": litellm_spec,
}
ALIASES = {"tokenhub-workflow": "tokenhub-temporal", "local": "tokenhub-local",
           "temporal": "tokenhub-temporal", "workflow": "tokenhub-temporal"}


def start(name: str, ups: Upstreams, workers: int = 1) -> Target:
    return launch(BUILDERS[ALIASES.get(name, name)](ups, workers), ups)
