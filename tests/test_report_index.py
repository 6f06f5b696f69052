"""The index of a report run: headlines, trends, regressions from the history, the claims
audit as a forest plot, the environment, all escaped, opened in real headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest

from perflab import lab, suites
from perflab.bench import History, Result

from .pages import assert_page_renders

pytestmark = pytest.mark.browser

META = {"started (UTC)": "2026-01-01 00:00:00", "mode": "quick", "commit": "abc1234"}
NOTEBOOKS = [
    {"name": "02-query-runner", "html": "02-query-runner.html", "ok": True, "seconds": 3.2}
]


def result(name: str, centre: float, *, seed: int, rounds: int = 6, spread: float = 0.02) -> Result:
    """``rounds`` replicates of 50 samples around ``centre`` ns, one interleaved run."""
    rng = np.random.default_rng(seed)
    samples = np.concatenate(
        [centre * rng.lognormal(rng.normal(0, spread), 0.01, 50) for _ in range(rounds)]
    )
    return Result(
        name=name,
        samples=samples,
        replicates=(50,) * rounds,
        replicate_level="round",
        meta={"interleaved": "one-run", "cpu": "test cpu"},
    )


def db_run(speed: float, seed: int) -> suites.SuiteRun:
    return suites.SuiteRun(
        suite="db",
        results=[
            result("db/connect-per-query", 1_700_000, seed=seed),
            result("db/pooled-fetch", 34_000 * speed, seed=seed + 1),
        ],
    )


def write(tmp_path, run_name: str, produced, history_path):
    out = tmp_path / run_name
    out.mkdir()
    return lab.write_index(
        out,
        entries=NOTEBOOKS,
        meta=META,
        produced=produced,
        published_by={"02-query-runner": ["db"]},
        history=History(history_path),
    )


def test_index_shows_headlines_trend_and_a_seeded_regression_by_name(tmp_path):
    history = tmp_path / "history.sqlite"
    for i in range(6):  # six steady runs, then this one: pooled fetch 1.6x slower
        write(tmp_path, f"run{i}", {"db": db_run(1.0, seed=10 * i)}, history)
    index, regressions, _ = write(tmp_path, "run6", {"db": db_run(1.6, seed=99)}, history)

    assert list(regressions["name"]) == ["db/pooled-fetch"]
    page = index.read_text()
    regressions_section = page.split("Regressions against earlier quick reports", 1)[1]
    assert "db/pooled-fetch" in regressions_section.split("<h2>", 1)[0]
    assert "Connect per query → pooled fetch" in page
    assert "<polyline" in page  # the trend over the last runs
    assert "since the previous run" in page and "first run" not in page
    assert "e+0" not in page  # no scientific notation anywhere
    assert "Environment and noise" in page and "abc1234" in page
    assert_page_renders(index, tmp_path / "index.png", size="1300,1800")


def test_index_of_a_first_run_says_so_and_escapes_names(tmp_path):
    produced = {"db": db_run(1.0, seed=1)}
    notebooks = [{**NOTEBOOKS[0], "name": "<img src=x onerror=alert(2)>"}]
    out = tmp_path / "first"
    out.mkdir()
    index, regressions, _ = lab.write_index(
        out,
        entries=notebooks,
        meta={**META, "commit": "<b>x</b>"},
        produced=produced,
        published_by={"<script>nb</script>": ["db"]},
        history=History(tmp_path / "h.sqlite"),
    )
    page = index.read_text()
    assert regressions.empty
    assert "<script>" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;nb&lt;/script&gt;" in page and "&lt;img src=x" in page
    assert "first run" in page  # no earlier run to compare with
    assert "None: no benchmark" in page
    assert_page_renders(index, tmp_path / "first.png", size="1200,900")
