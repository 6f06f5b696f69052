"""perflab's pytest plugin, loaded the way users get it (the ``pytest11`` entry point) in real
pytest sessions: timing with process replicates, saving, comparing, and failing only on a
conclusive slowdown."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from perflab import suites

TEST = textwrap.dedent(
    """
    import os

    N = int(os.environ["WORK_N"])

    def work(n):
        return sum(range(n))

    def test_sum(perflab_bench):
        assert perflab_bench(work, N) == N * (N - 1) // 2
    """
)


def session(folder: Path, n: int, *options: str) -> subprocess.CompletedProcess:
    (folder / "test_timed.py").write_text(TEST)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_timed.py",
         "--perflab-processes", "4", "--perflab-min-time", "0.05", *options],
        capture_output=True, text=True, timeout=300, cwd=folder,
        env={**os.environ, "WORK_N": str(n)},
    )  # fmt: skip


def test_the_fixture_times_in_process_replicates_and_saves_what_compare_reads(tmp_path):
    saved = tmp_path / "before.json"
    done = session(tmp_path, 2000, "--perflab-save", str(saved))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "perflab" in done.stdout and "4 process replicates" in done.stdout
    [r] = suites.load_results(saved)
    assert r.name == "test_timed.py::test_sum"
    assert r.replicate_level == "process" and r.n_replicates == 4
    assert r.reference.size == r.samples.size  # the machine's speed beside each sample


def test_a_conclusive_slowdown_fails_the_session_naming_it(tmp_path):
    saved = tmp_path / "before.json"
    assert session(tmp_path, 2000, "--perflab-save", str(saved)).returncode == 0
    done = session(tmp_path, 8000, "--perflab-compare", str(saved), "--perflab-fail-slower")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: test_timed.py::test_sum is slower" in done.stdout
    assert "95% CI [" in done.stdout
    assert "1 passed" in done.stdout  # the test itself passed: the session failed on timing
    # the same 4x at a 900 % threshold is no slowdown past the threshold: no failure
    done = session(
        tmp_path, 8000, "--perflab-compare", str(saved), "--perflab-fail-slower",
        "--perflab-threshold", "900%",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout


def test_sessions_in_the_history_compare_with_the_latest(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFLAB_HISTORY_URL", str(tmp_path / "history.sqlite"))
    assert session(tmp_path, 2000, "--perflab-history").returncode == 0
    done = session(tmp_path, 8000, "--perflab-compare", "history:latest:pytest",
                   "--perflab-history")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr  # no --perflab-fail-slower
    assert "compared with history:latest:pytest" in done.stdout
    assert "test_timed.py::test_sum:" in done.stdout and "slower" in done.stdout


def test_bad_options_are_usage_errors_before_any_test_runs(tmp_path):
    done = session(tmp_path, 10, "--perflab-fail-slower")
    assert done.returncode == 4 and "--perflab-fail-slower needs --perflab-compare" in done.stderr
    done = session(tmp_path, 10, "--perflab-compare", str(tmp_path / "missing.json"))
    assert done.returncode == 4 and "missing.json" in done.stderr
    done = session(tmp_path, 10, "--perflab-threshold", "fast")
    assert done.returncode == 4 and "'fast'" in done.stderr


def test_a_session_without_the_fixture_is_left_alone(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert True\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py",
         "--perflab-save", str(tmp_path / "none.json")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0 and "perflab" not in done.stdout
    assert not (tmp_path / "none.json").exists()
