"""The demo service in a real server process (uvicorn via `perflab serve`), and the load
generator against it."""

from __future__ import annotations

import httpx
import pytest

from perflab import servers
from perflab.servers import _EmbeddedRedis
from perflab.service import MAX_BATCH, run_load, running_service
from perflab.settings import resolve

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def service():
    with running_service(env={"PERFLAB_SERVICE_DEBUG": "1"}) as base:
        yield base


def both(base: str, path: str, **kwargs) -> tuple[httpx.Response, httpx.Response]:
    method = "POST" if "json" in kwargs else "GET"
    return tuple(
        httpx.request(method, f"{base}/{v}{path}", timeout=30, **kwargs)
        for v in ("baseline", "optimized")
    )


def close(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            close(x, y)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9)
    else:
        assert a == b


def test_health_and_metrics(service):
    health = httpx.get(f"{service}/health").json()
    assert health["status"] == "ok" and health["symbols"] == 20 and health["rows"] == 10_000
    metrics = httpx.get(f"{service}/metrics").json()
    assert {row["tier"] for row in metrics["cache"]} == {"memory/lru", "redis"}
    assert {row["pool"] for row in metrics["pools"]} == {"read", "write"}


def test_signals_agree_between_variants(service):
    slow, fast = both(service, "/signals", params={"symbol": "S0003"})
    assert slow.status_code == fast.status_code == 200
    assert len(slow.json()) == 500
    close(slow.json(), fast.json())
    start, end = slow.json()[100]["ts"], slow.json()[200]["ts"]
    slow, fast = both(service, "/signals", params={"symbol": "S0003", "start": start, "end": end})
    assert len(fast.json()) == 101
    close(slow.json(), fast.json())


def test_stream_is_ndjson_and_agrees(service):
    slow, fast = both(service, "/market-data/stream", params={"symbol": "S0002", "limit": 25})
    assert fast.headers["content-type"].startswith("application/x-ndjson")
    assert slow.text == fast.text and len(fast.text.splitlines()) == 25


def test_portfolio_and_batch_agree(service):
    body = {"symbols": ["S0001", "S0005", "S0009"], "risk_free": 0.0001}
    slow, fast = both(service, "/portfolio/optimize", json=body)
    assert slow.status_code == 200 and sum(fast.json()["tangency"]) == pytest.approx(1.0)
    close(slow.json(), fast.json())
    slow, fast = both(service, "/batch/signals", json={"symbols": ["S0004", "S0001"]})
    assert list(fast.json()) == ["S0004", "S0001"]
    close(slow.json(), fast.json())


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "field"),
    [
        ("/signals", {"params": {"symbol": "NOPE"}}, 404, "symbol"),
        ("/signals", {"params": {"symbol": "S0001", "start": 10, "end": 5}}, 422, "start"),
        ("/signals", {"params": {}}, 422, "symbol"),
        ("/market-data/stream", {"params": {"symbol": "S0001", "limit": 0}}, 422, "limit"),
        ("/portfolio/optimize", {"json": {"symbols": ["S0001"]}}, 422, "symbols"),
        ("/portfolio/optimize", {"json": {"symbols": ["S0001", "S0001"]}}, 422, "symbols"),
        ("/portfolio/optimize", {"json": {"symbols": ["S0001", "NOPE"]}}, 404, "symbols"),
        ("/batch/signals", {"json": {"symbols": ["S0001"] * (MAX_BATCH + 1)}}, 422, "symbols"),
    ],
)
def test_bad_requests_name_the_field(service, path, kwargs, status, field):
    for response in both(service, path, **kwargs):
        assert response.status_code == status, response.text
        assert field in response.text and "Traceback" not in response.text


def test_load_generator_counts_add_up(service):
    result = run_load(
        f"{service}/optimized/signals?symbol=S0001", concurrency=4, duration=1.0, warmup=0.2
    )
    summary = result.summary()
    assert result.params["statuses"] == {"200": int(summary["n"])}
    assert result.params["errors"] == {} and summary["throughput"] > 0
    errors = run_load(
        f"{service}/optimized/signals?symbol=NOPE", concurrency=2, duration=0.5, warmup=0
    )
    assert set(errors.params["statuses"]) == {"404"}


def test_open_loop_counts_requests_queued_behind_a_stall(service):
    url = f"{service}/debug/stall?every=50&ms=300"
    closed = run_load(url, concurrency=1, duration=2.0, warmup=0)
    # 300 calls: exactly 6 stalls whatever the server's stall counter stood at
    opened = run_load(url, rate=100, concurrency=1, duration=3.0, warmup=0)
    stalls_closed = (closed.samples >= 150e6).mean()
    stalls_open = (opened.samples >= 150e6).mean()
    # a closed loop sees each stall once; the open loop also sees the ~30 requests scheduled
    # during it, each late by the time it waited (~15 of them by 150 ms or more)
    assert stalls_open > 5 * stalls_closed


@pytest.mark.embedded
def test_service_keeps_answering_when_redis_dies(tmp_path):
    state = tmp_path / "state"
    own = resolve({}, state_dir=state)
    servers.start(own)
    env = {"PERFLAB_STATE_DIR": str(state), "PERFLAB_REDIS_URL": "", "PERFLAB_DATABASE_URL": ""}
    try:
        with running_service(env={**env, "PERFLAB_READ_DATABASE_URL": ""}) as base:
            signals = f"{base}/optimized/signals"
            assert httpx.get(signals, params={"symbol": "S0001"}, timeout=30).status_code == 200
            _EmbeddedRedis(state).stop()  # Redis gone
            for symbol in ("S0001", "S0002"):
                response = httpx.get(signals, params={"symbol": symbol}, timeout=30)
                assert response.status_code == 200 and len(response.json()) == 500
            body = {"symbols": ["S0003", "S0004"]}
            assert (
                httpx.post(f"{base}/optimized/batch/signals", json=body, timeout=30).status_code
                == 200
            )
            errors = sum(row["errors"] for row in httpx.get(f"{base}/metrics").json()["cache"])
            assert errors >= 1
            health = httpx.get(f"{base}/health", timeout=30)  # a dependency is down: 503
            assert health.status_code == 503 and health.json()["status"] == "degraded"
            deps = health.json()["dependencies"]
            assert not deps["redis"]["ok"] and deps["redis"]["error"] and deps["database"]["ok"]
    finally:
        servers.stop(own)


def test_api_table_and_capacity_curve(service):
    from perflab.service import ENDPOINTS, api_table, capacity_curve

    table, results = api_table(service, concurrency=2, duration=0.4, warmup=0.1)
    assert list(table.index) == [e[0] for e in ENDPOINTS]
    assert len(results) == 3 * len(ENDPOINTS)  # baseline, optimised cold, optimised warm
    assert {r.params["arm"] for r in results} == {"baseline", "optimized cold", "optimized warm"}
    assert (table["errors"] == 0).all() and (table["non-2xx"] == 0).all()
    assert {
        "claimed baseline ms", "baseline p50 ms", "optimized p99 ms", "speedup 95% CI",
        "optimized cold p99 ms", "optimized warm max 95% CI", "speedup p50 cold",
        "warm GC pauses", "warm loop stalls", "warm cache loads",
    } <= set(table.columns)  # fmt: skip
    curve = capacity_curve(
        f"{service}/optimized/signals?symbol=S0001", levels=(1, 2, 4), duration=0.3
    )
    assert list(curve["concurrency"]) == [1, 2, 4][: len(curve)] and (curve["throughput"] > 0).all()
