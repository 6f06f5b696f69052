"""Issue 13, item 13: the service answers malformed requests with a 4xx, never a 5xx, on a real
server process (``perflab serve``); the connection keeps working after each."""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import httpx
import pytest

from perflab.errors import BenchmarkError
from perflab.service import run_load, running_service
from perflab.service.load import failures
from perflab.service.requests import MAX_BODY, MAX_ECHO

from .conftest import perflab_cli

pytestmark = pytest.mark.servers

HUGE = "X" * 10_000_000
LONG = "Y" * 12_000  # a path/query value under the server's request-line limit, echoed
GOOD = {"symbols": ["S0001", "S0002"], "risk_free": 0.0}
POSTS = ["/portfolio/optimize", "/batch/signals"]
GETS = ["/signals", "/market-data/stream"]


def raw(text: str) -> dict:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


def cases() -> list[tuple[str, str, str, dict]]:
    """(case id, method, path, httpx keyword arguments), for both variants."""
    out = []
    for v in ("baseline", "optimized"):
        for path in POSTS:
            p = f"/{v}{path}"
            for name, body in [
                ("nan", '{"symbols": ["S0001", "S0002"], "risk_free": NaN}'),
                ("infinity", '{"symbols": ["S0001", "S0002"], "risk_free": Infinity}'),
                ("minus-infinity", '{"symbols": ["S0001", "S0002"], "risk_free": -Infinity}'),
                ("1e400", '{"symbols": ["S0001", "S0002"], "risk_free": 1e400}'),
                ("nan-symbol", '{"symbols": [NaN, "S0002"]}'),
                ("bad-json", '{"symbols": ["S0001",'),
                ("not-json", "symbols=S0001"),
                ("empty", ""),
                ("null", "null"),
                ("list", "[1, 2]"),
                ("string", '"S0001"'),
                ("wrong-types", '{"symbols": "S0001", "risk_free": "high"}'),
                ("int-symbols", '{"symbols": [1, 2]}'),
                ("huge-int", '{"symbols": ["S0001", "S0002"], "risk_free": 1' + "0" * 5000 + "}"),
                ("nested", '{"symbols": [["S0001"], {"a": 1}]}'),
                ("unknown-huge-symbol", json.dumps({"symbols": ["S0001", "Z" * 60_000]})),
                ("huge-body", json.dumps({"symbols": ["S0001", HUGE]})),
            ]:
                out.append((f"{p}:{name}", "POST", p, raw(body)))
            out.append((f"{p}:chunked-huge", "POST", p, {"content": iter([b"[" * 100_000] * 2)}))
        for path in GETS:
            p = f"/{v}{path}"
            own = (
                [("huge-start", {"start": str(10**30)}), ("nan-start", {"start": "NaN"}),
                 ("float-end", {"end": "1e400"})]
                if path == "/signals"
                else [("negative-limit", {"limit": "-1"}), ("huge-limit", {"limit": "9" * 400})]
            )  # fmt: skip
            for name, params in [
                ("missing", {}),
                ("long-unknown-symbol", {"symbol": LONG}),
                *((n, {"symbol": "S0001", **q}) for n, q in own),
            ]:
                out.append((f"{p}:{name}", "GET", p, {"params": params}))
            out.append((f"{p}:body-on-get", "GET", p, {"params": {"symbol": "S0001"}, **raw(HUGE)}))
    out.append(("path:huge", "GET", "/" + LONG, {}))
    out.append(("path:huge-symbol-path", "GET", f"/optimized/signals/{LONG}", {}))
    return out


@pytest.fixture(scope="module")
def service():
    with running_service() as base:
        yield base


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service, timeout=60) as c:
        yield c


@pytest.mark.parametrize(("case", "method", "path", "kwargs"), cases(), ids=[c[0] for c in cases()])
def test_malformed_requests_get_a_4xx_and_the_connection_still_works(
    client, case, method, path, kwargs
):
    response = client.request(method, path, **kwargs)
    # never a 5xx; /batch/signals has no float field, so a NaN risk_free there is ignored (200)
    assert response.status_code < 500, (response.status_code, response.text[:500])
    ignored = case.endswith((":nan", "infinity", ":1e400", ":huge-int")) and "batch" in case
    if not ignored:
        assert response.status_code >= 400, response.text[:500]
    assert "Traceback" not in response.text and len(response.content) < 4 * MAX_ECHO + 2000
    response.json()  # the error itself is JSON
    # the same keep-alive connection answers the next request
    ok = client.post(path if method == "POST" else "/optimized/portfolio/optimize", json=GOOD)
    assert ok.status_code == 200, ok.text[:500]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_risk_free_is_a_422_naming_the_field(client, value):
    for v in ("baseline", "optimized"):
        body = '{"symbols": ["S0001", "S0002"], "risk_free": ' + value + "}"
        response = client.post(f"/{v}/portfolio/optimize", **raw(body))
        assert response.status_code == 422, response.text
        assert "risk_free" in response.text and "finite" in response.text


def test_unknown_symbols_are_echoed_truncated(client):
    response = client.get("/optimized/signals", params={"symbol": LONG})
    assert response.status_code == 404 and "symbol" in response.text
    assert len(response.text) < 500 and "12000 characters" in response.text


def test_bodies_over_the_limit_are_refused_with_413(client):
    body = json.dumps({"symbols": ["S0001", "Q" * MAX_BODY]})
    response = client.post("/optimized/batch/signals", **raw(body))
    assert response.status_code == 413 and f"{MAX_BODY}-byte limit" in response.text
    streamed = client.post("/optimized/batch/signals", content=iter([body.encode()]))
    assert streamed.status_code == 413


# --- 12. `perflab load` against a closed port exits 0 ------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def test_load_on_a_closed_port_is_a_one_line_error_naming_the_url_exit_2():
    url = f"http://127.0.0.1:{closed_port()}/optimized/signals?symbol=S0001"
    done = perflab_cli("load", url, "--duration", "0.5", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("perflab: error: cannot connect to") and url in line
    assert "requests" not in done.stdout


def test_failed_requests_are_counted_by_kind():
    url = f"http://127.0.0.1:{closed_port()}/"
    # failures are not latencies: with no response at all there is no result, only the count
    with pytest.raises(BenchmarkError, match=r"FAILED 100% of requests .*connect error"):
        run_load(url, concurrency=2, duration=0.3, warmup=0, check=False)
    assert failures({"200": 3, "503": 1}, {"ReadTimeout": 2, "RemoteProtocolError": 1}) == {
        "5xx": 1,
        "timeout": 2,
        "other error": 1,
    }


def test_load_exits_1_when_most_requests_fail():
    # a port that accepts connections and closes them: the preflight passes, every request fails
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def slam():
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                listener.accept()[0].close()

    thread = threading.Thread(target=slam, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        done = perflab_cli("load", url, "--duration", "0.5", "--concurrency", "2", timeout=60)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED 100% of requests" in done.stderr and "other error" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
