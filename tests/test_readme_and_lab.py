"""The README's examples run as written, and `perflab lab` really serves JupyterLab with the
perflab kernel."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from perflab import servers
from perflab.service import terminate

from .conftest import ROOT, perflab_cli

README = (ROOT / "README.md").read_text()
# the README, then each page of docs/: a ```python block is an example that must run as written
# (a block labelled with a file name, ```python test_x.py, is a file its own tests run)
PAGES = [README, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))]


@pytest.mark.servers
@pytest.mark.notebook
def test_readme_and_docs_python_examples_run(tmp_path):
    blocks = [b for page in PAGES for b in re.findall(r"```python\n(.*?)```", page, flags=re.S)]
    assert blocks, "README has no python example"
    printed = ""
    for code in blocks:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        printed += done.stdout
    # the tour: the notebook's page, and a latency table whose cells carry their units
    assert "00-smoke.html" in printed and "p50" in printed
    assert re.search(r"^redis .* µs", printed, flags=re.M)
    assert "{'rsi': 61.2}" in printed and "[187.1, 188.4]" in printed  # the cache example
    assert "Seq Scan on demo_ticks" in printed and "CREATE INDEX" in printed  # the runner


def test_readme_lists_every_command_and_variable():
    from perflab.settings import ENV_VARS

    for variable in ENV_VARS:
        assert f"`{variable}`" in README, variable
    commands = ("servers start", "servers status", "servers stop", "lab", "run", "report")
    for command in (*commands, "bench", "compare", "ab", "history", "serve", "load", "sweep"):
        assert f"perflab {command}" in README, command
        assert perflab_cli(*command.split(), "--help").returncode == 0
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.servers
@pytest.mark.notebook
def test_perflab_lab_serves_jupyterlab_with_the_kernel(settings, tmp_path):
    port = _free_port()
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perflab", "lab", "--no-browser", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")},
            start_new_session=True,
        )
    try:
        token = None
        deadline = time.monotonic() + 90
        while token is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=(\w+)", log.read_text())
            token = found.group(1) if found else None
            time.sleep(0.3)
        assert token, f"JupyterLab did not start:\n{log.read_text()}"
        url = f"http://127.0.0.1:{port}/api/kernelspecs?token={token}"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read().decode()
        assert '"perflab"' in body
        assert all(s.running for s in servers.status(settings))
    finally:
        terminate(proc)


def test_readme_is_a_starting_point_and_its_links_lead_somewhere():
    """A newcomer's page: at most 12 KB (the depth lives in docs/), and every link it and the
    docs give to a file of this repository names one that exists."""
    assert len(README.encode()) <= 12_000
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
