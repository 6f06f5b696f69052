"""A raw peer can be timed over the very connection (and server process) perflab's hot path
uses: two connections measured where the scheduler put two backends, not the wrapper."""

from __future__ import annotations

import uuid

import pytest

from perflab import servers
from perflab.cache import DatabaseTier
from perflab.db import QueryRunner
from perflab.errors import QueryError

pytestmark = pytest.mark.servers


def test_query_runner_hands_out_the_connection_its_fetch_uses(settings):
    url = servers.start(settings, redis=False).database_url
    db = QueryRunner(url)
    try:
        [(pid,)] = db.fetch("SELECT pg_backend_pid()")
        raw = db.driver_connection("read")
        assert raw.info.backend_pid == pid
        assert raw.execute("SELECT 41 + 1").fetchone() == (42,)
        assert db.fetch("SELECT pg_backend_pid()") == [(pid,)]  # still the runner's
        with pytest.raises(QueryError, match="'nope'"):
            db.driver_connection("nope")
    finally:
        db.close()


def test_database_tier_hands_out_the_connection_its_get_uses(settings):
    servers.start(settings, redis=False)
    tier = DatabaseTier(table=f"cache_{uuid.uuid4().hex[:8]}")
    try:
        tier.get("warm")  # the hit path keeps its connection from here on
        raw = tier.driver_connection()
        assert tier.driver_connection() is raw
        assert raw.execute("SELECT 1").fetchone() == (1,)
    finally:
        tier.drop()
        tier.close()
