"""Measure what one catalog poll costs (shared/catalog.py): CPU and wall time of
``LiveCatalog.refresh_if_changed()`` when nothing changed, i.e. the steady state.

    PYTHONPATH=. python scripts/catalog_poll_cost.py [database URL] [polls]

Default: a fresh SQLite file in a temporary directory (WAL, as the gateway opens it).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shared.catalog import LiveCatalog
from shared.config import Catalog, ProviderConfig, Settings
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate


async def measure(url: str, polls: int) -> None:
    await migrate(url)
    engine = create_engine(url)
    live = LiveCatalog(Settings(_env_file=None),
                       Catalog(providers=[ProviderConfig(id="sim", type="simulated")]),
                       create_sessionmaker(engine))
    await live.reload()
    for _ in range(200):  # warm the pool and the statement cache
        await live.refresh_if_changed()
    cpu, wall = [], []
    for _ in range(polls):
        c0, w0 = time.process_time(), time.perf_counter()
        changed = await live.refresh_if_changed()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        assert not changed
    await live.aclose()
    await engine.dispose()
    us = 1e6
    print(f"{url.split('://')[0]}: {polls} polls, CPU per poll mean "
          f"{statistics.fmean(cpu) * us:.0f} µs, wall median "
          f"{statistics.median(wall) * us:.0f} µs, p99 "
          f"{sorted(wall)[int(polls * 0.99)] * us:.0f} µs")


def main() -> None:
    polls = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    if len(sys.argv) > 1:
        asyncio.run(measure(sys.argv[1], polls))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(f"sqlite+aiosqlite:///{Path(tmp) / 'poll.db'}", polls))


if __name__ == "__main__":
    main()
