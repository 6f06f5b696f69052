"""External servers: URLs from the environment are checked, used and never started or stopped.

Without PERFLAB_* URLs in the environment, the session's embedded servers stand in as "external"
ones (reached by URL); .ci/run reruns these with the machine's own PostgreSQL and Redis.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from perflab import servers
from perflab.errors import ServerError
from perflab.settings import resolve

from .conftest import perflab_cli

pytestmark = pytest.mark.servers


@pytest.fixture
def external(settings):
    """Settings whose servers are reached only through URLs."""
    if not settings.redis_embedded and not settings.database_embedded:
        return settings
    endpoints = servers.start(settings)
    return resolve(
        {},
        redis_url=settings.redis_url or endpoints.redis_url,
        database_url=settings.database_url or endpoints.database_url,
        key_prefix=settings.key_prefix,
        state_dir=settings.state_dir.parent / "elsewhere",  # not the servers' own state dir
    )


def test_external_urls_are_used_as_given(external):
    endpoints = servers.start(external)
    assert not endpoints.redis_embedded and not endpoints.database_embedded
    assert endpoints.redis_url == external.redis_url
    assert endpoints.database_url == external.database_url
    assert endpoints.read_database_url == external.database_url


def test_redis_and_postgres_round_trip_under_our_prefix(external):
    key = f"{external.key_prefix}external-roundtrip"
    client = servers.redis_client(external)
    with client:
        try:
            client.set(key, b"\x00\xffbytes")
            assert client.get(key) == b"\x00\xffbytes"
        finally:
            client.delete(key)
        assert client.exists(key) == 0
    engine = servers.database_engine(external)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT :v"), {"v": "perflab"}).scalar() == "perflab"
    finally:
        engine.dispose()


def test_status_reports_external_servers_and_stop_leaves_them_alone(external):
    found = servers.status(external)
    assert [(s.embedded, s.running) for s in found] == [(False, True), (False, True)]
    left = servers.stop(external)
    assert [(s.embedded, s.detail) for s in left] == [(False, "external, left alone")] * 2
    servers.start(external)  # still reachable


def test_unreachable_redis_names_the_url(tmp_path):
    bad = resolve({}, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    with pytest.raises(ServerError) as info:
        servers.start(bad, database=False)
    assert "redis://127.0.0.1:1/0" in str(info.value)
    assert "PERFLAB_REDIS_URL" in str(info.value)
    assert info.value.url == "redis://127.0.0.1:1/0"


def test_unreachable_postgres_names_the_url_without_the_password(tmp_path):
    url = "postgresql://postgres:secret@127.0.0.1:1/nowhere"
    bad = resolve({}, database_url=url, state_dir=tmp_path)
    with pytest.raises(ServerError) as info:
        servers.start(bad, redis=False)
    message = str(info.value)
    assert "127.0.0.1:1/nowhere" in message and "PERFLAB_DATABASE_URL" in message
    assert "secret" not in message


def test_sqlite_is_the_lightest_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    s = resolve({}, database_url=url, state_dir=tmp_path)
    assert servers.start(s, redis=False).database_url == url
    engine = servers.database_engine(s)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": 7})
            assert conn.execute(sa.text("SELECT x FROM t")).scalar() == 7
    finally:
        engine.dispose()


def test_sqlite_in_a_missing_folder_is_a_clear_error(tmp_path):
    s = resolve({}, database_url=f"sqlite:///{tmp_path}/nope/lab.db", state_dir=tmp_path)
    with pytest.raises(ServerError, match="does not exist"):
        servers.start(s, redis=False)


def test_cli_unreachable_url_is_one_line_and_exit_2():
    done = perflab_cli(
        "servers", "start", env={"PERFLAB_REDIS_URL": "redis://127.0.0.1:1/0"}, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "redis://127.0.0.1:1/0" in done.stderr
    assert "Traceback" not in done.stderr
