"""The benchmark report: tables, overheads vs direct, the target table, a PNG chart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _find(points: list[dict[str, Any]], target: str, c: int, d: int) -> dict[str, Any] | None:
    return next((p for p in points if p["target"].startswith(target) and
                 p["concurrency"] == c and p["delay_ms"] == d), None)


def _row(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def targets(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    pts, sp = out["points"], out["special"]
    rows: list[tuple[str, str, str]] = []

    def overhead(target: str, base: str, c: int, d: int) -> tuple[float, float] | None:
        a, b = _find(pts, target, c, d), _find(pts, base, c, d)
        return (a["p50"] - b["p50"], a["p99"] - b["p99"]) if a and b else None

    o = overhead("tokenhub-local", "direct", 1, 0)
    rows.append(("local c=1 0 ms: p50 overhead ≤ 1.5 ms, p99 ≤ 4 ms",
                 f"p50 +{o[0]:.2f} ms, p99 +{o[1]:.2f} ms" if o else "-",
                 _row(o and o[0] <= 1.5 and o[1] <= 4)))
    lo = overhead("litellm", "direct", 1, 0)
    if lo:
        rows.append(("(LiteLLM c=1 0 ms overhead, for comparison)",
                     f"p50 +{lo[0]:.2f} ms, p99 +{lo[1]:.2f} ms", ""))
    o = overhead("tokenhub-local", "direct", 16, 50)
    rows.append(("local c=16 50 ms: p50 overhead ≤ 5 ms, p99 ≤ 20 ms",
                 f"p50 +{o[0]:.2f} ms, p99 +{o[1]:.2f} ms" if o else "-",
                 _row(o and o[0] <= 5 and o[1] <= 20)))
    th = {p["target"]: p for p in out["throughput"]}
    ours, theirs = th.get("tokenhub-local-w2"), th.get("litellm-w2")
    if ours:
        ratio = ours["rps"] / theirs["rps"] if theirs and theirs["rps"] else None
        rows.append(("throughput c=64 0 ms, 2 workers: ≥ 1,500 rps, 0 errors, ≥ 8× LiteLLM",
                     f"{ours['rps']:.0f} rps, {ours['errors']} errors"
                     + (f", {ratio:.1f}× LiteLLM ({theirs['rps']:.0f} rps)" if ratio else ""),
                     _row(ours["rps"] >= 1500 and ours["errors"] == 0
                          and (ratio is None or ratio >= 8))))
    o = overhead("tokenhub-workflow", "tokenhub-local", 1, 0)
    rows.append(("workflow c=1: p50 overhead over local ≤ 25 ms, p99 ≤ 50 ms",
                 f"p50 +{o[0]:.1f} ms, p99 +{o[1]:.1f} ms" if o else "-",
                 _row(o and o[0] <= 25 and o[1] <= 50)))
    w = _find(pts, "tokenhub-workflow", 16, 0)
    rows.append(("workflow c=16: ≥ 60 workflows/s", f"{w['rps']:.0f}/s" if w else "-",
                 _row(w and w["rps"] >= 60 and w["errors"] == 0)))
    for key, limit, label in (("vote_local", 1.15, "local"), ("vote_temporal", 1.8, "Temporal")):
        v = sp.get(key)
        rows.append((f"vote, 4 voters, 50 ms: wall ≤ {limit}× one call ({label})",
                     f"{v['vote_ratio']:.2f}× ({v['vote_ms']:.0f} ms vs {v['single_ms']:.0f} ms;"
                     f" voting phase {v['voting_phase_ratio']:.2f}×)" if v else "-",
                     _row(v and v["vote_ratio"] <= limit)))
    k = sp.get("temporal_killed")
    rows.append(("Temporal killed: first local response within 1 s",
                 f"{k['first_local_s']:.2f} s, {k['after_errors']} errors in "
                 f"{k['after_requests']} requests" if k and k["first_local_s"] is not None
                 else "-", _row(k and k["first_local_s"] is not None
                                and k["first_local_s"] <= 1 and k["after_errors"] == 0)))
    local = _find(pts, "tokenhub-local", 1, 0)
    co = sp.get("circuit_open_p50_ms")
    rows.append(("circuit open: ≤ 1 ms more than the pure local path (p50, c=1)",
                 f"{co:.2f} ms vs {local['p50']:.2f} ms" if co and local else "-",
                 _row(co is not None and local is not None and co - local["p50"] <= 1)))
    s = sp.get("soak")
    rows.append(("memory: RSS grows ≤ 10 % over a 20,000-request soak",
                 f"{s['rss_before_mb']:.0f} → {s['rss_after_mb']:.0f} MiB "
                 f"({s['growth_pct']:+.1f} %, {s['requests']} requests)" if s else "-",
                 _row(s and s["growth_pct"] <= 10)))
    return rows


def write(out: dict[str, Any], stem: Path) -> None:
    lines = [f"# Benchmark {out['date'][:10]}", "",
             f"Everything on 127.0.0.1 of one {os.cpu_count()}-core box; wrk (Debian), "
             f"{out['duration_s']:.0f} s per point after a 1 s warm-up; load average "
             "recorded before each point. Overhead = target − direct in the same run.", "",
             "## Targets", "", "| target | measured | |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(out)]
    lines += ["", "## Latency matrix", "",
              "| target | c | upstream delay | req/s | p50 ms | p90 ms | p99 ms | errors | load |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in out["points"]:
        lines.append(f"| {p['target']} | {p['concurrency']} | {p['delay_ms']} ms | "
                     f"{p['rps']:.0f} | {p['p50']:.2f} | {p['p90']:.2f} | {p['p99']:.2f} | "
                     f"{p['errors']} | {p['loadavg']:.2f} |")
    lines += ["", "## Throughput (c=64, 0 ms, 2 worker processes)", "",
              "| target | req/s | p50 ms | p99 ms | errors |", "| --- | --- | --- | --- | --- |"]
    for p in out["throughput"]:
        lines.append(f"| {p['target']} | {p['rps']:.0f} | {p['p50']:.2f} | {p['p99']:.2f} | "
                     f"{p['errors']} |")
    chart = _chart(out, stem)
    if chart:
        lines += ["", f"![latency vs concurrency]({chart.name})"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def _chart(out: dict[str, Any], stem: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, delay in zip(axes, (0, 50), strict=True):
        for target in sorted({p["target"] for p in out["points"]}):
            pts = sorted((p for p in out["points"] if p["target"] == target
                          and p["delay_ms"] == delay), key=lambda p: p["concurrency"])
            if not pts:
                continue
            xs = [p["concurrency"] for p in pts]
            line, = ax.plot(xs, [p["p50"] for p in pts], marker="o", label=f"{target} p50")
            ax.plot(xs, [p["p99"] for p in pts], marker="x", linestyle="--",
                    color=line.get_color(), label=f"{target} p99")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrency")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"upstream delay {delay} ms")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = stem.parent / f"{stem.name}-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
