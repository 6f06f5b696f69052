"""Issue 12 on a real service process: the fast load generator (processes, Dask, failures by
kind, its self-watch), the async optimised variant agreeing cold and warm, /health's
dependencies and the token-guarded benchmark endpoint."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest

from perflab import bench
from perflab.errors import BenchmarkError
from perflab.service import ENDPOINTS, run_load, running_service

pytestmark = pytest.mark.servers

TOKEN = "s3cret-token"
COLD = {"Cache-Control": "no-cache"}


@pytest.fixture(scope="module")
def service():
    env = {"PERFLAB_SERVICE_DEBUG": "1", "PERFLAB_SERVICE_BENCH_TOKEN": TOKEN}
    with running_service(env=env) as base:
        yield base


def test_every_endpoint_agrees_between_variants_cold_and_warm(service):
    from .test_service import close

    with httpx.Client(base_url=service, timeout=60) as client:
        for label, method, path, body, *_ in ENDPOINTS:
            kwargs = {"json": body} if body is not None else {}
            slow = client.request(method, f"/baseline{path}", **kwargs)
            cold = client.request(method, f"/optimized{path}", headers=COLD, **kwargs)
            warm = client.request(method, f"/optimized{path}", **kwargs)
            assert slow.status_code == cold.status_code == warm.status_code == 200, label
            if "stream" in path:
                assert slow.text == cold.text == warm.text, label
            else:
                close(slow.json(), cold.json())
                close(slow.json(), warm.json())


def test_health_reports_each_dependency(service):
    health = httpx.get(f"{service}/health").json()
    deps = health["dependencies"]
    assert deps["redis"]["ok"] and deps["database"]["ok"] and deps["database"]["rows"] == 10_000
    assert deps["pool"]["optimized"]["mode"] in ("engine", "thread")


def test_5xx_answers_are_counted_by_kind_not_a_crash(service):
    r = run_load(f"{service}/debug/status?code=503", concurrency=2, duration=0.5, warmup=0)
    n = int(r.summary()["n"])
    assert r.params["statuses"] == {"503": n} and r.params["failures"] == {"5xx": n}
    assert r.params["failed"] == 1.0 and r.params["errors"] == {}


def test_processes_share_the_load_and_their_counts_add_up(service):
    r = run_load(
        f"{service}/health", concurrency=4, duration=1.0, warmup=0.2, processes=2, rounds=4
    )
    assert r.params["generator"]["parts"] == 2 and r.params["processes"] == 2
    assert sum(r.params["statuses"].values()) == r.hdr().get_total_count()
    assert r.n_replicates == 4 and len(r.rates) == 4


def test_open_loop_across_processes_keeps_both_histograms(service):
    r = run_load(f"{service}/health", rate=200, concurrency=4, duration=1.0, warmup=0.2,
                 processes=2, rounds=4)  # fmt: skip
    done = sum(r.params["statuses"].values())
    assert done == r.hdr().get_total_count() == 200  # the whole schedule, split in two
    uncorrected = bench.Result.from_dict(
        {**r.to_dict(), "histogram": r.params["uncorrected_histogram"]}
    ).hdr()
    assert uncorrected.get_total_count() == done
    assert "send_lateness_p99_ms" in r.params["generator"]


def test_a_starved_generator_is_flagged(service):
    stop = threading.Event()

    def burn():  # a CPU-bound thread in the generator's process, holding the GIL
        while not stop.is_set():
            sum(range(10_000))

    hog = threading.Thread(target=burn, daemon=True)
    hog.start()
    try:
        r = run_load(f"{service}/health", concurrency=8, duration=1.5, warmup=0.2)
    finally:
        stop.set()
        hog.join()
    gen = r.params["generator"]
    assert gen["saturated"] and gen["reason"]


def test_the_dask_path_merges_the_workers_histograms(service):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:  # fmt: skip
        r = run_load(f"{service}/health", concurrency=4, duration=1.0, warmup=0.2,
                     processes=2, scheduler=cluster.scheduler_address, rounds=4)  # fmt: skip
    assert r.params["generator"]["parts"] == 2 and r.params["scheduler"]
    assert sum(r.params["statuses"].values()) == r.hdr().get_total_count() > 0


def test_benchmark_endpoint_token_suites_and_one_at_a_time(service):
    url = f"{service}/benchmark"
    assert httpx.post(f"{url}/cache").status_code == 403
    assert httpx.post(f"{url}/cache", headers={"X-Perflab-Token": "wrong"}).status_code == 403
    auth = {"X-Perflab-Token": TOKEN}
    missing = httpx.post(f"{url}/nope", headers=auth)
    assert missing.status_code == 404 and "nope" in missing.text and "cache" in missing.text
    done = httpx.post(f"{url}/db", headers=auth, params={"seconds": 0.3}, timeout=30)
    assert done.status_code == 200
    results = [bench.Result.from_dict(d) for d in done.json()["results"]]
    assert {r.name for r in results} == {"service/db/select_1", "service/db/bars"}
    assert all(r.n_replicates > 1 for r in results)
    assert httpx.post(f"{url}/cache", headers=auth, params={"seconds": 99}).status_code == 422

    def post() -> int:
        return httpx.post(
            f"{url}/cache", headers=auth, params={"seconds": 2}, timeout=30
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(post)
        time.sleep(0.5)
        second = pool.submit(post)
        codes = sorted([first.result(), second.result()])
    assert codes == [200, 429]


def test_benchmark_endpoint_is_off_without_the_token_setting():
    with running_service() as base:
        off = httpx.post(f"{base}/benchmark/cache", headers={"X-Perflab-Token": "x"})
    assert off.status_code == 404 and "PERFLAB_SERVICE_BENCH_TOKEN" in off.text


def test_a_closed_port_gives_counts_not_a_crash():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BenchmarkError, match=r"FAILED 100% .*connect error"):
        run_load(f"http://127.0.0.1:{port}/", concurrency=2, duration=0.3, warmup=0, check=False)


def test_both_async_database_paths_return_the_runners_rows(service):
    import asyncio

    from perflab.db import QueryRunner
    from perflab.service.async_db import EngineReader, ThreadReader

    runner = QueryRunner()
    sql = "SELECT ts, close FROM service_bars WHERE symbol = :symbol ORDER BY ts"

    async def both():
        engine = EngineReader(runner.read_url, runner.schema)
        try:
            a = await engine.fetch(sql, {"symbol": "S0001"})
            b = await ThreadReader(runner).fetch(sql, {"symbol": "S0001"})
            return a, b, engine.pool()
        finally:
            await engine.aclose()

    try:
        a, b, pool = asyncio.run(both())
    finally:
        runner.close()
    assert len(a) == 500 and [tuple(r) for r in a] == [tuple(r) for r in b]
    assert pool["mode"] == "engine" and pool["size"] == 5


def test_load_cli_names_a_bad_scheduler_or_process_count_in_one_line():
    from .conftest import perflab_cli

    for args, culprit in (
        (("--scheduler", "tcp://127.0.0.1:1"), "--scheduler tcp://127.0.0.1:1"),
        (("--processes", "0"), "--processes"),
    ):
        done = perflab_cli("load", "http://127.0.0.1:9/", "--duration", "1", *args, timeout=60)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("perflab: error:") and culprit in line


def test_capacity_claims_measure_both_variants_in_fresh_services():
    from perflab import servers
    from perflab.service import capacity_claims, summarise_capacity
    from perflab.settings import resolve

    url = servers.start(resolve()).database_url
    frame = capacity_claims(url, users=(20,), per_user_rate=1.0, duration=1.0, warmup=0.3,
                            replicates=2)  # fmt: skip
    assert sorted(frame["variant"]) == ["baseline", "baseline", "optimized", "optimized"]
    assert (frame["failed"] == 0).all() and (frame["requests"] == 20).all()
    assert (frame["peak_rss_mb"] > 0).all() and (frame["peak_db_connections"] >= 1).all()
    figures = summarise_capacity(frame)
    assert figures["users_served/baseline"] == figures["users_served/optimized"] == 20
    assert figures["users_served_ratio"] == 1.0
    ratio, low, high = figures["rss_ratio"]
    assert low <= ratio <= high


def test_api_suite_results_are_named_without_the_services_port(service):
    """History follows a benchmark by name; the service's port changes every run."""
    from perflab.suites.api import _ceiling, _lateness

    ceiling = _ceiling(service, 0.4, 0.1, 4)["result"]
    late = _lateness(service, 100.0, 0.4, 0.1)["result"]
    port = service.rsplit(":", 1)[1]
    for r in (ceiling, late):
        assert port not in r.name and "127.0.0.1" not in r.name, r.name
    assert ceiling.name == "GET /health (load generator, 4 conn.)"
    assert late.name == "GET /ping (open loop, 100 req/s)"
