"""`perflab run` and friends through the real command: real kernel, real servers. Errors must be
one line on stderr with the right exit code; failures must never look like success."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
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
        if nb.metadata.get("perflab", {}).get("report", True):
            # the report's notebooks take its --quick; 07-09 take the system to point at
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


LOOP = (
    "import os, pathlib\n"
    "pathlib.Path({marker!r}).write_text(str(os.getpid()))\n"
    "while True:\n"
    "    pass"
)


def _deliverable_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_leaves_the_same_honest_marks_as_a_timeout(tmp_path, sig, code):
    marker = tmp_path / "kernel.pid"
    nb = write_notebook(
        tmp_path / "loop.ipynb", "a = 1", LOOP.format(marker=str(marker)), "print('after')"
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "perflab", "run", str(nb), "--no-servers", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # a shell without job control starts background commands with SIGINT ignored, and the
        # child would inherit that (as POSIX wants): the test asks for a deliverable SIGINT
        preexec_fn=_deliverable_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text()) and proc.poll() is None:
            assert time.monotonic() < deadline, "the kernel never reached the looping cell"
            time.sleep(0.1)
        kernel_pid = int(marker.read_text())
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=180)  # a hang guard: a loaded CI runner is slow
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert f"interrupted by {sig.name}" in stderr and "cell 3/4 (import os, pathlib)" in stderr
    executed = nbformat.read(out / "loop.ipynb", as_version=4)
    assert executed.metadata.papermill["exception"] is True
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    status = {c.source.splitlines()[0]: c.metadata.papermill["status"] for c in code_cells}
    assert status["a = 1"] == "completed"
    assert status["import os, pathlib"] == "failed"
    assert status["print('after')"] == "pending"
    html = (out / "loop.html").read_text()
    assert "Execution stopped in cell 3/4" in html and sig.name in html
    gone = not psutil.pid_exists(kernel_pid) or (
        psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE
    )
    assert gone, "the interrupted run left its kernel running"


CHILD = (
    "import os, signal, sys, time\n"
    "def bye(*_):\n"
    "    open(sys.argv[1] + '.term', 'w').write('TERM')\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "time.sleep(120)\n"
)


def test_sigterm_to_a_parent_of_a_child_server_stops_and_waits_for_the_child(tmp_path):
    """What `perflab lab` does with JupyterLab (perflab.cli._run_child): SIGTERM is forwarded,
    the child is waited for, the parent exits 143."""
    marker = tmp_path / "child.pid"
    parent = (
        "import os, sys; from perflab.cli import _run_child; "
        f"argv = [sys.executable, '-c', {CHILD!r}, {str(marker)!r}]; "
        "sys.exit(_run_child(argv, dict(os.environ)))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", parent], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        child = int(marker.read_text())
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=180)  # a hang guard: a loaded CI runner is slow
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert stderr.strip() == "perflab: stopped (SIGTERM)"
    assert (tmp_path / "child.pid.term").read_text() == "TERM"  # the child got the signal
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_a_notebook_without_kernelspec_runs_on_the_perflab_kernel_with_parameters(tmp_path):
    """papermill needs a language to inject parameters ("No language found", a traceback);
    perflab runs every notebook on its own Python kernel, so it says so."""
    nb = write_notebook(tmp_path / "bare.ipynb", "print(f'n={n}')")
    doc = json.loads(nb.read_text())
    del doc["metadata"]["kernelspec"]
    nb.write_text(json.dumps(doc))
    done = perflab_cli("run", str(nb), "--no-servers", "-p", "n", "5", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(tmp_path / "o" / "bare.ipynb", as_version=4)
    assert "n=5" in json.dumps(executed.cells[-1].outputs)


def test_a_password_in_a_url_parameter_reaches_the_kernel_but_no_saved_file(tmp_path):
    url = "postgresql://analyst:s3cr3t-pw@db.example:5432/shop"
    nb = write_notebook(
        tmp_path / "url.ipynb",
        "print('kernel saw the password:', 'cr3t-p' in database_url)",
        params='database_url: str = ""',
    )
    out = tmp_path / "out"
    done = perflab_cli("run", str(nb), "--no-servers", "-p", "database_url", url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    saved = (out / "url.ipynb").read_text()
    assert "kernel saw the password: True" in saved  # the run itself had the real URL
    assert "s3cr3t-pw" not in saved and "analyst" in saved and "db.example" in saved
    assert "s3cr3t-pw" not in (out / "url.html").read_text()


def test_kernels_get_absolute_paths_even_from_relative_settings(tmp_path, monkeypatch):
    # `perflab report --out outputs/x` once handed kernels (which run in the notebook's folder)
    # a relative results folder: their suites published elsewhere and the audit saw nothing
    from perflab.notebooks.kernel import kernel_environ
    from perflab.settings import Settings

    monkeypatch.chdir(tmp_path)
    env = kernel_environ(
        Settings(results_dir=Path("out/results"), history_url="out/history.sqlite")
    )
    assert env["PERFLAB_RESULTS"] == str(tmp_path / "out" / "results")
    assert env["PERFLAB_HISTORY_URL"] == str(tmp_path / "out" / "history.sqlite")
    assert Path(env["PERFLAB_OUTPUTS"]).is_absolute()
