"""The benchmark report: target table (met / not met), overheads vs direct, the latency
matrix, throughput, the harness's own capacity, and the PNG chart (bench/chart.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import chart

UPSTREAM_MIN_RPS = 20_000
QUIET_PCT = 25  # other processes' CPU above this (% of one core) marks a point disturbed

Row = tuple[str, str, str]


def _name(target: str) -> str:
    return target.replace("tokenhub-workflow", "tokenhub-temporal")  # the earlier name


def _find(points: list[dict[str, Any]], target: str, c: int, d: int) -> dict[str, Any] | None:
    return next((p for p in points if _name(p["target"]).startswith(target) and
                 p["concurrency"] == c and p["delay_ms"] == d), None)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _overhead(pts: list[dict[str, Any]], target: str, base: str, c: int, d: int
              ) -> tuple[float, float] | None:
    a, b = _find(pts, target, c, d), _find(pts, base, c, d)
    return (a["p50"] - b["p50"], a["p99"] - b["p99"]) if a and b else None


def _ov(o: tuple[float, float] | None) -> str:
    return f"p50 {o[0]:+.2f} ms, p99 {o[1]:+.2f} ms" if o else "-"


def targets(out: dict[str, Any]) -> list[Row]:
    """The issue's targets, each with what was measured and met / not met / n/a."""
    pts, sp = out["points"], out["special"]
    rows: list[Row] = []
    o = _overhead(pts, "tokenhub-local", "direct", 1, 0)
    rows.append(("local c=1 0 ms: p50 overhead ≤ 1.5 ms, p99 ≤ 4 ms", _ov(o),
                 _verdict(None if not o else o[0] <= 1.5 and o[1] <= 4)))
    o = _overhead(pts, "tokenhub-local", "direct", 16, 50)
    rows.append(("local c=16 50 ms: p50 overhead ≤ 5 ms, p99 ≤ 20 ms", _ov(o),
                 _verdict(None if not o else o[0] <= 5 and o[1] <= 20)))
    th = {p["target"].rsplit("-w", 1)[0]: p for p in out["throughput"]}
    ours, theirs = th.get("tokenhub-local"), th.get("litellm")
    ratio = ours["rps"] / theirs["rps"] if ours and theirs and theirs["rps"] else None
    w = out.get("workers", 2)
    rows.append((f"throughput c=64 0 ms, {w} workers: ≥ 1,500 rps, 0 errors, ≥ 8× LiteLLM",
                 (f"{ours['rps']:.0f} rps, {ours['errors']} errors" if ours else "-")
                 + (f", {ratio:.1f}× LiteLLM" if ratio else ""),
                 _verdict(None if not ours else ours["rps"] >= 1500 and ours["errors"] == 0
                          and ratio is not None and ratio >= 8)))
    o = _overhead(pts, "litellm", "direct", 1, 0)
    rows.append(("(comparison) LiteLLM c=1 0 ms overhead", _ov(o), ""))
    rows.append((f"(comparison) LiteLLM throughput c=64 0 ms, {w} workers",
                 f"{theirs['rps']:.0f} rps, {theirs['errors']} errors" if theirs else "-", ""))
    o = _overhead(pts, "tokenhub-temporal", "tokenhub-local", 1, 0)
    rows.append(("workflow c=1 0 ms: p50 overhead over local ≤ 25 ms, p99 ≤ 50 ms",
                 _ov(o), _verdict(None if not o else o[0] <= 25 and o[1] <= 50)))
    p = _find(pts, "tokenhub-temporal", 16, 0)
    rows.append(("workflow c=16 0 ms: ≥ 60 workflows/s, 0 errors",
                 f"{p['rps']:.0f}/s, {p['errors']} errors" if p else "-",
                 _verdict(None if not p else p["rps"] >= 60 and p["errors"] == 0)))
    for key, limit, label in (("vote_local", 1.15, "local"), ("vote_temporal", 1.8, "Temporal")):
        v = sp.get(key)
        rows.append((f"vote, 4 voters, 50 ms: wall ≤ {limit}× one call ({label}; judge on "
                     "the 0 ms model)",
                     f"{v['vote_ratio']:.2f}× ({v['vote_ms']:.0f} ms vs {v['single_ms']:.0f} ms;"
                     f" voting phase {v['voting_phase_ratio']:.2f}×)" if v else "-",
                     _verdict(None if not v else v["vote_ratio"] <= limit)))
    for key, label in (("vote_slow_judge_local", "local"),
                       ("vote_slow_judge_temporal", "Temporal")):
        v = sp.get(key)
        if v:
            rows.append((f"(comparison) vote with the judge on the 50 ms model too ({label}): "
                         "voters + judge, two sequential calls",
                         f"{v['vote_ratio']:.2f}× ({v['vote_ms']:.0f} ms vs "
                         f"{v['single_ms']:.0f} ms; voting phase "
                         f"{v['voting_phase_ratio']:.2f}×)", ""))
    k = sp.get("temporal_killed")
    first = k.get("first_local_s") if k else None
    rows.append(("Temporal killed under load: first local response ≤ 1 s, 0 errors",
                 f"{first:.2f} s, {k['after_errors']} errors in {k['after_requests']} requests"
                 if k and first is not None else ("no local response" if k else "-"),
                 _verdict(None if not k else first is not None and first <= 1
                          and k["after_errors"] == 0)))
    local, co = _find(pts, "tokenhub-local", 1, 0), sp.get("circuit_open_p50_ms")
    rows.append(("circuit open: p50 ≤ 1 ms over the pure local path (c=1, 0 ms)",
                 f"{co:.2f} ms vs {local['p50']:.2f} ms" if co and local else "-",
                 _verdict(None if co is None or local is None else co - local["p50"] <= 1)))
    s = sp.get("soak")
    rows.append(("memory soak: RSS grows ≤ 10 % over 20,000 requests",
                 f"{s['rss_before_mb']:.0f} → {s['rss_after_mb']:.0f} MiB "
                 f"({s['growth_pct']:+.1f} %, {s['requests']} requests)" if s else "-",
                 _verdict(None if not s else s["growth_pct"] <= 10)))
    return rows


def harness(out: dict[str, Any]) -> list[Row]:
    """The fake upstream's and wrk's capacity, measured in the same run."""
    direct = [p for p in out["points"] if p["target"] == "direct" and p["delay_ms"] == 0]
    best = max(direct, key=lambda p: p["rps"], default=None)
    rows: list[Row] = [(f"upstream direct, 0 ms: ≥ {UPSTREAM_MIN_RPS:,} rps",
                        f"{best['rps']:,.0f} rps at c={best['concurrency']}" if best else "-",
                        _verdict(None if not best else best["rps"] >= UPSTREAM_MIN_RPS))]
    proxied = [p for p in out["points"] + out["throughput"] if p["target"] != "direct"]
    top = max(proxied, key=lambda p: p["rps"], default=None)
    if best and top:
        cpus = [p["loadgen_cpu_pct"] for p in proxied if "loadgen_cpu_pct" in p]
        cpu = f"; wrk ≤ {max(cpus):.0f} % of a core on proxied points" if cpus else ""
        rows.append(("wrk not the bottleneck: wrk + upstream alone ≥ 10× the fastest target",
                     f"{best['rps']:,.0f} vs {top['rps']:,.0f} rps ({top['target']}), "
                     f"{best['rps'] / max(top['rps'], 1):.0f}×{cpu}",
                     _verdict(best["rps"] >= 10 * top["rps"])))
    measured = [p for p in out["points"] + out["throughput"] if "other_cpu_pct" in p]
    if measured:
        noisy = [p for p in measured if p["other_cpu_pct"] > QUIET_PCT]
        worst = max(measured, key=lambda p: p["other_cpu_pct"])
        rows.append((f"quiet box: other processes ≤ {QUIET_PCT} % of a core during each point",
                     f"{len(noisy)} of {len(measured)} points disturbed; worst "
                     f"{worst['other_cpu_pct']:.0f} % ({worst['target']} c={worst['concurrency']}"
                     f" {worst['delay_ms']} ms)", _verdict(not noisy)))
    return rows


def _table(head: list[str], rows: list[list[str]] | list[Row]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows)]


def _point_row(p: dict[str, Any]) -> list[str]:
    return [p["target"], str(p["concurrency"]), f"{p['delay_ms']} ms", f"{p['rps']:,.0f}",
            f"{p['p50']:.2f}", f"{p['p90']:.2f}", f"{p['p99']:.2f}", str(p["errors"]),
            f"{p['loadavg']:.2f}", f"{p.get('loadgen_cpu_pct', 0):.0f} %", _other(p)]


def _other(p: dict[str, Any]) -> str:
    if "other_cpu_pct" not in p:
        return "-"
    flag = " (disturbed)" if p["other_cpu_pct"] > QUIET_PCT else ""
    return f"{p['other_cpu_pct']:.0f} %{flag}"


def overheads(out: dict[str, Any]) -> list[list[str]]:
    rows = []
    for p in out["points"]:
        if p["target"] in ("direct", "circuit-open"):
            continue
        base = _find(out["points"], "direct", p["concurrency"], p["delay_ms"])
        if base is None:
            continue
        rows.append([p["target"], str(p["concurrency"]), f"{p['delay_ms']} ms",
                     f"{p['p50'] - base['p50']:+.2f}", f"{p['p99'] - base['p99']:+.2f}",
                     f"{p['rps'] / base['rps'] * 100:.1f} %" if base["rps"] else "-"])
    return rows


MATRIX_HEAD = ["target", "c", "upstream delay", "req/s", "p50 ms", "p90 ms", "p99 ms",
               "errors", "load", "wrk CPU", "other CPU"]


def _section(title: str, body: list[str]) -> list[str]:
    return ["", f"## {title}", "", *body]


def write(out: dict[str, Any], stem: Path) -> None:
    cores = os.cpu_count()
    lines = [f"# Benchmark {out['date'][:10]}", "",
             f"`python -m bench` — everything on 127.0.0.1 of one {cores}-core box, which the "
             "targets, the fake upstream (bench/upstream.py) and the load generator share. "
             f"wrk (Debian), {out['duration_s']} s per point after a 1 s warm-up, closed loop "
             "(c connections, each sending its next request on the previous answer); "
             "latency percentiles are wrk's `--latency` ones. Load average (1 min) recorded "
             "before each point; wrk CPU and other CPU (processes outside the benchmark) "
             "in % of one core during it. Overhead = target − direct, same run, same "
             "concurrency and upstream delay."]
    lines += _section("Targets", _table(["target", "measured", ""], targets(out)))
    lines += _section("Harness", _table(["check", "measured", ""], harness(out)))
    if out.get("unavailable"):
        lines += _section("Not available", _table(
            ["target", "workers", "reason"],
            [[u["target"], str(u["workers"]), "not available: " +
              u["reason"].replace("|", "/").replace("\n", " ")] for u in out["unavailable"]]))
    ov = overheads(out)
    if ov:
        lines += _section("Overhead vs direct", _table(
            ["target", "c", "upstream delay", "p50 overhead ms", "p99 overhead ms",
             "req/s vs direct"], ov))
    lines += _section("Latency matrix",
                      _table(MATRIX_HEAD, [_point_row(p) for p in out["points"]]))
    if out["throughput"]:
        lines += _section(f"Throughput (c=64, 0 ms, {out.get('workers', 2)} worker processes)",
                          _table(MATRIX_HEAD, [_point_row(p) for p in out["throughput"]]))
    if out.get("failures"):
        lines += _section("Failures", [f"- {f['target']}: {f['error'].replace(chr(10), ' ')}"
                                       for f in out["failures"]])
    png = chart.write(out, stem)
    if png:
        lines += ["", f"![latency percentiles vs concurrency]({png.name})"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
