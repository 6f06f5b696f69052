"""Before/after pages for anyone's benchmarks: `perflab compare A B --html OUT` and notebook
06 through `perflab run`, opened in real headless Chromium."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perflab import report, suites
from perflab.bench import History, Result

from .conftest import perflab_cli
from .pages import assert_page_renders

EVIL = "<script>alert(1)</script>"


def side(path, *, cpu: str, scale: float, seed: int) -> str:
    """A results file of two benchmarks measured in 8 worker processes (replicates)."""
    rng = np.random.default_rng(seed)

    def result(name: str, centre: float, params: dict) -> Result:
        samples = np.concatenate(
            [centre * rng.lognormal(rng.normal(0, 0.01), 0.02, 40) for _ in range(8)]
        )
        return Result(
            name=name,
            samples=samples,
            replicates=(40,) * 8,
            replicate_level="process",
            params=params,
            meta={"cpu": cpu, "cpus": 2, "python": "3.11.7", "implementation": "CPython"},
        )

    run = suites.SuiteRun(
        suite="mine",
        results=[
            result(f"mine/{EVIL}", 10_000 * scale, {"size": f"<b>{EVIL}</b>"}),
            result("mine/steady", 2_000, {}),
        ],
    )
    suites.save_results(path, run)
    doc = json.loads(path.read_text())
    doc["meta"]["cpu"] = cpu  # as if measured there
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.browser
def test_compare_html_warns_about_different_machines_and_escapes_names(tmp_path):
    a = side(tmp_path / "a.json", cpu="Xeon at the office", scale=1.0, seed=1)
    b = side(tmp_path / "b.json", cpu="Laptop CPU", scale=0.5, seed=2)
    out = tmp_path / "before-after.html"
    done = perflab_cli("compare", a, b, "--html", str(out))
    assert done.returncode == 0, done.stderr  # faster is no regression
    page = out.read_text()
    assert "different machines" in page and "Xeon at the office vs Laptop CPU" in page
    assert EVIL not in page and "<b><script>" not in page and "&lt;b&gt;&lt;script" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "faster" in page and "0.50" in page  # the halved benchmark, judged
    assert page.count("<svg") >= 2  # one overlay per benchmark
    assert "<script" not in page  # nothing to run: an inline page of markup
    assert_page_renders(out, tmp_path / "compare.png", size="1200,1600")


def test_compare_html_alike_runs_have_no_warning_and_bad_sides_are_one_line_errors(tmp_path):
    a = side(tmp_path / "a.json", cpu="same", scale=1.0, seed=1)
    b = side(tmp_path / "b.json", cpu="same", scale=1.0, seed=3)
    page = report.compare_page(report.load_side(a), report.load_side(b))
    assert "different machines" not in page and "different versions" not in page
    done = perflab_cli(
        "compare", a, str(tmp_path / "missing.json"), "--html", str(tmp_path / "x.html")
    )
    assert done.returncode == 2 and "missing.json" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    empty = tmp_path / "h.sqlite"
    History(empty).close()
    done = perflab_cli("compare", "history:latest", a, env={"PERFLAB_HISTORY_URL": str(empty)})
    assert (
        done.returncode == 2 and "history:latest" in done.stderr and "0 report run" in done.stderr
    )


def test_history_selections_name_report_runs(tmp_path):
    store = History(tmp_path / "h.sqlite")
    for run, scale in (("r1", 1.0), ("r2", 2.0)):
        [first, *_] = suites.load_results(
            side(tmp_path / f"{run}.json", cpu="c", scale=scale, seed=4)
        )
        store.save(first, tags=["report", "quick", f"run:{run}"])
    store.close()
    latest = report.load_side("history:latest:quick", history=tmp_path / "h.sqlite")
    previous = report.load_side("history:previous", history=tmp_path / "h.sqlite")
    named = report.load_side("history:run:r1", history=tmp_path / "h.sqlite")
    assert latest.label == "report run r2" and previous.label == named.label == "report run r1"
    [c] = report.before_after(previous, latest)
    assert c.ratio == pytest.approx(2.0, rel=0.1) and c.verdict == "slower"


@pytest.mark.notebook
@pytest.mark.browser
def test_before_after_notebook_runs_through_perflab_run(tmp_path):
    a = side(tmp_path / "a.json", cpu="Xeon", scale=1.0, seed=1)
    b = side(tmp_path / "b.json", cpu="Laptop", scale=0.5, seed=2)
    out = tmp_path / "out"
    done = perflab_cli(
        "run", "notebooks/06-before-after.ipynb", "-p", "baseline", a, "-p", "candidate", b,
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    page = (out / "06-before-after.html").read_text()
    assert "different machines" in page and "Nothing to compare" not in page
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "faster" in page and page.count("<svg") >= 2
    assert_page_renders(out / "06-before-after.html", tmp_path / "06.png", size="1200,1600")
