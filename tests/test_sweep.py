"""`perflab sweep` on a real Dask LocalCluster."""

from __future__ import annotations

import json

import nbformat
import pytest

from perflab.errors import ConfigurationError
from perflab.sweep import parse_grid

from .conftest import perflab_cli, write_notebook

pytestmark = pytest.mark.notebook


def test_parse_grid():
    assert parse_grid(["n=1,2", "mode=a"]) == {"n": ["1", "2"], "mode": ["a"]}
    for bad in (["n"], ["=1"], ["n="], ["n=1", "n=2"]):
        with pytest.raises(ConfigurationError):
            parse_grid(bad)


def test_a_2x2_grid_on_a_local_cluster_returns_four_results(tmp_path):
    path = write_notebook(
        tmp_path / "grid.ipynb", "print(f'{mode}-{n * 10}')", params="n: int = 1\nmode: str = 'a'"
    )
    out = tmp_path / "sweep"
    done = perflab_cli(
        "sweep", str(path), "--grid", "n=1,2", "--grid", "mode=x,y", "--out", str(out)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert sorted((r["n"], r["mode"]) for r in runs) == [(1, "x"), (1, "y"), (2, "x"), (2, "y")]
    assert all(r["ok"] for r in runs)
    printed = set()
    for r in runs:
        executed = nbformat.read(r["html"].replace(".html", ".ipynb"), as_version=4)
        printed.add(executed.cells[-1].outputs[0]["text"].strip())
    assert printed == {"x-10", "y-10", "x-20", "y-20"}
    index = (out / "index.html").read_text()
    assert index.count("run-00") == 4 and "All 4 notebooks ran" in index


def test_a_wrong_grid_value_is_refused_before_anything_runs(tmp_path):
    done = perflab_cli(
        "sweep",
        "notebooks/00-smoke.ipynb",
        "--grid",
        "samples=1,many",
        "--out",
        str(tmp_path / "s"),
    )
    assert done.returncode == 2 and "'samples'" in done.stderr and not (tmp_path / "s").exists()


def test_a_failed_point_says_why_and_dask_stays_quiet(tmp_path):
    # issue 28: a failure once showed only "FAILED … run-001/….html" (the cell and error were in
    # sweep.json) beside 35 lines of Dask's INFO log
    path = write_notebook(
        tmp_path / "fails.ipynb",
        "if n == 2:\n    raise ValueError(f'no data for n={n}')\nprint(n)",
    )
    done = perflab_cli("sweep", str(path), "--grid", "n=1,2", "--out", str(tmp_path / "sweep"))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("FAILED"))
    assert "ValueError" in lines[failed + 1] and "no data for n=2" in lines[failed + 1]
    assert "INFO" not in done.stderr and "distributed." not in done.stderr, done.stderr
