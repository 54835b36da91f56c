"""Token-bucket rate limits (per client IP, per API key) and client IP resolution."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable

from shared.errors import RateLimited


class TokenBuckets:
    """One bucket per key: ``rate`` tokens/s, capacity ``burst``. Bounded memory: the
    least recently used buckets beyond ``max_keys`` are dropped (a dropped bucket is full,
    which is what an idle client's bucket would be anyway)."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic, scope: str = "client") -> None:
        self.rate, self.burst, self.scope = rate, burst, scope
        self._clock = clock
        self._max = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens or raise RateLimited with the seconds until enough refill."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            raise RateLimited(f"rate limit exceeded for this {self.scope}",
                              retry_after=(cost - tokens) / self.rate)
        self._buckets[key] = (tokens - cost, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


def parse_networks(cidrs: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def client_ip(remote: str | None, forwarded_for: str | None,
              trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The client's address: X-Forwarded-For is honoured only when the peer is a trusted
    proxy, and then the rightmost hop that is not itself a trusted proxy wins."""
    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    peer = remote or "unknown"
    if not forwarded_for or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer
