"""Instruction counts under real valgrind: per call, repeatable, and proportional to the work."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest

from perflab import bench
from perflab.bench import instructions
from perflab.errors import BenchmarkError

from .conftest import perflab_cli

pytestmark = pytest.mark.skipif(
    instructions.available() is None,
    reason="valgrind not installed (make test installs it: tools/system-packages.sh)",
)

FILE = textwrap.dedent(
    """
    def _loop(n):
        total = 0
        for i in range(n):
            total += i * i
        return total


    def bench_thousand():
        _loop(1000)


    def bench_eleven_hundred():
        _loop(1100)
    """
)


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    path = tmp_path_factory.mktemp("counted") / "loops.py"
    path.write_text(FILE)
    first = instructions.count_file(path, ["bench_thousand", "bench_eleven_hundred"])
    again = instructions.count_file(path, ["bench_thousand"])
    return path, first, again


def test_counts_are_per_call_named_and_in_their_own_unit(counted):
    _, (thousand, _), _ = counted
    assert thousand.name == "loops/thousand [instructions]" and thousand.unit == "instructions"
    assert thousand.n_replicates == len(instructions.SEEDS)
    # per call, not per process: a 1000-step loop is some 10^5-10^6 instructions of the
    # interpreter (574k on this CPython 3.11), while a whole process is billions
    assert 50_000 < thousand.figure < 5_000_000


def test_ten_percent_more_work_is_ten_percent_more_instructions(counted):
    _, (thousand, more), _ = counted
    assert more.figure / thousand.figure == pytest.approx(1.1, rel=0.02)
    c = bench.compare(thousand, dataclasses.replace(more, name=thousand.name), threshold=0.05)
    assert c.verdict == "slower"


def test_a_count_repeats_whatever_the_machine_does(counted):
    _, (thousand, _), again = counted
    # how many calls are counted comes from valgrind's count of one call, not a clock: the
    # same in both runs however loaded the machine, so the per-call figure repeats too (when
    # a clock sized it, a loaded runner counted fewer calls and read 0.8 % more per call)
    assert again[0].params["calls"] == thousand.params["calls"]
    assert again[0].figure == pytest.approx(thousand.figure, rel=1e-3)
    assert bench.compare(thousand, again[0]).verdict == "same"


def test_the_number_of_calls_can_be_fixed_and_is_checked(counted):
    path, (thousand, _), _ = counted
    fixed = instructions.count_calls(path, "bench_thousand", calls=40, seeds=(0,))
    assert fixed.params["calls"] == 40
    # fewer calls carry more of the warm-up each, but the count is the same loop's
    assert fixed.figure == pytest.approx(thousand.figure, rel=0.05)
    with pytest.raises(BenchmarkError, match="calls must be at least 1"):
        instructions.count_calls(path, "bench_thousand", calls=0)


def test_cli_counts_a_file_and_refuses_a_builtin_suite(counted, tmp_path):
    path, _, _ = counted
    out = tmp_path / "counts.json"
    done = perflab_cli("bench", str(path), "--instructions", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "loops/thousand [instructions]" in done.stdout
    saved = json.loads(out.read_text())
    assert {r["name"] for r in saved["results"]} == {
        "loops/thousand [instructions]",
        "loops/eleven_hundred [instructions]",
    }
    builtin = perflab_cli("bench", "data", "--instructions", "--out", str(tmp_path / "x.json"))
    assert builtin.returncode == 2 and "--instructions" in builtin.stderr
    assert len(builtin.stderr.strip().splitlines()) == 1


def test_a_failing_function_is_named(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def bench_fails():\n    raise ValueError('no data here')\n")
    with pytest.raises(BenchmarkError, match="bench_fails"):
        instructions.count_calls(path, "bench_fails")
