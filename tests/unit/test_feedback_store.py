"""The feedback store on SQLite and the real PostgreSQL: owner check, one rating per
source, replace, and the weighted reward rows the posteriors read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts import RequestRecord
from shared.errors import Conflict, NotFound
from shared.store import feedback, repo
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter
from tests.store_fixtures import db_url

__all__ = ["db_url"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_rate_replace_and_posteriors(db_url: str) -> None:
    await migrate(db_url)
    engine = create_engine(db_url)
    sm = create_sessionmaker(engine)
    writer = RequestLogWriter(db_url)
    try:
        await writer.write_now(RequestRecord(request_id="r1", created_at=NOW, model="m",
                                             api_key_id="key_a", size_bucket="medium"))

        async def rate(score: float, *, key: str | None = "key_a", source: str = "user",
                       replace: bool = False) -> tuple[feedback.FeedbackInfo, bool]:
            return await feedback.rate(
                sm, feedback.Rating(request_id="r1", score=score, source=source,
                                    replace=replace),
                api_key_id=key, check_owner=True, weight=3.0, now=NOW + timedelta(hours=5))

        info, created = await rate(0.25)
        assert created and (info.model, info.size_bucket, info.weight) == ("m", "medium", 3.0)
        with pytest.raises(Conflict):
            await rate(0.9)
        with pytest.raises(NotFound):
            await rate(0.9, key="key_b")
        info, created = await rate(1.0, replace=True)
        assert not created and info.score == 1.0 and info.created_at == NOW + timedelta(hours=5)
        await rate(0.0, source="ci")
        listed = await feedback.ratings(sm, request_id="r1", api_key_id="key_a",
                                        check_owner=True)
        assert [(r.source, r.score, r.weight) for r in listed] == [("user", 1.0, 3.0),
                                                                   ("ci", 0.0, 3.0)]
        async with sm() as s:
            post = (await repo.reward_posteriors(s))[("m", "medium")]
        # two rows of weight 3: rewards 1.0 and 0.0
        assert (post.alpha, post.beta) == (pytest.approx(4.0), pytest.approx(4.0))
    finally:
        await writer.aclose()
        await engine.dispose()
