"""The PNG chart: p50 and p99 latency vs concurrency per target, one panel per delay."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write(out: dict[str, Any], stem: Path) -> Path | None:
    """``<stem>-latency.png``, or None when matplotlib (the bench extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    delays = sorted({p["delay_ms"] for p in out["points"]})
    if not delays:
        return None
    fig, axes = plt.subplots(1, len(delays), figsize=(6 * len(delays), 4.5), squeeze=False)
    for ax, delay in zip(axes[0], delays, strict=True):
        for target in dict.fromkeys(p["target"] for p in out["points"]):
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
        ax.set_xticks(sorted({p["concurrency"] for p in out["points"]}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrency (connections)")
        ax.set_ylabel("latency (ms, log)")
        ax.set_title(f"upstream delay {delay} ms")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"latency percentiles vs concurrency — {out['date'][:10]}, wrk, "
                 f"{out['duration_s']} s per point", fontsize=10)
    fig.tight_layout()
    path = stem.parent / f"{stem.name}-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
