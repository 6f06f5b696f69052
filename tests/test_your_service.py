"""Notebook 07 (your service): endpoints from a list or a spec file, loaded through the public
``perflab.service.run_load`` against a small real HTTP server this test starts, status counts,
saved results read back as the baseline of before/after verdicts, and a target that does not
answer."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from perflab import your_system
from perflab.errors import ConfigurationError, ServerError

from .conftest import perflab_cli

NOTEBOOK = "notebooks/07-your-service.ipynb"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service
    wbufsize = 1 << 16  # one write per response (headers and body apart meet delayed ACKs)
    disable_nagle_algorithm = True
    delay = 0.0  # seconds added to /work (the test changes it between runs)

    def _reply(self, status: int, body: bytes = b"{}") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/work":
            time.sleep(type(self).delay)
            self._reply(200)
        elif self.path == "/error":
            self._reply(500)
        elif self.path == "/hang":
            time.sleep(2)
            self._reply(200)
        else:
            self._reply(404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(200 if json.loads(body or b"null") == {"qty": 1} else 400, body)

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.delay = 0.0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_endpoints_from_a_list_and_from_spec_files(tmp_path):
    listed = your_system.parse_endpoints(
        ["/a", 'POST /b {"qty": 1}', {"method": "put", "path": "/c"}]
    )
    assert [e.label for e in listed] == ["GET /a", "POST /b", "PUT /c"]
    assert listed[1].body == {"qty": 1}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"path": "/a"}, {"method": "POST", "path": "/b", "body": [1]}]))
    assert [e.label for e in your_system.parse_endpoints(str(spec))] == ["GET /a", "POST /b"]
    lines = tmp_path / "spec.txt"
    lines.write_text('# endpoints\nGET /a\nPOST /b {"x": 2}\n')
    assert your_system.parse_endpoints(str(lines))[1].body == {"x": 2}
    for bad, why in [
        (["a"], "must start with /"),
        (["POST /b {nope"], "not JSON"),
        (["/a", "/a"], "twice"),
        ([], "no endpoints"),
        ([{"url": "/x"}], "needs a 'path'"),
        (str(tmp_path / "missing.json"), "cannot be read"),
    ]:
        with pytest.raises(ConfigurationError, match=why):
            your_system.parse_endpoints(bad)
    for url in ("", "ftp://h/", "http://h:99999", "127.0.0.1:8000"):
        with pytest.raises(ConfigurationError):
            your_system.check_base_url(url)


def test_each_endpoint_under_load_with_statuses_and_an_endpoint_that_never_answers(service):
    endpoints = your_system.parse_endpoints(["/work", "/error", 'POST /echo {"qty": 1}', "/hang"])
    run = your_system.load_endpoints(
        service, endpoints, concurrency=2, duration=1.0, warmup=0.2, runs=2, timeout=0.3
    )
    assert list(run.results) == ["GET /work", "GET /error", "POST /echo"]
    assert "GET /hang" in run.unanswered and "timeout" in run.unanswered["GET /hang"]
    table = your_system.status_table(run)
    assert table.loc["GET /work", "HTTP 200"] > 0 and table.loc["GET /error", "HTTP 500"] > 0
    assert table.loc["POST /echo", "HTTP 200"] > 0 and table.loc["GET /hang", "failed"] == 1.0
    assert all(s.size > 0 for s in your_system.latencies(run).values())


def test_a_target_that_does_not_answer_is_one_line():
    with pytest.raises(ServerError, match=r"cannot connect to http://127\.0\.0\.1:1/"):
        your_system.load_endpoints(
            "http://127.0.0.1:1", your_system.parse_endpoints(["/"]), duration=1
        )


def test_results_round_trip_and_verdicts(service, tmp_path):
    endpoints = your_system.parse_endpoints(["/work"])
    before = your_system.load_endpoints(service, endpoints, concurrency=2, duration=2, runs=4)
    path = your_system.save_results(before, tmp_path / "before.json", base_url=service)
    _Handler.delay = 0.02
    after = your_system.load_endpoints(service, endpoints, concurrency=2, duration=2, runs=4)
    table = your_system.verdicts(your_system.read_results(path), after)
    assert table.loc["GET /work", "verdict"] == "slower", table.to_string()
    (tmp_path / "other.json").write_text('{"kind": "something else"}')
    with pytest.raises(ConfigurationError, match="not a perflab service results file"):
        your_system.read_results(tmp_path / "other.json")


@pytest.mark.notebook
def test_notebook_07_runs_with_a_baseline_and_in_a_sweep(service, tmp_path):
    saved = tmp_path / "first.json"
    common = ["-p", "duration", "1.5", "-p", "runs", "3"]
    secret = service.replace("http://", "http://me:hunter2@")  # shown redacted everywhere
    done = perflab_cli(
        "run", NOTEBOOK, *common, "-p", "base_url", secret, "-p", "paths", '["/work", "/error"]',
        "-p", "capacity_levels", "[1, 2]", "-p", "results", str(saved),
        "--out", str(tmp_path / "first"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    html = (tmp_path / "first" / "07-your-service.html").read_text()
    assert "2 of 2 endpoints" in html and "HTTP 500" in html and "Traceback" not in html
    assert "hunter2" not in html and "hunter2" not in saved.read_text() and "me:***@" in html
    assert html.count("<img") >= 3  # ECDF, percentile plot, capacity plot
    assert saved.exists()
    _Handler.delay = 0.02
    done = perflab_cli(
        "run", NOTEBOOK, *common, "-p", "base_url", service, "-p", "paths", '["/work"]',
        "-p", "capacity_levels", "[]",
        "-p", "baseline", str(saved), "--out", str(tmp_path / "second"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    html = (tmp_path / "second" / "07-your-service.html").read_text()
    assert "slower" in html and "only in baseline" in html
    sweep = tmp_path / "sweep"
    done = perflab_cli(
        "sweep", NOTEBOOK, "--grid", f"base_url={service}", "--grid", "concurrency=1,2",
        "--grid", "duration=0.5", "--grid", "capacity_levels=[]", "--out", str(sweep),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads((sweep / "sweep.json").read_text())["runs"]
    assert sorted(r["concurrency"] for r in runs) == [1, 2] and all(r["ok"] for r in runs)


@pytest.mark.notebook
def test_notebook_07_against_nothing_says_so_in_one_line(tmp_path):
    done = perflab_cli(
        "run", NOTEBOOK, "-p", "base_url", "http://127.0.0.1:1", "--out", str(tmp_path / "r")
    )
    assert done.returncode != 0
    assert "cannot connect to http://127.0.0.1:1/" in done.stdout + done.stderr
