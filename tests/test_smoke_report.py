"""The smoke notebook and `perflab report` end to end: real servers, real kernel, and the HTML
they write opened in real headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from .conftest import perflab_cli, screenshot, write_notebook
from .pages import assert_not_blank, assert_page_renders

pytestmark = [pytest.mark.servers, pytest.mark.notebook]


def assert_one_file_without_code(html: str) -> None:
    assert "data:image/png;base64," in html  # the plot, inline
    assert re.search(r"<script[^>]+src=", html) is None  # nothing fetched from elsewhere
    assert "<link" not in html or 'rel="stylesheet" href="http' not in html
    # no code cell input: neither the editor markup nor the notebook's own code
    assert re.search(r'class="[^"]*(jp-InputArea-editor|jp-CodeMirrorEditor)', html) is None
    assert "smoke.roundtrips(" not in html and "from perflab import" not in html


def test_smoke_notebook_runs_and_renders(tmp_path):
    done = perflab_cli(
        "run", "notebooks/00-smoke.ipynb", "-p", "quick", "true", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    html_path = tmp_path / "00-smoke.html"
    html = html_path.read_text()
    assert_one_file_without_code(html)
    assert "redis (n=200" in html or "redis" in html
    assert "run parameter" in html and "quick" in html
    png = screenshot(html_path, tmp_path / "smoke.png")
    assert_not_blank(png)


LAB = [
    "00-smoke",
    "01-cache-tiers",
    "02-query-runner",
    "03-data-and-concurrency",
    "04-api",
    "05-claims-audit",
    "06-before-after",
]


def test_report_runs_every_lab_notebook_and_each_page_renders(tmp_path):
    out = tmp_path / "report"
    done = perflab_cli("report", "--quick", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # where it is, as plain lines (not a terminal): each notebook and cell, elapsed and an
    # estimate of what is left (the notebooks declare their seconds before any earlier run)
    for i, name in enumerate(LAB, 1):
        assert f"[{i}/{len(LAB)}] {name} · cell " in done.stderr, done.stderr
    assert "left" in done.stderr and "\r" not in done.stderr
    assert all(line.startswith("ok ") for line in done.stdout.splitlines()[:-1]), done.stdout
    index = (out / "index.html").read_text()
    assert f"All {len(LAB)} notebooks ran" in index
    run = json.loads((out / "run.json").read_text())
    assert run["format"] == 1 and run["meta"]["mode"] == "quick"
    assert [nb["name"] for nb in run["notebooks"]] == LAB
    assert all(nb["ok"] and nb["parameters"] == {"quick": True} for nb in run["notebooks"])
    for name in LAB:
        assert f'href="{name}.html"' in index
        html = (out / f"{name}.html").read_text()
        assert re.search(r"<script[^>]+src=", html) is None and "Traceback" not in html
        assert "e+0" not in re.sub(r"data:image/png;base64,[^\"]+", "", html)  # no 1e+03
        assert_page_renders(out / f"{name}.html", tmp_path / f"{name}.png", size="1100,1400")
    assert "confirmed" in (out / "05-claims-audit.html").read_text()
    assert "n &lt; 100" in (out / "03-data-and-concurrency.html").read_text()
    assert "<svg" in (out / "03-data-and-concurrency.html").read_text()  # the flame graph
    # the index is the report: headlines with CIs, the claims as a forest plot, the machine
    assert "Headlines" in index and "95 % CI" in index and "PK fetch" in index
    assert "measured ÷ claimed" in index and "Environment and noise" in index
    assert "Regressions against earlier quick reports" in index
    assert_page_renders(out / "index.html", tmp_path / "index.png", size="1200,1400")


def test_report_default_folder_and_latest_link(tmp_path, settings):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    (notebooks / "00-smoke.ipynb").write_bytes(
        (Path(__file__).parent.parent / "notebooks" / "00-smoke.ipynb").read_bytes()
    )
    done = perflab_cli("report", "--quick", env={"PERFLAB_NOTEBOOKS": str(notebooks)})
    assert done.returncode == 0, done.stderr
    latest = settings.outputs_dir / "latest"
    assert latest.is_symlink() and (latest / "index.html").exists()
    assert latest.resolve().parent == settings.outputs_dir.resolve()


def test_report_fails_naming_the_notebook_and_cell(tmp_path):

    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    for name, body in (("01-good", "x = 1"), ("02-bad", "raise ValueError('broken on purpose')")):
        write_notebook(notebooks / f"{name}.ipynb", body, params="quick: bool = False")
    done = perflab_cli(
        "report",
        "--quick",
        "--out",
        str(tmp_path / "out"),
        env={"PERFLAB_NOTEBOOKS": str(notebooks)},
    )
    assert done.returncode == 1
    assert "02-bad" in done.stdout and "cell 2/2" in done.stdout and "ValueError" in done.stdout
    index = (tmp_path / "out" / "index.html").read_text()
    assert "1 of 2 notebooks failed" in index
    assert (tmp_path / "out" / "01-good.html").exists() and (
        tmp_path / "out" / "02-bad.html"
    ).exists()


def test_a_notebook_that_does_not_publish_its_declared_suites_fails_the_report(tmp_path):
    import nbformat

    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    body = (
        "from perflab import bench, suites\n"
        "r = bench.Result(name='mini/op', samples=[1000.0, 1001.0, 999.0])\n"
        "suites.publish(suites.SuiteRun('mini', [r]), {where})"
    )
    for name, where in (("01-kept", "None"), ("02-astray", repr(str(tmp_path / "elsewhere")))):
        path = write_notebook(
            notebooks / f"{name}.ipynb", body.format(where=where), params="quick: bool = False"
        )
        nb = nbformat.read(path, as_version=4)
        nb.metadata["perflab"] = {"publishes": ["mini"] if name == "01-kept" else ["other"]}
        nbformat.write(nb, path)
    out = tmp_path / "out"
    done = perflab_cli(
        "report", "--quick", "--out", str(out), env={"PERFLAB_NOTEBOOKS": str(notebooks)}
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ok     01-kept" in done.stdout
    assert "FAILED 02-astray" in done.stdout
    assert "published no results of suite(s) other" in done.stdout
    assert str(out / "results") in done.stdout
    run = json.loads((out / "run.json").read_text())
    assert [nb["ok"] for nb in run["notebooks"]] == [True, False]
    assert "1 of 2 notebooks failed" in (out / "index.html").read_text()


def _mini_notebook(notebooks: Path, counter: Path) -> None:
    """A notebook publishing one benchmark, mini/op: 2000 ns on its first run, and on later
    runs (the re-runs) what ``counter``'s file says: slow (2000, a real change) or 1000 (the
    first run was a slow spell of the machine)."""
    write_notebook(
        notebooks / "01-mini.ipynb",
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from perflab import bench, suites\n"
        f"state = Path({str(counter)!r})\n"
        "runs, later = state.read_text().split()\n"
        "state.write_text(f'{int(runs) + 1} {later}')\n"
        "level = 2000 if runs == '0' else float(later)\n"
        "samples = np.random.default_rng(int(runs)).normal(level, 20, 200)\n"
        "r = bench.Result(name='mini/op', samples=samples, replicates=(20,) * 10)\n"
        "suites.publish(suites.SuiteRun('mini', [r]))",
        params="quick: bool = False",
    )


def _earlier_quick_reports(settings) -> None:
    from perflab import bench

    store = bench.History(settings.outputs_dir / "history.sqlite")
    rng = np.random.default_rng(0)
    for _ in range(4):  # earlier quick reports: twice as fast
        run_level = rng.normal(1000, 20)
        samples = rng.normal(run_level, 10, 200)
        store.save(bench.Result(name="mini/op", samples=samples), tags=["report", "quick"])
    for _ in range(4):  # full reports are judged apart and never mix with quick ones
        store.save(bench.Result(name="mini/op", samples=rng.normal(4000, 10, 200)), tags=["full"])
    store.close()


def test_report_check_history_reruns_and_flags_a_regression(tmp_path, settings):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    counter = tmp_path / "counter"
    counter.write_text("0 2000")
    _mini_notebook(notebooks, counter)
    _earlier_quick_reports(settings)
    env = {"PERFLAB_NOTEBOOKS": str(notebooks)}
    plain = perflab_cli("report", "--quick", "--out", str(tmp_path / "a"), env=env)
    assert plain.returncode == 0, plain.stdout + plain.stderr  # without the check: fine
    assert counter.read_text().split()[0] == "1"  # and nothing re-ran
    checked = perflab_cli(
        "report", "--quick", "--check-history", "--out", str(tmp_path / "b"), env=env
    )
    assert checked.returncode == 1 and "REGRESSION mini/op" in checked.stdout
    assert "with 2 re-runs" in checked.stdout
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["regressions"][0]["name"] == "mini/op" and run["regressions"][0]["reruns"] == 2
    figures = run["rechecks"]["figures"]["mini/op"]
    assert len(figures) == 2 and all(f > 1500 for f in figures)
    assert (tmp_path / "b" / "rechecks" / "2" / "01-mini.html").exists()


def test_report_check_history_lets_a_slow_spell_pass_when_reruns_are_back(tmp_path, settings):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    counter = tmp_path / "counter"
    counter.write_text("0 1000")  # re-runs measure the old level: the first run was unlucky
    _mini_notebook(notebooks, counter)
    _earlier_quick_reports(settings)
    checked = perflab_cli(
        "report",
        "--quick",
        "--check-history",
        "--out",
        str(tmp_path / "b"),
        env={"PERFLAB_NOTEBOOKS": str(notebooks)},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "REGRESSION" not in checked.stdout
    assert counter.read_text().split()[0] == "3"  # the report's run and two re-runs
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["regressions"] == []
    assert len(run["rechecks"]["figures"]["mini/op"]) == 2
