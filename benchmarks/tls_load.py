"""The load generator's own CPU per request over TLS against plain HTTP (issue 25): the same
keep-alive server (Python's HTTP/1.1 server, `hello`, TLS from a trustme CA), closed loop,
rounds interleaved plain, TLS, plain, TLS …

    .venv/bin/python benchmarks/tls_load.py [--rounds 3] [--duration 5] [--concurrency 8]

The client CPU per request is the generator's own (``params["generator"]["cpu_us_per_request"]``);
the server is the limit of req/s here, so compare CPU per request, not throughput. Needs the
test extra (trustme).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from perflab.service import run_load

ROOT = Path(__file__).resolve().parent.parent


def tls_server_code() -> str:
    """The TLS server the tests use (tests/test_load_tls.py), so both measure one server."""
    sys.path.insert(0, str(ROOT))
    from tests.test_load_tls import SERVER

    return SERVER


def serve(code: str, chain: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", code, chain], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def main() -> None:
    import trustme

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        chain, ca_file = f"{tmp}/server.pem", f"{tmp}/ca.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(chain)
        ca.cert_pem.write_to_path(ca_file)
        code = tls_server_code()
        plain_code = code.replace(
            "server.socket = context.wrap_socket(server.socket, server_side=True)",
            "pass  # plain HTTP",
        )
        (plain, p_port), (tls, t_port) = serve(plain_code, chain), serve(code, chain)
        seen: dict[str, list[tuple[float, float]]] = {"http": [], "https": []}
        try:
            for _ in range(args.rounds):
                for scheme, port in (("http", p_port), ("https", t_port)):
                    r = run_load(f"{scheme}://127.0.0.1:{port}/hello", duration=args.duration,
                                 concurrency=args.concurrency, warmup=0.5, ca_file=ca_file,
                                 progress=False)  # fmt: skip
                    gen = r.params["generator"]
                    seen[scheme].append((gen["cpu_us_per_request"], r.throughput))
        finally:
            plain.terminate()
            tls.terminate()
    print(f"{'scheme':<7} {'client CPU µs/request (median, runs)':<44} {'req/s (median)':>14}")
    for scheme, rows in seen.items():
        cpu = [c for c, _ in rows]
        print(f"{scheme:<7} {statistics.median(cpu):>8.1f}  {[round(c, 1) for c in cpu]!s:<34}"
              f" {statistics.median([t for _, t in rows]):>14.0f}")  # fmt: skip
    ratio = statistics.median(c for c, _ in seen["https"]) / statistics.median(
        c for c, _ in seen["http"]
    )
    print(f"TLS / plain client CPU per request: {ratio:.2f}x")


if __name__ == "__main__":
    main()
