"""What a budgeted request's reserve + settle costs in the database (issue 13).

    python -m bench.budget_cost [--n 300] [--pg postgresql://postgres@127.0.0.1:5432/test]

Runs shared.security.budgets.BudgetLedger against a fresh SQLite file and a fresh
PostgreSQL database, sequentially from one client; prints wall and this process's CPU
(the driver's thread included) per reserve + settle pair, the best of three rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid

import asyncpg

from shared.security.budgets import BudgetLedger
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate


async def _measure(url: str, n: int) -> None:
    await migrate(url)
    engine = create_engine(url)
    ledger = BudgetLedger(create_sessionmaker(engine))
    for _ in range(20):
        await ledger.settle(await ledger.reserve("key_bench", 1e9, 0.001), 0.001)
    best: tuple[float, float] | None = None
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            await ledger.settle(await ledger.reserve("key_bench", 1e9, 0.001), 0.001)
        m = ((time.perf_counter() - w0) / n * 1e3, (time.process_time() - c0) / n * 1e3)
        best = m if best is None or m[1] < best[1] else best
    assert best is not None
    print(f"{url.split('+')[0]:11s} reserve+settle  wall {best[0]:.2f} ms   cpu {best[1]:.2f} ms")
    await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        await _measure(f"sqlite+aiosqlite:///{d}/budget.db", args.n)
    name = f"bench_budget_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        await _measure(f"{base}/{name}", args.n)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
