"""The harness under faults (issue 28): odd samples, odd exits, odd paths, concurrent writers,
damaged and read-only histories. Every case ends in a right answer or a one-line refusal with
the documented exit code (0 same/faster, 1 slower or a failed benchmark, 2 bad input)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from perflab.bench import History, Result
from perflab.errors import ConfigurationError

from .conftest import ROOT, perflab_cli

BENCH = """
import json
DOC = json.dumps({{"rows": list(range({n}))}})


def bench_decode():
    return json.loads(DOC)
"""


def one_line_error(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, Path]:
    """Two results files the real `perflab bench` wrote: the second ~10x slower. (3x with two
    processes a side once read "inconclusive" on a loaded CI runner: these tests are about
    faults, so the difference is one no machine here can hide.)"""
    folder = tmp_path_factory.mktemp("faults")
    out = []
    for n, name in ((200, "fast"), (3000, "slow")):
        target = folder / "work.py"
        target.write_text(BENCH.format(n=n))
        path = folder / f"{name}.json"
        done = perflab_cli("bench", str(target), "--quick", "--processes", "3", "--out", str(path))
        assert done.returncode == 0, done.stderr
        out.append(path)
    return out[0], out[1]


# --- odd samples ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e9])
def test_a_non_finite_or_negative_sample_is_refused_never_judged(results, tmp_path, bad):
    fast, slow = results
    doc = json.loads(slow.read_text())
    doc["results"][0]["samples"][3] = bad
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(doc))  # json writes NaN / Infinity, as a NumPy dump would
    line = one_line_error(perflab_cli("compare", str(fast), str(damaged)))
    assert "damaged.json" in line and "work/decode" in line and "sample 3" in line


def test_results_refuse_bad_samples_when_built():
    with pytest.raises(Exception, match="not finite durations"):
        Result(name="x", samples=[1.0, float("nan")])


# --- odd exits --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3])
def test_a_benchmark_that_calls_sys_exit_fails_loudly(tmp_path, code):
    target = tmp_path / "exits.py"
    target.write_text(f"import sys\n\n\ndef bench_quits():\n    sys.exit({code})\n")
    out = tmp_path / "x.json"
    done = perflab_cli("bench", str(target), "--processes", "1", "--out", str(out), "-q")
    line = one_line_error(done, code=1)
    assert f"sys.exit({code})" in line and "exits/quits" in line


FINE = "import time\n\n\ndef bench_fine():\n    return sum(range(100))\n\n\n"
BROKEN = "def bench_bad():\n    raise ValueError('no data')\n"
HUNG = "def bench_bad():\n    while True:\n        time.sleep(0.01)\n"


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize(
    ("body", "why"), [(BROKEN, "ValueError: no data"), (HUNG, "timed out after 2 s")]
)
def test_a_failing_or_hung_benchmark_keeps_the_others_results(tmp_path, processes, body, why):
    target = tmp_path / "mixed.py"
    target.write_text(FINE + body)
    out = tmp_path / "mixed.json"
    argv = ("bench", str(target), "--quick", "--processes", processes, "--out", str(out), "-q")
    line = one_line_error(perflab_cli(*argv, "--timeout", "2"), code=1)
    assert "mixed/bad" in line and why in line
    doc = json.loads(out.read_text())
    assert [r["name"] for r in doc["results"]] == ["mixed/fine"]
    assert list(doc["failed"]) == ["mixed/bad"]


# --- odd paths --------------------------------------------------------------------------------


def saved_history(path: Path, results_file: Path) -> Path:
    """A history at ``path`` holding the first result of a results file."""
    store = History(path)
    store.save(Result.from_dict(json.loads(results_file.read_text())["results"][0]))
    store.close()
    return path


def test_a_mistyped_history_path_is_an_error_and_creates_nothing(tmp_path):
    typo = tmp_path / "histroy.sqlite"
    line = one_line_error(perflab_cli("history", "--check", "--path", str(typo)))
    assert "no history at" in line and str(typo) in line
    assert not typo.exists()
    assert perflab_cli("history", "--path", str(typo)).returncode == 2
    assert not typo.exists()


def test_a_history_without_the_benchmark_asked_for_is_not_no_regressions(results, tmp_path):
    fast, _ = results
    path = saved_history(tmp_path / "h.sqlite", fast)
    done = perflab_cli("history", "--check", "--path", str(path), "--name", "nope/x")
    line = one_line_error(done)
    assert "nothing to check" in line and "nope/x" in line


def test_a_damaged_history_is_one_line_and_exit_2(results, tmp_path):
    fast, slow = results
    path = saved_history(tmp_path / "h.sqlite", fast)
    data = bytearray(path.read_bytes())
    data[100:4000] = os.urandom(3900)  # the schema page and beyond: garbage
    path.write_bytes(bytes(data))
    for argv in (
        ("history", "--check", "--path", str(path)),
        ("history", "--path", str(path)),
        ("compare", str(fast), str(slow), "--history", str(path)),
    ):
        line = one_line_error(perflab_cli(*argv))
        assert str(path) in line and "history" in line


def test_a_file_that_is_no_history_is_named(tmp_path):
    path = tmp_path / "other.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (x int)"))
    engine.dispose()
    line = one_line_error(perflab_cli("history", "--check", "--path", str(path)))
    assert "holds no perflab history" in line


def test_reading_a_history_writes_nothing(results, tmp_path):
    fast, _ = results
    path = saved_history(tmp_path / "h.sqlite", fast)
    before = path.read_bytes()
    reader = History(path, create=False)  # opened read-only (a read-only file or mount)
    assert len(reader.frame()) == 1
    with pytest.raises(ConfigurationError, match="cannot write the history"):
        reader.save(Result(name="x", samples=[1.0, 2.0]))
    reader.close()
    assert path.read_bytes() == before
    done = perflab_cli("history", "--check", "--path", str(path))
    assert done.returncode == 0 and "no regressions" in done.stdout
    assert path.read_bytes() == before


def test_an_html_page_with_a_non_utf8_path_is_written_whole(results, tmp_path):
    fast, slow = results
    odd = os.fsencode(tmp_path) + b"/page-\xff.html"
    done = subprocess.run(
        [sys.executable, "-m", "perflab", "compare", str(fast), str(slow), "--html", odd],
        capture_output=True,
        cwd=ROOT,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr  # slower: the verdict, not a crash
    assert b"Traceback" not in done.stderr
    page = Path(os.fsdecode(odd))
    assert page.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


# --- concurrent writers -----------------------------------------------------------------------


def _open_and_save(location: str, schema: str | None, n: int, barrier) -> str:
    barrier.wait()  # all open the new history at the same moment
    try:
        store = History(location, schema=schema)
        store.save(Result(name=f"w/{n}", samples=[1.0 + n, 2.0 + n]))
        store.close()
    except (ConfigurationError, sa.exc.SQLAlchemyError) as err:  # the test fails naming it
        return f"{type(err).__name__}: {err}"
    return "ok"


def _rows(location: str, schema: str | None) -> int:
    store = History(location, schema=schema, create=False)
    try:
        return len(store.frame())
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def test_eight_runners_opening_a_new_history_at_once_lose_nothing(kind, tmp_path, settings):
    from perflab import servers

    context = multiprocessing.get_context("spawn")
    for attempt in range(2):
        schema = None
        if kind == "sqlite":
            location = str(tmp_path / f"shared-{attempt}.sqlite")
        else:
            location = servers.start(settings, redis=False).database_url
            schema = f"hist_{uuid.uuid4().hex[:8]}"
        with context.Manager() as manager:
            barrier = manager.Barrier(8)
            with context.Pool(8) as pool:
                outcomes = pool.starmap(
                    _open_and_save, [(location, schema, n, barrier) for n in range(8)]
                )
        try:
            assert outcomes == ["ok"] * 8
            assert _rows(location, schema) == 8
        finally:
            if schema is not None:
                engine = sa.create_engine(
                    location.replace("postgresql://", "postgresql+psycopg://")
                )
                with engine.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                engine.dispose()


# --- perflab ab with a benchmark that hangs -----------------------------------------------------


def test_ab_stops_a_hung_benchmark_at_its_timeout(tmp_path):
    hung = "import time\n\n\ndef bench_hung():\n    while True:\n        time.sleep(0.01)\n"
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "bench_hang.py").write_text(hung)
    done = subprocess.run(
        [sys.executable, "-m", "perflab", "ab", "old", "new", "bench_hang.py", "--timeout", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    line = one_line_error(done, code=1)
    assert "hung" in line and "no answer within 2 s" in line
