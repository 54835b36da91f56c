"""Benchmark targets: the upstream direct, TokenHub (local / workflow path), LiteLLM."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import ROOT, VENV_BIN, WORK, Group, free_port, wait_http, wait_port

LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
LITELLM_VERSION = "1.100.5"
DELAYS = (0, 50)


@dataclass
class Upstreams:
    """One fast upstream per delay (ms) → port."""

    ports: dict[int, int] = field(default_factory=dict)
    group: Group = field(default_factory=lambda: Group("upstreams"))

    def start(self) -> None:
        for delay in DELAYS:
            port = free_port()
            self.group.start([sys.executable, "-m", "bench.upstream", "--port", str(port),
                              "--delay-ms", str(delay)])
            wait_port(port)
            self.ports[delay] = port

    def url(self, delay: int) -> str:
        return f"http://127.0.0.1:{self.ports[delay]}/v1"


def model_name(delay: int) -> str:
    return f"bench-{delay}ms"


@dataclass
class Target:
    name: str
    group: Group
    base: str = ""  # http://host:port
    pid: int = 0
    direct: bool = False

    def url(self, delay: int, ups: Upstreams) -> str:
        if self.direct:
            return f"{ups.url(delay)}/chat/completions"
        return f"{self.base}/v1/chat/completions"

    def stop(self) -> None:
        self.group.stop()


def start_direct(ups: Upstreams) -> Target:
    return Target("direct", Group("direct"), direct=True)


def _catalog(ups: Upstreams) -> Path:
    lines = ["providers:"]
    for d in DELAYS:
        lines.append(f"  - {{id: up{d}, type: vllm, base_url: '{ups.url(d)}'}}")
    lines.append("models:")
    for d in DELAYS:
        weight = 6 if d else 5  # the vote measurement keeps to the 50 ms model (min_weight 6)
        lines.append(f"  - {{id: {model_name(d)}, provider: up{d}, upstream_model: bench-model,"
                     f" weight: {weight}, max_context_tokens: 32000}}")
    path = WORK / "catalog.yaml"
    WORK.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def start_tokenhub(ups: Upstreams, *, workers: int = 1, temporal: bool = False,
                   name: str | None = None) -> Target:
    name = name or f"tokenhub-{'workflow' if temporal else 'local'}-w{workers}"
    group = Group(name)
    data = WORK / name
    data.mkdir(parents=True, exist_ok=True)
    for f in data.glob("tokenhub.db*"):
        f.unlink()
    port = free_port()
    env = {"TOKENHUB_CONFIG": str(_catalog(ups)), "TOKENHUB_DATA_DIR": str(data),
           "TOKENHUB_REQUIRE_API_KEY": "false", "TOKENHUB_LOG_LEVEL": "WARNING",
           "TOKENHUB_TEMPORAL_ENABLED": "true" if temporal else "false",
           "TOKENHUB_ADMIN_TOKEN": "bench-admin-token",
           "TOKENHUB_RATE_LIMIT_RPS": "1000000", "TOKENHUB_RATE_LIMIT_BURST": "1000000"}
    if temporal:
        tport = free_port()
        env["TOKENHUB_TEMPORAL_ADDRESS"] = f"127.0.0.1:{tport}"
        env["TOKENHUB_TEMPORAL_TASK_QUEUE"] = f"bench-{tport}"
        from worker import devserver

        group.start(devserver.command(ip="127.0.0.1", port=tport, ui_port=None, db_file=None))
        wait_port(tport)
        group.start([str(VENV_BIN / "tokenhub"), "worker"], env)
    proc = group.start([str(VENV_BIN / "tokenhub"), "serve", "--port", str(port),
                        "--workers", str(workers)], env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc=proc)
    return Target(name, group, base=base, pid=proc.pid)


def ensure_litellm() -> Path:
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q",
                        f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return exe


def start_litellm(ups: Upstreams, *, workers: int = 1) -> Target:
    exe = ensure_litellm()
    group = Group(f"litellm-w{workers}")
    lines = ["model_list:"]
    for d in DELAYS:
        lines += [f"  - model_name: {model_name(d)}", "    litellm_params:",
                  "      model: openai/bench-model", f"      api_base: {ups.url(d)}",
                  "      api_key: dummy"]
    lines += ["litellm_settings:", "  telemetry: false", "  callbacks: []",
              "general_settings: {}"]
    cfg = WORK / "litellm.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {"LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true"}
    proc = group.start([str(exe), "--config", str(cfg), "--port", str(port), "--host",
                        "127.0.0.1", "--num_workers", str(workers)], env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health/liveliness", timeout_s=180, proc=proc)
    return Target(f"litellm-w{workers}", group, base=base, pid=proc.pid)
