"""`perflab run` and friends through the real command: real kernel, real servers. Errors must be
one line on stderr with the right exit code; failures must never look like success."""

from __future__ import annotations

import json

import nbformat
import pytest

from .conftest import ROOT, perflab_cli, write_notebook

pytestmark = pytest.mark.notebook
SMOKE = "notebooks/00-smoke.ipynb"


def one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("perflab: error: ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_version_and_help_on_every_command():
    done = perflab_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("perflab ")
    for args in (
        [],
        ["servers"],
        ["servers", "start"],
        ["servers", "status"],
        ["servers", "stop"],
        ["lab"],
        ["run"],
        ["report"],
    ):
        helped = perflab_cli(*args, "--help")
        assert helped.returncode == 0, args
        assert "usage: perflab" in helped.stdout


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], ["run"], ["servers", "restart"], ["run", SMOKE, "--timeout", "soon"]],
)
def test_usage_errors_are_one_line(args):
    one_line_error(perflab_cli(*args), 2)


def test_missing_notebook(tmp_path):
    err = one_line_error(perflab_cli("run", str(tmp_path / "nope.ipynb")), 2)
    assert "nope.ipynb" in err


def test_unknown_parameter_is_rejected_before_a_kernel_starts(tmp_path):
    done = perflab_cli("run", SMOKE, "-p", "sample", "3", "--out", str(tmp_path))
    err = one_line_error(done, 2)
    assert "unknown parameter 'sample'" in err and "samples" in err
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing written


def test_wrong_typed_parameter_is_rejected(tmp_path):
    err = one_line_error(
        perflab_cli("run", SMOKE, "-p", "samples", "abc", "--out", str(tmp_path)), 2
    )
    assert "'samples'" in err and "int" in err and "'abc'" in err


def test_repeated_parameter_is_rejected(tmp_path):
    done = perflab_cli("run", SMOKE, "-p", "samples", "1", "-p", "samples", "2")
    assert "'samples'" in one_line_error(done, 2)


def test_unreachable_url_fails_before_the_kernel(tmp_path):
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    done = perflab_cli("run", SMOKE, "--out", str(tmp_path), env={"PERFLAB_DATABASE_URL": url})
    err = one_line_error(done, 2)
    assert "127.0.0.1:1/nowhere" in err
    assert not (tmp_path / "00-smoke.ipynb").exists()


def test_failing_cell_is_named_and_exits_1(tmp_path):
    nb = write_notebook(tmp_path / "boom.ipynb", "a = 1", "b = n / 0", "c = 3")
    done = perflab_cli("run", str(nb), "--no-servers", "--out", str(tmp_path / "out"))
    err = one_line_error(done, 1)
    assert "cell 3/4 (b = n / 0)" in err and "ZeroDivisionError" in err
    executed = nbformat.read(tmp_path / "out" / "boom.ipynb", as_version=4)
    assert executed.metadata.papermill["exception"] is True
    html = (tmp_path / "out" / "boom.html").read_text()
    assert "ZeroDivisionError" in html


def test_timeout_never_looks_completed(tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb", "import time", "time.sleep(60)", "print('after')")
    done = perflab_cli(
        "run", str(nb), "--no-servers", "--timeout", "8", "--out", str(tmp_path / "out")
    )
    err = one_line_error(done, 1)
    assert "time limit" in err and "cell 3/4 (time.sleep(60))" in err
    executed = nbformat.read(tmp_path / "out" / "slow.ipynb", as_version=4)
    assert executed.metadata.papermill["exception"] is True
    code = [c for c in executed.cells if c.cell_type == "code"]
    by_source = {c.source: c.metadata.papermill["status"] for c in code}
    assert by_source["time.sleep(60)"] == "failed"
    assert by_source["print('after')"] == "pending"
    assert all("after" not in json.dumps(c.outputs) for c in code)
    html = (tmp_path / "out" / "slow.html").read_text()
    assert "Execution stopped in cell 3/4" in html


def test_parameters_reach_the_kernel_typed(tmp_path):
    nb = write_notebook(
        tmp_path / "p.ipynb",
        "assert isinstance(n, int) and isinstance(r, float) and isinstance(q, bool)\n"
        "print(f'got {n} {r} {q}')",
        params="n: int = 1\nr: float = 0.5\nq: bool = False",
    )
    done = perflab_cli(
        "run", str(nb), "--no-servers", "-p", "n", "7", "-p", "r", "3", "-p", "q", "yes",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(tmp_path / "out" / "p.ipynb", as_version=4)
    assert "got 7 3.0 True" in json.dumps(executed.cells[-1].outputs)


def test_kernel_runs_this_interpreter(tmp_path):
    import sys

    nb = write_notebook(tmp_path / "k.ipynb", "import sys; print(sys.executable)")
    done = perflab_cli("run", str(nb), "--no-servers", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(tmp_path / "out" / "k.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == sys.executable
    assert "without encryption" not in done.stderr


def test_source_notebooks_are_committed_without_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        assert nb.metadata.kernelspec["name"] == "perflab", path.name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs one cell tagged 'parameters'"
        assert "quick: bool" in tagged[0].source, path.name


def test_a_dying_kernel_is_a_failure_not_a_success(tmp_path):
    nb = write_notebook(tmp_path / "die.ipynb", "import os", "os._exit(3)", "print('after')")
    done = perflab_cli("run", str(nb), "--no-servers", "--out", str(tmp_path / "out"))
    err = one_line_error(done, 1)
    assert "cell 3/4 (os._exit(3))" in err
    executed = nbformat.read(tmp_path / "out" / "die.ipynb", as_version=4)
    assert executed.metadata.papermill["exception"] is True
    statuses = [c.metadata.get("papermill", {}).get("status") for c in executed.cells]
    assert "failed" in statuses and statuses[-1] == "pending"
