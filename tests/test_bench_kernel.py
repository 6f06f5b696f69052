"""bench.run inside a real Jupyter kernel, whose own event loop is running."""

from __future__ import annotations

import json

import nbformat
import pytest

from .conftest import perflab_cli, write_notebook

pytestmark = pytest.mark.notebook


def test_bench_runs_sync_and_async_in_a_kernel(tmp_path):
    path = write_notebook(
        tmp_path / "bench.ipynb",
        "import asyncio\nfrom perflab import bench\n"
        "async def coro():\n    await asyncio.sleep(0)\n"
        "s = bench.run(lambda: None, name='sync', min_time=0.05)\n"
        "a = bench.run(coro, name='async', min_time=0.05)\n"
        "t = bench.run(coro, name='tasks', concurrency=4, min_time=0.05)\n"
        "print('modes', s.mode, a.mode, t.mode, s.median > 0, a.median > 0)",
        params="quick: bool = True",
    )
    done = perflab_cli("run", str(path), "--no-servers", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(tmp_path / "out" / "bench.ipynb", as_version=4)
    assert "modes sync async tasks True True" in json.dumps(executed.cells[-1].outputs)
