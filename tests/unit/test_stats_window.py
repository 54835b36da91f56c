"""Rolling stats: the running sums behind a snapshot equal a recomputation from the window."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.routing.stats import StatsWindow

EVENTS = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.booleans(),
                            st.floats(min_value=0, max_value=5000),
                            st.floats(min_value=0, max_value=30)), max_size=120)


@given(EVENTS)
def test_snapshot_matches_recomputation(events: list[tuple[str, bool, float, float]]) -> None:
    size, horizon = 7, 40.0
    window = StatsWindow(size=size, horizon_s=horizon)
    seen: dict[str, list[tuple[float, bool, float]]] = {}
    now = 0.0
    for model, ok, latency, step in events:
        now += step
        window.observe(model, ok, latency, now)
        seen.setdefault(model, []).append((now, ok, latency))
        snap = window.snapshot()
        for m, outcomes in seen.items():
            kept = [o for o in outcomes[-size:] if o[0] >= now - horizon]
            if not kept:
                assert m not in snap
                continue
            oks = [lat for _, good, lat in kept if good]
            stats = snap[m]
            assert stats.samples == len(kept)
            assert stats.failure_rate == (len(kept) - len(oks)) / len(kept)
            if oks:
                assert stats.latency_ms is not None
                assert abs(stats.latency_ms - sum(oks) / len(oks)) < 1e-6 * max(1.0, *oks)
            else:
                assert stats.latency_ms is None
