"""``perflab ab`` and the sequential rule behind ``bench.ab``: worktrees come and go (also when
interrupted) without touching the user's tree or index; bad input is one line and exit 2; the
paired interval cancels what both sides share; the stopping rule keeps its error under
repeated looks; duet pins each side to a core and swaps them."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from perflab.bench import sequential, stats
from perflab.bench.interleave import ab_sources, cores_for

from .conftest import ROOT

WORK = """import os, time
ROWS = {rows}
# {comment}
LOG = os.environ.get("AB_TEST_LOG")
if LOG:  # which tree this worker imported, and the cores it may run on
    with open(LOG, "a") as f:
        f.write(f"{{ROWS}} {{sorted(os.sched_getaffinity(0))}}\\n")


def bench_rows():
    return sorted(str(i) for i in range(ROWS))
"""


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit(repo: Path, rows: int, comment: str, name: str = "bench_rows.py") -> str:
    (repo / name).write_text(WORK.format(rows=rows, comment=comment))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", comment)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    _commit(repo, 300, "first")
    _commit(repo, 900, "three times the rows")
    # uncommitted work and a staged change: ab must leave both exactly as they are
    (repo / "notes.txt").write_text("draft")
    (repo / "staged.txt").write_text("staged")
    _git(repo, "add", "staged.txt")
    return repo


def _state(repo: Path) -> tuple[str, str, bytes, str]:
    index = (repo / ".git" / "index").read_bytes()
    worktrees = _git(repo, "worktree", "list", "--porcelain")
    return _git(repo, "status", "--porcelain"), _git(repo, "diff", "--cached"), index, worktrees


def _ab(repo: Path, *args: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "perflab", "ab", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )


def test_ab_of_two_revisions_answers_and_leaves_the_repository_as_it_was(repo, tmp_path):
    before = _state(repo)
    out = tmp_path / "ab.json"
    private = tmp_path / "tmp"  # where the worktrees go, to see that nothing is left there
    private.mkdir()
    env = {**os.environ, "TMPDIR": str(private)}
    args = ("HEAD~1", "HEAD", "bench_rows.py", "--budget", "30", "--out", str(out))
    done = _ab(repo, *args, env=env)
    assert done.returncode == 1, done.stderr  # three times the work: slower, exit 1
    assert "bench_rows/rows" in done.stdout and "slower" in done.stdout
    assert _state(repo) == before  # tree, index and the worktree list untouched
    assert not list(private.iterdir())
    doc = json.loads(out.read_text())
    assert doc["comparisons"][0]["verdict"] == "slower" and doc["comparisons"][0]["ratio"] > 2
    # perflab compare reads the file back and reaches the same verdict
    again = subprocess.run(
        [sys.executable, "-m", "perflab", "compare", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert again.returncode == 1 and "slower" in again.stdout, again.stderr


def test_the_working_tree_itself_can_be_a_side(repo):
    (repo / "bench_rows.py").write_text(WORK.format(rows=300, comment="uncommitted: fewer rows"))
    run = ab_sources("HEAD", ".", "bench_rows.py", where=repo, budget=30, seed=1)
    assert run.comparisons[0].verdict == "faster"  # 300 rows in the working tree, 900 in HEAD
    assert (repo / "bench_rows.py").read_text().count("fewer rows") == 1


def test_an_interrupted_ab_removes_its_worktrees(repo, tmp_path):
    slow = WORK.format(rows=300, comment="slow to import").replace(
        "import os, time", "import os, time\ntime.sleep(60)"
    )
    (repo / "bench_rows.py").write_text(slow)
    _git(repo, "add", "bench_rows.py")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "slow")
    before = _state(repo)
    private = tmp_path / "tmp"
    private.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "perflab", "ab", "HEAD~1", "HEAD", "bench_rows.py"],
        cwd=repo,
        env={**os.environ, "TMPDIR": str(private)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a deliverable SIGINT: started from a shell without job control it would be ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while _git(repo, "worktree", "list").count("\n") < 2:  # both worktrees exist
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)  # the workers are importing (and sleeping in) the benchmark file
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert _state(repo) == before
    assert not list(private.iterdir())


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["nosuchrev", "HEAD", "bench_rows.py"], "BASELINE 'nosuchrev': unknown revision"),
        (["--", "HEAD", "-oops", "bench_rows.py"], "CANDIDATE '-oops'"),
        (["HEAD~1", "HEAD", "missing.py"], "missing.py does not exist in BASELINE"),
        (["HEAD", "HEAD", "bench_rows.py", "--threshold", "lots"], "--threshold"),
        (["HEAD", "HEAD", "bench_rows.py", "--budget", "-3"], "--budget"),
        (["HEAD", "HEAD", "nosuite"], "TARGET 'nosuite'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(repo, args, culprit):
    before = _state(repo)
    done = _ab(repo, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("perflab: error: ") and done.stderr.count("\n") == 1
    assert culprit in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert _state(repo) == before


def test_a_file_on_one_side_only_names_that_side(repo):
    (repo / "new_bench.py").write_text(WORK.format(rows=10, comment="new"))
    done = _ab(repo, "HEAD", ".", "new_bench.py")  # the working tree has it, HEAD does not
    assert done.returncode == 2 and "does not exist in BASELINE HEAD" in done.stderr, done.stderr


def test_outside_a_repository_a_revision_is_exit_2(tmp_path):
    (tmp_path / "bench_rows.py").write_text(WORK.format(rows=10, comment="x"))
    done = _ab(tmp_path, "HEAD~1", ".", "bench_rows.py")
    assert done.returncode == 2, done.stderr
    assert "not in a git repository" in done.stderr and "HEAD~1" in done.stderr
    assert done.stderr.count("\n") == 1


def test_two_folders_need_no_git(tmp_path):
    for name, rows in (("old", 900), ("new", 300)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "bench_rows.py").write_text(WORK.format(rows=rows, comment=name))
    run = ab_sources("old", "new", "bench_rows.py", where=tmp_path, budget=30, seed=2)
    assert [c.verdict for c in run.comparisons] == ["faster"]


# --- the statistics, on simulated pairs -----------------------------------------------------


def test_the_paired_interval_cancels_a_drift_both_sides_share():
    rng = np.random.default_rng(3)
    drift = np.exp(rng.normal(0, 0.3, 20))  # each pair ran in a spell of its own, ±30 %
    base = 100.0 * drift * np.exp(rng.normal(0, 0.003, 20))
    cand = 103.0 * drift * np.exp(rng.normal(0, 0.003, 20))
    paired = sequential.paired_interval(np.log(cand) - np.log(base), 0.95)
    assert paired.ci_low < 1.03 < paired.ci_high and paired.ci_high - paired.ci_low < 0.01
    unpaired = stats.replicate_ratio(base, cand, confidence=0.95)
    assert unpaired.ci_high - unpaired.ci_low > 0.2  # the same data, unpaired, cannot tell


def _sequential_error(true_ratio: float, level: float, threshold: float, runs: int) -> dict:
    """Run the stopping rule on simulated pairs (log-ratio sd 3 %), as bench.ab does."""
    rng = np.random.default_rng(11)
    tally: dict[str, int] = {}
    for _ in range(runs):
        d = rng.normal(np.log(true_ratio), 0.03, sequential.MAX_PAIRS)
        stopper = sequential.Stopper(budget=1e9)

        def known(n: int, d: np.ndarray = d) -> bool:
            ci = sequential.paired_interval(d[:n], level)
            return sequential.decide(ci.ci_low, ci.ci_high, threshold) != "inconclusive"

        n = 0
        while not stopper.after_pair(n := n + 1, float(n), lambda n=n: known(n)):
            pass
        ci = sequential.paired_interval(d[: stopper.decided], level)
        verdict = sequential.decide(ci.ci_low, ci.ci_high, threshold)
        tally[verdict] = tally.get(verdict, 0) + 1
    return tally


def test_the_stopping_rule_keeps_its_error_under_repeated_looks():
    level = 1 - sequential.look_alpha(0.05)
    # A/A at a threshold no run can reach "same" at: every run looks until the last look, so
    # each look is a chance to call it different
    strict = _sequential_error(1.0, level, threshold=0.0001, runs=1_500)
    wrong = strict.get("slower", 0) + strict.get("faster", 0)
    assert wrong / 1_500 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 1_500), strict
    # an ordinary 95 % interval at every look would be wrong several times as often
    naive = _sequential_error(1.0, 0.95, threshold=0.0001, runs=1_500)
    assert naive.get("slower", 0) + naive.get("faster", 0) > 3 * max(wrong, 15), naive
    assert sequential.naive_error(0.05) > 0.15


def test_the_stopping_rule_answers_same_and_slower():
    level = 1 - sequential.look_alpha(0.05)
    aa = _sequential_error(1.0, level, threshold=0.05, runs=300)
    assert aa.get("same", 0) >= 290 and aa.get("slower", 0) + aa.get("faster", 0) <= 6, aa
    plus5 = _sequential_error(1.05, level, threshold=0.05, runs=300)
    # a change of exactly the threshold may read "same" only when the interval misses it
    assert plus5.get("slower", 0) >= 285 and "faster" not in plus5, plus5


def test_each_look_is_stricter_than_one_interval_and_the_looks_are_spaced():
    looks = sequential.schedule()
    assert looks[0] == sequential.MIN_PAIRS and looks[-1] == sequential.MAX_PAIRS
    assert all(b > a for a, b in itertools.pairwise(looks))
    assert 0.001 < sequential.look_alpha(0.05) < 0.05 / 2
    assert sequential.look_alpha(0.01) < sequential.look_alpha(0.05)


def test_a_budget_that_cannot_reach_the_next_look_stops_at_this_one():
    stopper = sequential.Stopper(budget=10.0)
    assert not stopper.after_pair(2, 60.0, lambda: False)  # never before the first look
    assert not stopper.after_pair(4, 4.0, lambda: False)  # the first look (5) still fits
    assert stopper.after_pair(5, 9.0, lambda: False)  # 6 pairs at 1.8 s each would not
    assert stopper.decided == 5


# --- duet ----------------------------------------------------------------------------------


def test_duet_cores_alternate_between_pairs():
    assert [cores_for(i, [0, 1]) for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="duet needs two cores")
def test_duet_pins_each_side_to_a_core_and_swaps_them(repo, tmp_path, monkeypatch):
    log = tmp_path / "workers.log"
    monkeypatch.setenv("AB_TEST_LOG", str(log))
    run = ab_sources("HEAD~1", "HEAD", "bench_rows.py", where=repo, duet=True, budget=60, seed=4)
    assert run.mode == "duet"
    cores = sorted(os.sched_getaffinity(0))[:2]
    lines = log.read_text().splitlines()
    baseline = [line.split(" ", 1)[1] for line in lines if line.startswith("300 ")]
    candidate = [line.split(" ", 1)[1] for line in lines if line.startswith("900 ")]
    assert baseline[:2] == [str([cores[0]]), str([cores[1]])]
    assert candidate[:2] == [str([cores[1]]), str([cores[0]])]


# --- check-history: a suspect between two commits is settled by an interleaved ab ----------


def _change(name: str, ratio: float, verdict: str) -> dict:
    return {
        "name": name, "at": 7, "git": "bbb", "saved": None, "before": 100.0,
        "after": 100.0 * ratio, "unit": "ns", "ratio": ratio, "ci_low": ratio - 0.1,
        "ci_high": ratio + 0.1, "runs_before": 5, "runs_after": 1, "reruns": 0, "noise": 0.03,
        "git_before": "aaa", "git_newest": "bbb", "verdict": verdict, "peer": None,
        "cause": None,
    }  # fmt: skip


def test_an_ab_confirms_clears_or_adds_regressions_and_the_line_says_how():
    import pandas as pd

    from perflab.cli.checks import regression_line
    from perflab.recheck import Confirmation, as_confirmed

    changes = pd.DataFrame(
        [
            _change("data/a", 1.3, "slower"),  # the history says slower; ab agrees
            _change("data/b", 1.2, "slower"),  # the history says slower; ab says same
            _change("data/c", 1.15, "inconclusive"),  # the history cannot tell; ab says slower
            _change("data/d", 1.25, "slower"),  # ab had no answer: the re-runs judged it
        ]
    )
    regressions = changes[changes["verdict"] == "slower"].reset_index(drop=True)

    def said(name: str, verdict: str, ratio: float) -> Confirmation:
        return Confirmation(name, verdict, ratio, ratio - 0.05, ratio + 0.05, 9, "aaa", "bbb")

    answered = {
        "data/a": said("data/a", "slower", 1.28),
        "data/b": said("data/b", "same", 1.01),
        "data/c": said("data/c", "slower", 1.14),
    }
    found = as_confirmed(regressions, changes, answered)
    assert sorted(found["name"]) == ["data/a", "data/c", "data/d"]
    lines = {row.name: regression_line(row) for row in found.itertuples()}
    assert "confirmed by an interleaved perflab ab of aaa and bbb: 1.280x" in lines["data/a"]
    assert "9 pairs" in lines["data/c"]
    assert "confirmed" not in lines["data/d"]


def test_a_suspect_whose_commits_git_cannot_find_is_left_to_the_reruns(tmp_path):
    import dataclasses

    import pandas as pd

    from perflab.recheck import confirm_by_ab
    from perflab.settings import resolve
    from perflab.suites import SuiteRun

    repo = tmp_path / "lab"
    (repo / "notebooks").mkdir(parents=True)
    _git(repo, "init", "-q")
    settings = dataclasses.replace(resolve(), notebooks_dir=repo / "notebooks")
    produced = {"data": SuiteRun("data", [bench_result("data/a")])}
    changes = pd.DataFrame([_change("data/a", 1.3, "slower")])
    assert confirm_by_ab(["data/a"], changes, produced=produced, settings=settings) == {}
    same = changes.assign(git_before="bbb")  # one commit on both sides: nothing to interleave
    assert confirm_by_ab(["data/a"], same, produced=produced, settings=settings) == {}


def bench_result(name: str):
    from perflab.bench import Result

    return Result(name=name, samples=[1.0, 2.0, 3.0])
