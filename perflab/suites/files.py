"""Suite runs on disk: the results file ``perflab bench --out`` writes (``FORMAT``), read back
whole or as results, another tool's file read as results (:mod:`perflab.bench.foreign`), and
the per-report folder notebooks publish into."""

from __future__ import annotations

import json
from pathlib import Path

from perflab.bench import Result, environment
from perflab.errors import BenchmarkError, ConfigurationError
from perflab.suites.runs import SuiteRun

__all__ = ["FORMAT", "load_results", "load_run", "publish", "published", "save_results"]

FORMAT = 2


def publish(run: SuiteRun, results_dir: str | Path | None = None) -> Path:
    """Save a suite run where this session's report looks for it: ``<results>/<suite>.json``
    (``PERFLAB_RESULTS``; ``perflab report`` gives each report a folder of its own)."""
    if results_dir is None:
        from perflab.settings import resolve

        results_dir = resolve().results_dir
    return save_results(Path(results_dir) / f"{run.suite}.json", run)


def published(results_dir: str | Path) -> dict[str, SuiteRun]:
    """Every suite run saved by :func:`publish` in ``results_dir``, by suite name."""
    return {path.stem: load_run(path) for path in sorted(Path(results_dir).glob("*.json"))}


def save_results(path: str | Path, run: SuiteRun) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "suite": run.suite,
        "meta": environment(),
        "checks": run.checks,
        "tables": {k: v.to_dict(orient="split") for k, v in run.tables.items()},
        "results": [r.to_dict() for r in run.results],
        "failed": run.failed,
    }
    path.write_text(json.dumps(doc, default=str))
    return path


def load_run(path: str | Path) -> SuiteRun:
    """A whole suite file (results and checks) written by ``save_results``."""
    doc = _read(path)
    import pandas as pd

    tables = {
        name: pd.DataFrame(t["data"], index=t["index"], columns=t["columns"])
        for name, t in (doc.get("tables") or {}).items()
    }
    return SuiteRun(
        suite=doc.get("suite", "?"),
        results=load_results(path),
        checks=doc.get("checks", {}),
        tables=tables,
        failed=dict(doc.get("failed") or {}),
    )


def _read(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigurationError(f"no such results file: {path}", name=str(path)) from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigurationError(f"cannot read results file {path}: {err}", name=str(path)) from err
    if not isinstance(doc, dict):
        raise ConfigurationError(
            f"{path} is not a perflab results file: it holds a JSON {type(doc).__name__}, "
            "not an object (give a file written by perflab bench --out)",
            name=str(path),
        )
    return doc


def load_results(path: str | Path) -> list[Result]:
    """Results from a suite file written by ``perflab bench --out`` (or one result's JSON), or
    from a file pyperf, pytest-benchmark or asv wrote (:mod:`perflab.bench.foreign`)."""
    from perflab.bench import foreign

    doc = _read(path)
    if foreign.detect(doc):
        return list(foreign.read(doc, str(path)))
    items = doc.get("results", [doc])
    if not isinstance(items, list):
        raise ConfigurationError(
            f"{path} is not a perflab results file: 'results' is a {type(items).__name__}, "
            "not a list",
            name=str(path),
        )
    try:
        return [Result.from_dict(item) for item in items]
    except (BenchmarkError, TypeError, KeyError) as err:
        raise ConfigurationError(
            f"{path} is not a perflab results file: {err}", name=str(path)
        ) from err
