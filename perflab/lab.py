"""The lab runner: every lab notebook through :func:`perflab.notebooks.run_notebook`, then an
``index.html`` linking their one-file reports, and a ``run.json`` for machines."""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import perflab
from perflab import claims, servers, suites
from perflab.bench import History
from perflab.errors import ConfigurationError, NotebookError
from perflab.notebooks import NotebookRun, read_parameters, run_notebook
from perflab.progress import Progress
from perflab.recheck import (
    Confirmation,
    Recheck,
    as_confirmed,
    confirm_by_ab,
    rerun_suspects,
)
from perflab.report import RUN_TAG, environment_facts, headline_rows, index_page, with_trends
from perflab.settings import Settings, resolve

__all__ = ["ReportRun", "lab_notebooks", "report", "suite_header"]


@dataclasses.dataclass(frozen=True)
class ReportRun:
    """What :func:`report` wrote."""

    out_dir: Path
    index: Path
    runs: tuple[NotebookRun, ...]
    regressions: Any = None  # a DataFrame when the history was checked

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)


def suite_header(name: str, *, quick: bool) -> tuple[suites.SuiteRun, dict, Any]:
    """The first cell of a suite notebook (01, 02, 04): run suite ``name``, publish it for the
    claims audit and the report, and return ``(run, results by name, checks as a Series)``."""
    import pandas as pd

    run = suites.run_suite(name, quick=quick)
    suites.publish(run)
    by_name = {r.name: r for r in run.results}
    return run, by_name, pd.Series(run.checks, name="value")


def lab_notebooks(settings: Settings | None = None) -> list[Path]:
    """The lab's notebooks, in order: ``NN-name.ipynb`` in the notebooks folder, except those
    whose metadata says ``"perflab": {"report": false}`` (07-09 need a system of the user's to
    point at, so a report does not run them)."""
    settings = settings or resolve()
    found = [
        path
        for path in sorted(settings.notebooks_dir.glob("[0-9][0-9]-*.ipynb"))
        if _read(path).get("metadata", {}).get("perflab", {}).get("report", True)
    ]
    if not found:
        raise ConfigurationError(
            f"no lab notebooks (NN-name.ipynb) in {settings.notebooks_dir}; "
            "set PERFLAB_NOTEBOOKS to the lab's notebooks folder",
            name="PERFLAB_NOTEBOOKS",
        )
    return found


def _git_commit(folder: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def report(
    *,
    quick: bool = False,
    capacity: bool = False,
    out_dir: str | Path | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    check_history: bool = False,
    on_done: Callable[[NotebookRun], None] | None = None,
    progress: Progress | None = None,
) -> ReportRun:
    """Run every lab notebook (``quick=True`` passed to those that take ``quick``;
    ``capacity=True`` to those that take ``capacity``: the minutes-long capacity claims) into
    ``out_dir`` (default ``outputs/<UTC timestamp>``, with ``outputs/latest`` pointing at it) and
    write ``index.html`` with the claims audit as its summary. A failing notebook is recorded and
    the others still run. Suites the notebooks run publish into ``<out>/results`` (the kernels
    are told where); those results, and only those, feed the audit and go into the history
    (tagged with the mode); with ``check_history`` the run's ``regressions`` lists benchmarks
    that got slower than earlier reports of the same mode.

    Notebooks run one at a time on purpose: they measure, and two at once on a 2-core machine
    would measure each other. ``progress`` (:class:`perflab.progress.Progress`) is told each
    notebook and cell as it starts, and kernels write what they measure into its note file."""
    settings = settings or resolve()
    notebooks = lab_notebooks(settings)
    default_out = out_dir is None
    out = (
        Path(out_dir).absolute()  # kernels run elsewhere: a relative folder names another place
        if out_dir
        else settings.outputs_dir / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    )
    out.mkdir(parents=True, exist_ok=True)
    # this report's own results folder, handed to every kernel (PERFLAB_RESULTS): the audit and
    # the history read exactly what this run produced
    settings = dataclasses.replace(settings, results_dir=out / "results")
    settings.results_dir.mkdir(exist_ok=True)
    servers.start(settings)  # once, up front: an unreachable URL fails before any kernel starts

    started = time.time()
    runs: list[NotebookRun] = []
    published_by: dict[str, list[str]] = {}  # notebook -> the suites it published
    for path in notebooks:
        before = _published_files(settings.results_dir)
        params = _parameters(path, quick, capacity)
        t0 = time.monotonic()
        try:
            run = run_notebook(
                path,
                params,
                out_dir=out,
                timeout=timeout,
                settings=settings,
                start_servers=False,
                **(progress.hooks(path.stem) if progress else {}),
            )
        except NotebookError as err:
            run = NotebookRun(
                notebook=path,
                ipynb=out / f"{path.stem}.ipynb",
                html=out / f"{path.stem}.html",
                parameters=params,
                seconds=time.monotonic() - t0,
                ok=False,
                error=str(err),
                cell_index=err.cell_index,
            )
        published_by[path.stem] = sorted(_published_files(settings.results_dir) - before)
        run = _published_what_it_declares(run, published_by[path.stem], settings)
        runs.append(run)
        if on_done:
            on_done(run)

    meta = {
        "started (UTC)": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "duration": f"{time.time() - started:.1f} s",
        "mode": "quick" if quick else "full",
        "capacity claims": "measured" if capacity else "not run (perflab report --capacity)",
        "perflab": perflab.__version__,
        "commit": _git_commit(settings.notebooks_dir),
        "python": platform.python_version(),
        "host": f"{platform.node()} ({platform.machine()})",
    }
    entries = [
        {
            "name": r.notebook.stem,
            "html": r.html.name,
            "ipynb": r.ipynb.name,
            "ok": r.ok,
            "seconds": round(r.seconds, 3),
            "error": r.error,
            "parameters": r.parameters,
        }
        for r in runs
    ]
    produced = suites.published(settings.results_dir)
    rechecked: list[Recheck] = []

    def recheck(names: list[str]) -> dict[str, list[float]]:
        # the notebooks that measured a suspect run again before the check fails on it
        found = rerun_suspects(
            names,
            notebooks={path.stem: path for path in notebooks},
            produced=produced,
            published_by=published_by,
            parameters=lambda path: _parameters(path, quick, capacity),
            out=out,
            settings=settings,
            timeout=timeout,
            on_done=on_done,
            progress=progress,
        )
        rechecked.append(found)
        return found.figures

    confirmed: dict[str, Confirmation] = {}

    def confirm(names: list[str], changes: Any) -> dict[str, Confirmation]:
        # a step between two commits of this repository: an interleaved ab of the two decides
        confirmed.update(confirm_by_ab(names, changes, produced=produced, settings=settings))
        return confirmed

    index, regressions, summary = write_index(
        out,
        entries=entries,
        meta=meta,
        produced=produced,
        published_by=published_by,
        history=History(settings.history_url or settings.outputs_dir / "history.sqlite"),
        recheck=recheck if check_history else None,
        confirm=confirm if check_history else None,
    )
    doc = {"format": 1, "meta": meta, "notebooks": entries, "claims": summary}
    if check_history:
        doc["regressions"] = regressions.to_dict(orient="records")
        doc["rechecks"] = rechecked[0].to_dict() if rechecked else None
        doc["confirmed_by_ab"] = {k: c.to_dict() for k, c in confirmed.items()}
    (out / "run.json").write_text(json.dumps(doc, indent=2, default=str))
    if default_out:
        _point_latest(settings.outputs_dir / "latest", out)
    return ReportRun(
        out_dir=out,
        index=index,
        runs=tuple(runs),
        regressions=regressions if check_history else None,
    )


def write_index(
    out: Path,
    *,
    entries: list[dict[str, Any]],
    meta: dict[str, Any],
    produced: dict[str, suites.SuiteRun],
    published_by: dict[str, list[str]],
    history: History,
    recheck: Callable[[list[str]], Mapping[str, Sequence[float]]] | None = None,
    confirm: Callable[[list[str], Any], Mapping[str, Confirmation]] | None = None,
) -> tuple[Path, Any, list[dict[str, Any]]]:
    """Save this run's results into ``history`` (tagged with the mode and ``run:<folder>``);
    with ``recheck``, hand it the names that look slower (``History.suspects``) and judge them
    with the figures of its re-runs as well (:mod:`perflab.recheck`) — except those that
    ``confirm`` answered (an interleaved ab of the commits before and after the step: slower
    stays a regression, saying so; same or faster is none); then write
    ``out/index.html``: headlines per notebook with their trends, the regressions of this mode,
    the claims audit, the notebooks, the environment. Returns the index path, the regressions
    frame and the claims-audit rows. Closes ``history``."""
    import pandas as pd

    mode, run_name = meta["mode"], out.name
    try:
        for run in produced.values():
            for result in run.results:
                history.save(result, tags=["report", mode, f"{RUN_TAG}{run_name}"])
        # judged only against earlier reports of the same mode: quick and full runs differ
        reruns: dict[str, Sequence[float]] = {}
        answered: Mapping[str, Confirmation] = {}
        if recheck is not None:
            suspects = history.suspects(tag=mode)
            if confirm is not None and suspects:
                answered = confirm(suspects, history.changes(tag=mode))
            rest = [n for n in suspects if n not in answered]
            reruns = dict(recheck(rest)) if rest else {}
        regressions = history.regressions(tag=mode, reruns=reruns)
        if answered:
            regressions = as_confirmed(regressions, history.changes(tag=mode), answered)
        summary = _audit_and_keep(history, produced, mode, run_name) if produced else []
        past = history.frame()
    finally:
        history.close()
    past = past[past["tags"].map(lambda tags: mode in tags and "report" in tags)]
    groups: dict[str, list[dict[str, Any]]] = {}
    shown: set[str] = set()
    for notebook, names in [*published_by.items(), ("other suites", sorted(produced))]:
        rows = []
        for suite in names:
            if suite in produced and suite not in shown:
                shown.add(suite)
                rows += headline_rows(suite, produced[suite].results)
        if rows:
            groups[notebook] = with_trends(rows, past, run=run_name)
    judges = {c.text: c.judge for c in claims.CLAIMS}
    for row in summary:
        row["judge"] = judges.get(row["claim"])
    env, noise = environment_facts([r for run in produced.values() for r in run.results], meta)
    index = out / "index.html"
    index.write_text(
        index_page(
            title="perflab report",
            notebooks=entries,
            meta=meta,
            summary=summary,
            headlines=groups,
            regressions=pd.DataFrame(regressions).to_dict(orient="records"),
            environment=env,
            noise=noise,
        ),
        encoding="utf-8",
    )
    return index, regressions, summary


def _audit_and_keep(
    history: History, produced: dict[str, suites.SuiteRun], mode: str, run_name: str
) -> list[dict[str, Any]]:
    """The claims audit with each figure's run-to-run noise from earlier reports of the mode,
    then this report's figures kept for the next (tagged "claim": never judged as timings)."""
    from perflab.bench import Result

    names = {c.text: claims.history_name(c) for c in claims.CLAIMS if c.suite and c.check}
    noise = claims.learned_noise(history, mode)
    rows = claims.audit(produced, run_noise=noise).to_dict(orient="records")
    for row in rows:
        value = row["measured"]
        if row["claim"] in names and isinstance(value, int | float) and value > 0:
            figure = Result(name=names[row["claim"]], samples=[float(value)], unit=row["unit"])
            history.save(figure, tags=["report", mode, "claim", f"{RUN_TAG}{run_name}"])
        row["run_noise"] = noise.get(row["claim"])
    return rows


def declared_suites(path: Path) -> list[str]:
    """The suites a lab notebook says it publishes (``"perflab": {"publishes": [...]}`` in its
    metadata)."""
    return list(_read(path).get("metadata", {}).get("perflab", {}).get("publishes", []))


def _published_what_it_declares(
    run: NotebookRun, published: list[str], settings: Settings
) -> NotebookRun:
    """A notebook that ran but did not publish the suites its metadata names failed: without
    this, a kernel publishing elsewhere (a relative results folder did) left the claims audit
    and the history silently empty while the report said every notebook ran."""
    missing = [name for name in declared_suites(run.notebook) if name not in published]
    if not run.ok or not missing:
        return run
    return dataclasses.replace(
        run,
        ok=False,
        error=(
            f"{run.notebook.name} ran but published no results of suite(s) "
            f"{', '.join(missing)} into {settings.results_dir}, as its metadata "
            "(perflab.publishes) says it does: the claims audit and the history would miss "
            "them; check that it calls suites.publish and that its kernel gets PERFLAB_RESULTS"
        ),
    )


def _parameters(path: Path, quick: bool, capacity: bool = False) -> dict[str, Any]:
    """What a report hands a notebook: only the switches it declares, and only when on."""
    declared = read_parameters(_read(path))
    asked = {"quick": quick, "capacity": capacity}
    return {name: True for name, on in asked.items() if on and name in declared}


def _published_files(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.json")}


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _point_latest(link: Path, target: Path) -> None:
    """``outputs/latest`` → the newest run (replaced atomically)."""
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(
        target.name if target.parent == link.parent else target, target_is_directory=True
    )
    tmp.replace(link)
