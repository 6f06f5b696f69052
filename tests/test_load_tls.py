"""`perflab load https://…` against a real TLS server (Python's HTTP/1.1 server behind an
ssl context, a CA and certificate from trustme): verified against a given CA, refused without
it in one line, and accepted with verification off for a test host."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from perflab.errors import ServerError
from perflab.service import run_load

from .conftest import perflab_cli

SERVER = textwrap.dedent(
    """
    import ssl, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the generator's connections are

        def do_GET(self):
            body = b"hello"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain = folder / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(chain)], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())
        yield f"https://127.0.0.1:{port}/hello", str(ca_file)
    finally:
        proc.terminate()
        proc.wait(10)


def test_https_with_the_servers_ca_is_verified_and_answered(tls_server):
    url, ca_file = tls_server
    r = run_load(url, concurrency=2, duration=0.6, warmup=0.1, ca_file=ca_file, rounds=2)
    assert set(r.params["statuses"]) == {"200"}
    assert r.params["failed"] == 0 and r.params["tls"] == "verified"
    assert r.params["generator"]["cpu_us_per_request"] > 0  # the encryption's cost is in it


def test_an_unknown_ca_is_refused_in_one_line_and_insecure_says_so(tls_server):
    url, ca_file = tls_server
    with pytest.raises(ServerError, match=r"certificate was refused.*--cacert"):
        run_load(url, concurrency=1, duration=0.3, warmup=0.0)  # the system's CAs only
    done = perflab_cli("load", url, "--duration", "0.5", "--concurrency", "2")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--insecure" in done.stderr and "Traceback" not in done.stderr
    done = perflab_cli("load", url, "--duration", "0.5", "--concurrency", "2", "--insecure")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "statuses {'200':" in done.stdout
    done = perflab_cli("load", url, "--duration", "0.5", "--cacert", ca_file)
    assert done.returncode == 0, done.stdout + done.stderr
    done = perflab_cli("load", url, "--cacert", ca_file + ".missing")
    assert done.returncode == 2 and "--cacert" in done.stderr
