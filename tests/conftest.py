"""Shared fixtures. Every test that claims to talk to Redis or PostgreSQL talks to a real one:

* by default, embedded servers started for this test session in a temporary state directory
  (stopped at the end);
* with ``PERFLAB_REDIS_URL`` / ``PERFLAB_DATABASE_URL`` set (as ``.ci/run``'s second pass does),
  the external servers they name. Tests then write only under a key prefix and schema of their
  own and remove what they wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from perflab import servers
from perflab.settings import resolve

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]


def pytest_configure(config: pytest.Config) -> None:
    """Install the ``perflab`` kernelspec once, before any xdist worker starts: workers that
    install it at the same moment replace each other's half-written directory."""
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        from perflab.notebooks.kernel import ensure_kernelspec

        ensure_kernelspec()


@pytest.fixture(scope="session", autouse=True)
def lab_environment(tmp_path_factory: pytest.TempPathFactory):
    """Point every perflab call in this session (and every subprocess) at test-only places."""
    base = tmp_path_factory.mktemp("perflab")
    saved = dict(os.environ)
    os.environ["PERFLAB_STATE_DIR"] = str(base / "state")
    os.environ["PERFLAB_OUTPUTS"] = str(base / "outputs")
    os.environ["PERFLAB_KEY_PREFIX"] = f"perflab-test-{RUN_ID}:"
    os.environ["PERFLAB_SCHEMA"] = f"perflab_test_{RUN_ID}"
    settings = resolve()
    yield settings
    try:
        if not settings.redis_embedded:
            _remove_test_keys(settings)
        _drop_test_schema(settings)
        servers.stop(settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _drop_test_schema(settings) -> None:
    """The schema tests created their tables in (PostgreSQL only), with everything in it."""
    import sqlalchemy as sa

    if settings.database_url and not settings.database_url.startswith("postgres"):
        return
    if settings.database_embedded and not servers.status(settings)[1].running:
        return
    engine = servers.database_engine(settings, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{settings.schema}" CASCADE'))
    finally:
        engine.dispose()


def _remove_test_keys(settings) -> None:
    client = servers.redis_client(settings)
    with client:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def settings(lab_environment):
    return resolve()


def perflab_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    """Run the real ``perflab`` command in a subprocess; returns CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "perflab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def write_notebook(path: Path, *cells: str, params: str = "n: int = 1") -> Path:
    """A small notebook on the perflab kernel: a tagged parameters cell, then ``cells``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "perflab", "display_name": "perflab", "language": "python"}
    nbformat.write(nb, path)
    return path


CHROMIUM_FLAGS = (  # headless and offline: nothing fetched, no first-run work
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium() -> str:
    """Path of Chromium; skip where it is missing, except on CI, which must have it."""
    found = os.environ.get("PERFLAB_CHROMIUM") or shutil.which("chromium")
    if not found:
        if os.environ.get("CI"):
            pytest.fail(
                "Chromium is not installed; make test installs it (tools/system-packages.sh)"
            )
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return found


def screenshot(html: Path, out: Path, *, size: str = "1200,1600") -> Path:
    """Render ``html`` in real headless Chromium and save a PNG."""
    profile = out.parent / f"chromium-profile-{out.stem}"
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--screenshot={out}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out
