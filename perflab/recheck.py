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
from perflab.progress import Progress
from perflab.settings import Settings

__all__ = [
    "AB_BUDGET",
    "RERUNS",
    "Confirmation",
    "Recheck",
    "as_confirmed",
    "confirm_by_ab",
    "rerun_suspects",
]

#: Extra runs of each notebook that measured a suspect: with one, a 20 % step on a benchmark
#: whose reports differ by 4 % sd sits near the edge of a 99 % interval from 5 earlier runs;
#: with two it clears it (benchmarks/report_history.py).
RERUNS = 2

#: Seconds of interleaved pairs per suite when a suspect is confirmed by ``perflab ab``: a pair
#: is one quick run of the suite on each side, so this buys a handful of pairs.
AB_BUDGET = 240.0


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
    progress: Progress | None = None,
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
                    **(progress.hooks(stem) if progress else {}),
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
                    # the figure the history stores and judges, so a re-run adds like for like
                    if result.name in found.figures and result.judged_figure > 0:
                        found.figures[result.name].append(float(result.judged_figure))
    return found


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """What an interleaved ``ab`` of the commit before a suspected step and the newest commit
    said about one benchmark."""

    name: str
    verdict: str  # slower | same | faster (inconclusive ones are not kept)
    ratio: float
    ci_low: float
    ci_high: float
    pairs: int
    baseline: str
    candidate: str

    def line(self) -> str:
        return (
            f"confirmed by an interleaved perflab ab of {self.baseline} and {self.candidate}: "
            f"{self.ratio:.3f}x (CI {self.ci_low:.3f}-{self.ci_high:.3f}, {self.pairs} pairs)"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def confirm_by_ab(
    names: Sequence[str],
    changes: Any,  # History.changes() frame: git_before / git_newest per name
    *,
    produced: Mapping[str, suites.SuiteRun],
    settings: Settings,
    budget: float = AB_BUDGET,
) -> dict[str, Confirmation]:
    """Suspects whose step lies between two different commits of ``repository`` are judged by
    an interleaved ``ab`` of those commits (each side's own perflab runs the suite that measured
    them, :func:`perflab.bench.interleave.ab_sources`; ``repository``: the one holding the
    notebooks). Returns the names it answered (slower,
    same or faster); the others — no repository, one commit on both sides, a commit git cannot
    find, an inconclusive ab — are left to the re-runs."""
    from perflab.bench.interleave import ab_sources
    from perflab.bench.sources import repository_root
    from perflab.errors import BenchmarkError, ConfigurationError
    from perflab.notebooks import kernel_environ

    repository = repository_root(settings.notebooks_dir)
    if repository is None or not names:
        return {}
    env = kernel_environ(settings)  # the suites reach the report's servers
    suite_of = {r.name: suite for suite, run in produced.items() for r in run.results}
    groups: dict[tuple[str, str, str], list[str]] = {}
    for row in changes.itertuples():
        before, newest = getattr(row, "git_before", None), getattr(row, "git_newest", None)
        if row.name in names and row.name in suite_of and before and newest and before != newest:
            groups.setdefault((suite_of[row.name], str(before), str(newest)), []).append(row.name)
    found: dict[str, Confirmation] = {}
    for (suite, before, newest), wanted in groups.items():
        try:
            run = ab_sources(before, newest, suite, where=repository, budget=budget, env=env)
        except (ConfigurationError, BenchmarkError):
            continue  # a commit git cannot find, a suite it lacks: the re-runs judge instead
        for c in run.comparisons:
            if c.name in wanted and c.verdict != "inconclusive":
                found[c.name] = Confirmation(
                    c.name, c.verdict, c.ratio, c.ci_low, c.ci_high, c.replicates[0],
                    before, newest,
                )  # fmt: skip
    return found


def as_confirmed(regressions: Any, changes: Any, answered: Mapping[str, Confirmation]) -> Any:
    """The regressions once an interleaved ab has spoken: a benchmark it found the same or
    faster is none; one it found slower is one (added if the history alone could not tell),
    with ``confirmed`` saying how it was confirmed."""
    import pandas as pd

    slower = {name: c for name, c in answered.items() if c.verdict == "slower"}
    kept = regressions[~regressions["name"].isin(set(answered) - set(slower))]
    missing = changes[changes["name"].isin(set(slower) - set(kept["name"]))]
    both = pd.concat([kept, missing[kept.columns]], ignore_index=True) if len(missing) else kept
    both = both.copy()
    both["confirmed"] = [slower[n].line() if n in slower else None for n in both["name"]]
    return both.reset_index(drop=True)
