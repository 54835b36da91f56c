"""What one rate-limit check costs, per backend (issue 13: limits across processes).

    python -m bench.ratelimit_cost [--n 2000] [--pg postgresql://postgres@127.0.0.1:5432/test]
                                   [--redis 127.0.0.1:6379]

Backends, each an atomic token bucket (refill, then take one token or refuse):
- ``memory``: shared.security.ratelimit.TokenBuckets (one process);
- ``sqlite``: one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` on a WAL file, through the
  gateway's engine (SQLAlchemy + aiosqlite), as a DB-backed bucket would run;
- ``postgresql``: the same statement on PostgreSQL (asyncpg);
- ``redis``: a Lua script (``EVAL``) over a minimal RESP client on asyncio streams (a lower
  bound for a real client library; redis-py is not a dependency).

Prints wall time and this process's CPU time per check (sequential, one client), the best
of three rounds. The figures quoted in README.md ("Budgets and rate limits") come from it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from shared.security.ratelimit import TokenBuckets
from shared.store.db import create_engine

RATE, BURST = 1e9, 1e9  # never refuse: measure the check, not the refusal path

_SQL = """
INSERT INTO rate_buckets (key, tokens, updated) VALUES (:k, :burst - 1, :now)
ON CONFLICT (key) DO UPDATE
  SET tokens = {least}(:burst, rate_buckets.tokens + (:now - rate_buckets.updated) * :rate) - 1,
      updated = :now
  WHERE {least}(:burst, rate_buckets.tokens + (:now - rate_buckets.updated) * :rate) >= 1
"""
_LUA = """
local b = redis.call('HMGET', KEYS[1], 't', 'u')
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = tonumber(b[1]) or burst
local u = tonumber(b[2]) or now
t = math.min(burst, t + (now - u) * rate)
if t < 1 then return 0 end
redis.call('HSET', KEYS[1], 't', t - 1, 'u', now)
return 1
"""


async def _measure(name: str, check: Callable[[], Awaitable[None]], n: int) -> None:
    for _ in range(min(200, n)):
        await check()
    best: tuple[float, float] | None = None
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            await check()
        wall, cpu = (time.perf_counter() - w0) / n * 1e6, (time.process_time() - c0) / n * 1e6
        best = (wall, cpu) if best is None or cpu < best[1] else best
    assert best is not None
    print(f"{name:11s} wall {best[0]:8.1f} µs   cpu {best[1]:8.1f} µs   per check")


async def _sql(url: str, n: int, least: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as c:
        await c.execute(text("CREATE TABLE IF NOT EXISTS rate_buckets "
                             "(key VARCHAR(128) PRIMARY KEY, tokens FLOAT, updated FLOAT)"))
    stmt = text(_SQL.format(least=least))

    async def check() -> None:
        async with engine.begin() as c:
            await c.execute(stmt, {"k": "ip:203.0.113.9", "burst": BURST, "rate": RATE,
                                   "now": time.time()})

    await _measure(url.split("+")[0], check, n)
    await engine.dispose()


async def _redis(hostport: str, n: int) -> None:
    host, port = hostport.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))

    def cmd(*args: str) -> bytes:
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    async def check() -> None:
        writer.write(cmd("EVAL", _LUA, "1", "tokenhub:rl:ip:203.0.113.9", repr(time.time()),
                         repr(RATE), repr(BURST)))
        line = await reader.readline()
        if not line.startswith(b":"):
            raise RuntimeError(line)

    await _measure("redis", check, n)
    writer.close()
    await writer.wait_closed()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--redis", default="127.0.0.1:6379")
    args = ap.parse_args()
    buckets = TokenBuckets(rate=RATE, burst=BURST)

    async def memory() -> None:
        buckets.check("203.0.113.9")

    await _measure("memory", memory, args.n * 10)
    with tempfile.TemporaryDirectory() as d:
        await _sql(f"sqlite+aiosqlite:///{d}/rl.db", args.n, "min")
    import asyncpg

    name = f"bench_rl_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        await _sql(f"{base}/{name}", args.n, "LEAST")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    try:
        await _redis(args.redis, args.n)
    except OSError as exc:
        print(f"redis       unavailable ({exc})")


if __name__ == "__main__":
    asyncio.run(main())
