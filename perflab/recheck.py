"""Re-run what looks slower before a nightly check fails on it.

Why: one report is one run of every benchmark, and on this 2-core VM whole reports of unchanged
code differ by ~4 % sd (the first of a series is often an outlier). The history judges the newest
run against the runs before it, so after a single run a real 20 % step read 1.12x, 99 % CI
0.89-1.41 (inconclusive), while an unlucky run of unchanged code could read slower. A re-run
settles both: the notebooks that measured the suspects run again, in fresh kernels, into
``<report>/rechecks/<k>/``, and their figures join the newest run's side of the judgement
(``History.regressions(reruns=...)``). A slowdown that was the machine's spell is gone in the
re-runs; a real one is seen two or three times. pyperf and asv ask the user to re-run by hand;
a scheduled job can afford to.

The re-runs are not saved into the history: they were taken minutes apart, so as runs they would
understate how much nights differ. Their limit: a spell of the machine that lasts through the
re-runs too looks like a real change (``cause`` "environment" in the history catches it only for
benchmarks with an interleaved peer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from perflab import suites
from perflab.errors import NotebookError
from perflab.notebooks import NotebookRun, run_notebook
from perflab.settings import Settings

__all__ = ["RERUNS", "Recheck", "rerun_suspects"]

#: Extra runs of each notebook that measured a suspect: with one, a 20 % step on a benchmark
#: whose reports differ by 4 % sd sits near the edge of a 99 % interval from 5 earlier runs;
#: with two it clears it (benchmarks/report_history.py).
RERUNS = 2


@dataclasses.dataclass
class Recheck:
    """What the re-runs measured: figures per suspect name, and every notebook run made."""

    figures: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    runs: list[NotebookRun] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": self.figures,
            "notebooks": [
                {"name": r.notebook.stem, "html": str(r.html), "ok": r.ok, "error": r.error}
                for r in self.runs
            ],
        }


def owners(
    names: Sequence[str],
    produced: Mapping[str, suites.SuiteRun],
    published_by: Mapping[str, Sequence[str]],
) -> list[str]:
    """The notebooks (stems, in run order) whose suites produced ``names``."""
    suite_of = {r.name: suite for suite, run in produced.items() for r in run.results}
    wanted = {suite_of[n] for n in names if n in suite_of}
    return [nb for nb, published in published_by.items() if wanted & set(published)]


def rerun_suspects(
    names: Sequence[str],
    *,
    notebooks: Mapping[str, Path],
    produced: Mapping[str, suites.SuiteRun],
    published_by: Mapping[str, Sequence[str]],
    parameters: Callable[[Path], dict[str, Any]],
    out: Path,
    settings: Settings,
    timeout: float | None = None,
    reruns: int = RERUNS,
    on_done: Callable[[NotebookRun], None] | None = None,
) -> Recheck:
    """Run the notebooks that measured ``names`` ``reruns`` more times (in turn, so each re-run
    of one is spread out by the others) and collect each name's figure per re-run. A re-run
    notebook that fails is recorded in ``Recheck.runs`` and adds no figure."""
    found = Recheck(figures={n: [] for n in names})
    stems = owners(names, produced, published_by)
    for k in range(1, reruns + 1):
        for stem in stems:
            folder = out / "rechecks" / str(k)
            here = dataclasses.replace(settings, results_dir=folder / "results" / stem)
            here.results_dir.mkdir(parents=True, exist_ok=True)
            path = notebooks[stem]
            try:
                run = run_notebook(
                    path,
                    parameters(path),
                    out_dir=folder,
                    timeout=timeout,
                    settings=here,
                    start_servers=False,
                )
            except NotebookError as err:
                run = NotebookRun(
                    notebook=path,
                    ipynb=folder / f"{stem}.ipynb",
                    html=folder / f"{stem}.html",
                    parameters=parameters(path),
                    seconds=0.0,
                    ok=False,
                    error=str(err),
                    cell_index=err.cell_index,
                )
            found.runs.append(run)
            if on_done:
                on_done(run)
            for suite_run in suites.published(here.results_dir).values():
                for result in suite_run.results:
                    if result.name in found.figures and result.figure > 0:
                        found.figures[result.name].append(float(result.figure))
    return found
