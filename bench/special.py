"""Measurements beyond the latency matrix: vote fan-out, Temporal killed, memory soak."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import httpx

from bench.load import run_wrk
from bench.procs import rss_mb
from bench.targets import Target, model_name


def _post(c: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    r = c.post(path, json=body)
    r.raise_for_status()
    return r


def vote_fanout(t: Target, n: int = 15, *, judge_delay: int = 0) -> dict[str, float]:
    """Median wall time of a 4-voter vote vs one call; voters and the single call on the
    50 ms model, the judge on the ``judge_delay`` model. With a 0 ms judge the ratio is the
    fan-out's cost; with a 50 ms judge the wall is voters + judge, two sequential calls
    (SPEC §3: "wall time ≈ slowest voter + judge")."""
    chat = {"model": model_name(50), "messages": [{"role": "user", "content": "hi"}]}
    vote = {"request": {"messages": [{"role": "user", "content": "pick"}]},
            "orchestration": {"mode": "vote", "voters": 4, "primary_model_id": model_name(50),
                              "primary_min_weight": 6,
                              "review_model_id": model_name(judge_delay)}}
    single, walls, voting = [], [], []
    with httpx.Client(base_url=t.base, trust_env=False, timeout=60) as c:
        for _ in range(3):
            _post(c, "/v1/chat/completions", chat)
            _post(c, "/v1/plan", vote)
        for _ in range(n):
            t0 = time.perf_counter()
            _post(c, "/v1/chat/completions", chat)
            single.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            r = _post(c, "/v1/plan", vote)
            wall = (time.perf_counter() - t0) * 1000
            walls.append(wall)
            judge = sum(a["latency_ms"] for a in r.json()["attempts"] if a["step"] == "judge")
            voting.append(wall - judge)
    one = statistics.median(single)
    return {"single_ms": one, "vote_ms": statistics.median(walls),
            "voting_phase_ms": statistics.median(voting),
            "vote_ratio": statistics.median(walls) / one,
            "voting_phase_ratio": statistics.median(voting) / one}


def temporal_killed(t: Target, duration_s: float = 6.0) -> dict[str, Any]:
    """Load at c=4 on the workflow path; kill the Temporal dev server; when is the first
    locally-served response, and were there errors?"""
    events: list[tuple[float, str, int]] = []
    stop = threading.Event()
    body = {"model": model_name(0), "messages": [{"role": "user", "content": "hi"}]}

    def client() -> None:
        with httpx.Client(base_url=t.base, trust_env=False, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/chat/completions", json=body)
                    events.append((time.monotonic(), r.headers.get("x-tokenhub-executor", "?"),
                                   r.status_code))
                except httpx.HTTPError:
                    events.append((time.monotonic(), "error", 0))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for th in threads:
        th.start()
    time.sleep(2)
    temporal = t.group.procs[0]
    killed_at = time.monotonic()
    t.group.kill(temporal, sig=9)
    time.sleep(duration_s)
    stop.set()
    for th in threads:
        th.join()
    after = [e for e in events if e[0] > killed_at]
    first_local = next((e[0] - killed_at for e in after if e[1] == "local"), None)
    return {"before_temporal": sum(1 for e in events if e[0] <= killed_at and
                                   e[1] == "temporal"),
            "after_requests": len(after), "after_errors": sum(1 for e in after if e[2] != 200),
            "first_local_s": first_local}


def soak(t: Target, requests: int = 20_000, max_rounds: int = 40) -> dict[str, float]:
    """RSS before and after ``requests`` requests (after a warm-up); at most
    ``max_rounds`` 5-second rounds, so a stalled target cannot keep it going."""
    url = t.url(0)
    run_wrk(url, model=model_name(0), concurrency=16, duration_s=3, target=t.name, delay_ms=0)
    before = rss_mb(t.pid)
    done = 0
    for _ in range(max_rounds):
        if done >= requests:
            break
        p = run_wrk(url, model=model_name(0), concurrency=16, duration_s=5, target=t.name,
                    delay_ms=0)
        done += p.requests
    after = rss_mb(t.pid)
    return {"requests": done, "rss_before_mb": before, "rss_after_mb": after,
            "growth_pct": (after - before) / before * 100 if before else 0.0}
