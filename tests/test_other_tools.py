"""Other tools' results, on files the real tools wrote in this test: pyperf (each run a worker
process), pytest-benchmark (with and without its samples) and asv; and perflab results written in
pyperf's format, read back by pyperf itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perflab import suites
from perflab.bench import History, compare

from .conftest import perflab_cli

SLOW, FAST = "sum(range(4000))", "sum(range(1000))"  # 4x the work: a verdict must say slower


def pyperf_timeit(out: Path, stmt: str) -> Path:
    """pyperf's own command: 6 worker processes of 4 values each (plus its calibration run)."""
    subprocess.run(
        [sys.executable, "-m", "pyperf", "timeit", "--name", "sum", "-p", "6", "-n", "4",
         "-w", "1", "-l", "200", "-q", "-o", str(out), stmt],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return out


def test_pyperf_runs_are_process_replicates_and_compare_with_a_verdict(tmp_path):
    fast = pyperf_timeit(tmp_path / "fast.json", FAST)
    slow = pyperf_timeit(tmp_path / "slow.json", SLOW)
    [a] = suites.load_results(fast)
    [b] = suites.load_results(slow)
    assert a.name == "sum" and a.replicate_level == "process"
    assert a.replicates == (4,) * 6  # the calibration run has no values and is left out
    assert a.meta["tool"] == "pyperf" and a.loops == 200
    assert 100 < a.center < 1e6  # ns per sum(range(1000)): pyperf's seconds, converted
    c = compare(a, b)
    assert c.verdict == "slower" and c.units == (6, 6) and c.ratio > 2
    done = perflab_cli("compare", str(fast), str(slow))
    assert done.returncode == 1, done.stdout + done.stderr  # a significant regression
    assert "slower" in done.stdout and "6v6" in done.stdout
    page = tmp_path / "page.html"
    done = perflab_cli("compare", str(fast), str(slow), "--html", str(page))
    assert done.returncode == 1 and "sum" in page.read_text()


def test_pytest_benchmark_samples_in_runs_and_a_summary_said_as_such(tmp_path):
    test_file = tmp_path / "test_work.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import os

            N = int(os.environ["WORK_N"])

            def test_work(benchmark):
                benchmark(sum, range(N))
            """
        )
    )

    def session(out: Path | None, n: int, *extra: str) -> Path | None:
        json_out = [f"--benchmark-json={out}"] if out else []
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file),
             "--benchmark-min-rounds=30", "--benchmark-max-time=0.2", *json_out, *extra],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "WORK_N": str(n)},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return out

    # 16x the work, five sessions a side: with 4x and three sessions, a loaded CI runner set
    # one session a side aside as contended and the two left could not call it
    for side, n in (("before", 1000), ("after", 16000)):
        (tmp_path / side).mkdir()
        for k in range(5):  # five sessions a side: five run replicates
            session(tmp_path / side / f"{k}.json", n)  # --benchmark-json keeps the samples
    [one] = suites.load_results(tmp_path / "before" / "0.json")
    assert one.name.endswith("test_work.py::test_work") and one.meta["tool"] == "pytest-benchmark"
    assert one.replicate_level == "round" and len(one.replicates) == 10
    # one session a side is one replicate a side: perflab will not call it
    done = perflab_cli("compare", str(tmp_path / "before" / "0.json"),
                       str(tmp_path / "after" / "0.json"))  # fmt: skip
    assert done.returncode == 0 and "inconclusive" in done.stdout, done.stdout + done.stderr
    # a folder of sessions a side: each session a replicate, and a verdict
    done = perflab_cli("compare", str(tmp_path / "before"), str(tmp_path / "after"))
    assert done.returncode == 1 and "slower" in done.stdout and "5v5" in done.stdout, done.stdout
    # its own storage without --benchmark-save-data: a summary, and the comparison says so
    session(None, 1000, "--benchmark-autosave", f"--benchmark-storage=file://{tmp_path}/store")
    [summary] = (tmp_path / "store").rglob("*.json")
    [s] = suites.load_results(summary)
    assert s.samples.size == 1 and "summary" in s.meta["summary_only"]
    done = perflab_cli("compare", str(summary), str(tmp_path / "after" / "0.json"))
    assert "inconclusive" in done.stdout and "--benchmark-save-data" in done.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="asv needs git")
def test_asv_results_reach_the_history(tmp_path):
    repo = tmp_path / "project"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "bench_sum.py").write_text(
        "def time_sum():\n    sum(range(1000))\n\n"
        # kept short: asv's --quick would not save results at all
        "time_sum.number = 200\ntime_sum.repeat = 6\ntime_sum.rounds = 2\n"
        "time_sum.warmup_time = 0.0\n\ndef track_answer():\n    return 42\n"
    )
    (repo / "asv.conf.json").write_text(
        json.dumps({"version": 1, "project": "demo", "repo": ".", "environment_type": "existing",
                    "benchmark_dir": "benchmarks", "results_dir": "results"})
    )  # fmt: skip
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "benchmarks"], check=True)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["asv", "machine", "--yes"], cwd=repo, env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    done = subprocess.run(  # --python=same saves results only under a commit it is given
        ["asv", "run", "--python=same", "--record-samples", "--show-stderr",
         "--set-commit-hash", head.stdout.strip()],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    files = [
        p
        for p in (repo / "results").rglob("*.json")
        if p.name not in ("machine.json", "benchmarks.json")  # asv's own lists, no results
    ]
    assert len(files) == 1, files
    results = suites.load_results(files[0])
    assert [r.name for r in results] == ["bench_sum.time_sum"]  # the track_ one is no duration
    assert results[0].meta["tool"] == "asv" and len(results[0].meta["git"]) == 40
    history = tmp_path / "history.sqlite"
    done = perflab_cli("history", "--add", str(files[0]), "--path", str(history))
    assert done.returncode == 0, done.stderr
    store = History(history, create=False)
    try:
        frame = store.frame()
    finally:
        store.close()
    assert list(frame["name"]) == ["bench_sum.time_sum"] and "asv" in frame["tags"][0]


def test_perflab_writes_pyperf_format_that_pyperf_reads(tmp_path):
    bench_file = tmp_path / "bench_work.py"
    bench_file.write_text("def bench_sum():\n    sum(range(500))\n")
    out = tmp_path / "ours.json"
    done = perflab_cli("bench", str(bench_file), "--quick", "--processes", "2",
                       "--out", str(out), "--format", "pyperf")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run([sys.executable, "-m", "pyperf", "show", str(out)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "bench_work/sum" in shown.stdout or "Mean +- std dev" in shown.stdout
    [back] = suites.load_results(out)  # and perflab reads its own pyperf file
    assert back.name == "bench_work/sum" and back.replicate_level == "process"
    assert back.n_replicates == 2


def test_a_damaged_foreign_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": "1.0", "benchmarks": [{"runs": [{"values": "x"}]}]}))
    done = perflab_cli("compare", str(bad), str(bad))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "bad.json" in done.stderr and "pyperf" in done.stderr
