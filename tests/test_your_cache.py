"""Notebook 09 (your cache): key traces read from files and from Redis MONITOR, the replay
through every policy checked against libCacheSim, the sizing answers, the notebook itself."""

from __future__ import annotations

import gzip
import json
import threading
import time

import numpy as np
import pytest

from perflab import cache
from perflab.errors import CacheError, ConfigurationError, ServerError

from .conftest import perflab_cli, screenshot
from .test_smoke_report import assert_not_blank, assert_one_file_without_code

lcs = pytest.importorskip("libcachesim", reason="libCacheSim is the test extra's peer simulator")

NOTEBOOK = "notebooks/09-your-cache.ipynb"


def _lcs_hit_ratio(trace: np.ndarray, capacity: int, cls) -> float:
    """libCacheSim with every object of size 1, so its capacity counts objects as perflab's."""
    sim = cls(capacity)
    request = lcs.Request()
    request.obj_size = 1
    hits = 0
    for key in trace.tolist():
        request.obj_id = key
        hits += sim.get(request)
    return hits / trace.size


PEERS = {"lru": "LRU", "lfu": "LFU", "fifo": "FIFO", "sieve": "Sieve", "s3fifo": "S3FIFO"}


@pytest.mark.parametrize(
    "trace",
    [cache.zipf_trace(10_000, 100_000, 1.0), cache.shifting_trace(5_000, 100_000, 0.9, seed=3)],
    ids=["zipf1.0", "shifting"],
)
@pytest.mark.parametrize("share", [0.01, 0.05, 0.2])
def test_hit_ratios_equal_libcachesim_to_a_tenth_of_a_point(trace, share):
    capacity = int(np.unique(trace).size * share)
    for policy, peer in PEERS.items():
        ours = cache.replay_hit_ratio(trace, capacity, policy)
        theirs = _lcs_hit_ratio(trace, capacity, getattr(lcs, peer))
        assert abs(ours - theirs) <= 0.001, (policy, capacity, ours, theirs)


def test_zipf_one_at_five_percent_matches_the_figures_measured_by_hand():
    trace = cache.zipf_trace(10_000, 200_000, 1.0)
    ratios = {p: cache.replay_hit_ratio(trace, 500, p) for p in ("lru", "lfu", "fifo")}
    assert [round(r * 100, 1) for r in ratios.values()] == [58.9, 66.2, 54.2]


def test_belady_is_the_ceiling_of_every_policy_and_exact_by_hand():
    assert cache.belady_hit_ratio(np.array([1, 2, 3, 1, 2, 4, 1, 2, 3]), 2) == pytest.approx(4 / 9)
    trace = cache.shifting_trace(2_000, 30_000, 1.0)
    curve = cache.hit_ratio_curve(trace, [20, 200])
    for capacity, part in curve.groupby("capacity"):
        ceiling = part.set_index("policy")["hit_ratio"]
        assert (ceiling.drop("belady") <= ceiling["belady"] + 1e-12).all(), capacity
    assert set(curve["policy"]) == {*cache.SIMULATED, "belady"}


def test_replays_in_worker_processes_give_the_same_ratios():
    trace = cache.zipf_trace(2_000, 20_000, 0.9)
    deterministic = [p for p in cache.SIMULATED if p != "tinylfu"]
    inline = cache.hit_ratio_curve(trace, [20, 200], deterministic)
    spread = cache.hit_ratio_curve(trace, [20, 200], deterministic, workers=2)
    assert inline.equals(spread)
    with pytest.raises(CacheError, match="workers"):
        cache.hit_ratio_curve(trace, [20], workers=0)


def test_sizing_answers_read_the_curve():
    trace = cache.zipf_trace(5_000, 50_000, 1.0)
    deterministic = [p for p in cache.SIMULATED if p != "tinylfu"]  # theine seeds its sketch
    capacities = cache.default_capacities(int(np.unique(trace).size))
    curve = cache.hit_ratio_curve(trace, capacities, deterministic)
    needed = cache.capacity_for(curve, 0.6)
    lru = curve[curve["policy"] == "lru"].set_index("capacity")["hit_ratio"]
    first = lru[lru >= 0.6].index.min()
    assert needed.loc["lru", "capacity"] == first
    assert np.isnan(cache.capacity_for(curve, 0.999).loc["lru", "capacity"])
    best = cache.best_policy(curve)
    assert (best["hit_ratio"] >= best["runner_up_ratio"]).all()
    assert "belady" not in set(best["best"])
    text = cache.advice(curve, 0.6, trace)
    policy, capacity = (
        text.split(" ")[0],
        int(text.split(" with ")[1].split(" ")[0].replace(",", "")),
    )
    assert cache.replay_hit_ratio(trace, capacity, policy) >= 0.6
    assert capacity <= needed.loc[policy, "capacity"]
    assert "No policy reaches" in cache.advice(curve, 0.999)
    with pytest.raises(CacheError, match="target"):
        cache.capacity_for(curve, 1.5)


def _write(path, text: str, *, gz: bool = False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_trace_files_lines_csv_and_gzip_give_the_same_requests(tmp_path):
    keys = [f"user:{k}" for k in cache.zipf_trace(300, 5_000, 1.0).tolist()]
    lines = _write(tmp_path / "keys.txt", "\n".join(keys) + "\n\n")
    csv = _write(
        tmp_path / "keys.csv", "ts,key,op\n" + "".join(f"{i},{k},GET\n" for i, k in enumerate(keys))
    )
    gz = _write(tmp_path / "keys.gz", "\n".join(keys), gz=True)
    header = _write(tmp_path / "one.txt", "key\n" + "\n".join(keys))
    traces = [cache.load_trace(str(p)) for p in (lines, csv, gz, header)]
    for trace in traces:
        assert len(trace) == 5_000 and not trace.truncated
        assert trace.distinct == len(set(keys))
        assert (trace.ids == traces[0].ids).all()
    cut = cache.load_trace(str(lines), max_requests=1_000)
    assert len(cut) == 1_000 and cut.truncated and "1,000" in cut.note


def test_bad_trace_files_are_one_line_errors_naming_the_file(tmp_path):
    empty = _write(tmp_path / "empty.txt", "\n \n")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    no_key = _write(tmp_path / "ops.csv", "ts,op\n1,GET\n")
    for path, why in [
        (empty, "is empty"),
        (binary, "looks binary"),
        (_write(tmp_path / "blob.gz", "\x00\x01\x02" * 100, gz=True), "looks binary"),
        (no_key, "no 'key' column"),
        (tmp_path / "missing.txt", "not found"),
    ]:
        with pytest.raises(ConfigurationError, match=why) as err:
            cache.load_trace(str(path))
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigurationError, match="monitor=SECONDS"):
        cache.load_trace("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="at most 30 s"):
        cache.load_trace("redis://:secret@127.0.0.1:6379/0?monitor=60")
    with pytest.raises(ConfigurationError) as err:
        cache.load_trace("redis://:secret@127.0.0.1:6379/0?monitor=60")
    assert "secret" not in str(err.value)


def _traffic(settings, stop: threading.Event, keys: list[str]) -> None:
    from perflab import servers

    client = servers.redis_client(settings)
    with client:
        while not stop.is_set():
            for key in keys:
                client.set(key, "1")
                client.get(key)
            client.mget(keys[:3])
            time.sleep(0.01)
        client.delete(*keys)


def _monitor_url(settings, seconds: float) -> str:
    from perflab import servers

    url = servers.start(settings, database=False).redis_url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}monitor={seconds:g}"


@pytest.mark.servers
def test_monitor_records_the_get_and_set_keys_bounded_in_time_and_keys(settings):
    keys = [f"{settings.key_prefix}trace:{i}" for i in range(5)]
    stop = threading.Event()
    worker = threading.Thread(target=_traffic, args=(settings, stop, keys), daemon=True)
    worker.start()
    try:
        timed = cache.load_trace(_monitor_url(settings, 1.5))
        counted = cache.load_trace(_monitor_url(settings, 30), max_requests=40)
    finally:
        stop.set()
        worker.join(10)
    assert not timed.truncated and "1.5 s" in timed.note
    assert {hash(k) for k in keys} <= set(timed.ids.tolist())  # (others may share the server)
    assert len(counted) == 40 and counted.truncated and "40" in counted.note


@pytest.mark.servers
def test_monitor_of_a_server_that_does_not_answer_is_one_line(settings):
    with pytest.raises(ServerError) as err:
        cache.load_trace("redis://:hunter2@127.0.0.1:1/0?monitor=1")
    assert "127.0.0.1:1" in str(err.value) and "hunter2" not in str(err.value)


@pytest.mark.notebook
@pytest.mark.browser
def test_notebook_09_runs_on_a_trace_file_and_in_a_sweep(tmp_path):
    trace = cache.shifting_trace(3_000, 40_000, 1.0)
    path = _write(tmp_path / "keys.txt.gz", "\n".join(f"k{k}" for k in trace.tolist()), gz=True)
    done = perflab_cli("run", NOTEBOOK, "-p", "trace", str(path), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stdout + done.stderr
    html = (tmp_path / "run" / "09-your-cache.html").read_text()
    assert f"40,000 requests over {np.unique(trace).size:,} distinct keys" in html
    assert "Traceback" not in html and "reaches 80% hits" in html and "s3fifo" in html
    assert_one_file_without_code(html)
    assert_not_blank(screenshot(tmp_path / "run" / "09-your-cache.html", tmp_path / "09.png"))
    sweep = tmp_path / "sweep"
    done = perflab_cli(
        "sweep", NOTEBOOK, "--grid", f"trace={path}", "--grid", "target=0.5,0.7", "--out",
        str(sweep),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads((sweep / "sweep.json").read_text())["runs"]
    assert sorted(r["target"] for r in runs) == [0.5, 0.7] and all(r["ok"] for r in runs)


@pytest.mark.notebook
def test_notebook_09_without_a_trace_says_what_to_give(tmp_path):
    done = perflab_cli("run", NOTEBOOK, "--out", str(tmp_path / "run"))
    assert done.returncode != 0
    assert "trace is empty; give a key file" in done.stdout + done.stderr


@pytest.mark.servers
def test_monitor_keeps_keys_whole_and_the_database_apart(settings):
    """redis-py's Monitor split at spaces: `user 1` came back as `user`, a key ending in a
    backslash as nothing. The raw reply keeps every key whole, and only the URL's database."""
    from perflab import servers

    prefix = settings.key_prefix
    odd = [f"{prefix}user 1", f"{prefix}ends\\", f'{prefix}q"uote', f"{prefix}tab\there", "é ü"]
    binary = prefix.encode() + b"\xff\x00bin"
    other_db = f"{prefix}in-db-1"
    stop = threading.Event()

    def traffic() -> None:
        url = servers.start(settings, database=False).redis_url
        import redis

        zero = servers.redis_client(settings)
        one = redis.Redis.from_url(url)  # (a db= argument loses to the URL's own database)
        one.connection_pool.connection_kwargs["db"] = 1
        with zero, one:
            while not stop.is_set():
                for key in odd:
                    zero.get(key)
                zero.get(binary)
                one.get(other_db)
                time.sleep(0.01)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        trace = cache.load_trace(_monitor_url(settings, 1.5))
        every = cache.load_trace(_monitor_url(settings, 1.0) + "&monitor_db=all")
    finally:
        stop.set()
        worker.join(10)
    seen = set(trace.ids.tolist())
    assert {hash(k) for k in odd} <= seen  # each key whole, hashed as a key file's would be
    assert hash(binary.decode("utf-8", "surrogateescape")) in seen
    assert hash(other_db) not in seen and hash(other_db) in set(every.ids.tolist())
    assert hash(f"{prefix}user") not in seen  # what the split used to record
    with pytest.raises(ConfigurationError, match="monitor_db"):
        cache.load_trace(_monitor_url(settings, 1.0) + "&monitor_db=some")
