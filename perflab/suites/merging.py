"""Several runs of one suite (one per worker process) merged into one, each process a
replicate."""

from __future__ import annotations

import dataclasses
from typing import Any

from perflab.bench import Result
from perflab.errors import BenchmarkError
from perflab.suites.figures import figure, figure_parts
from perflab.suites.runs import SuiteRun

__all__ = ["merge_runs"]


def merge_runs(runs: list[SuiteRun]) -> SuiteRun:
    """One run from several (one per worker process): each process's samples become one
    replicate of the merged result, so comparisons judge by the spread *between* processes
    (memory layout, hash seeds, frequency), and each numeric check becomes a figure whose
    interval comes from the per-process values."""
    import numpy as np

    from perflab.bench import stats

    if not runs:
        raise BenchmarkError("nothing to merge")
    merged: list[Result] = []
    for first in runs[0].results:
        parts = [r for run in runs for r in run.results if r.name == first.name]
        histogram = None
        if all(p.histogram for p in parts):
            hist = parts[0].hdr()
            for p in parts[1:]:
                hist.add(p.hdr())
            histogram = hist.encode().decode("ascii")
        throughputs = [p.throughput for p in parts if p.throughput is not None]
        merged.append(
            dataclasses.replace(
                first,
                samples=np.concatenate([p.samples for p in parts]),
                replicates=tuple(p.samples.size for p in parts),
                replicate_level="process",
                rates=tuple(throughputs) if len(throughputs) == len(parts) else (),
                reference=_process_references(parts),
                loops=max(p.loops for p in parts),
                throughput=sum(throughputs) / len(throughputs) if throughputs else None,
                histogram=histogram,
                params={**first.params, "processes": len(parts)},
                meta={**first.meta, "noise": _worst_noise(parts)},
            )
        )
    checks: dict[str, Any] = {}
    for key in runs[0].checks:
        values = [figure_parts(run.checks[key])[0] for run in runs if key in run.checks]
        if values and all(v is not None for v in values) and len(values) > 1:
            checks[key] = figure(*stats.geometric_interval(values))
        else:
            checks[key] = runs[0].checks[key]
    tables = runs[0].tables  # tables describe one process's run; the first stands for all
    failed = {name: why for run in runs for name, why in run.failed.items()}
    merged = [r for r in merged if r.name not in failed]  # failed in some process: not judged
    return SuiteRun(runs[0].suite, merged, checks, tables, failed)


def _process_references(parts: list[Result]) -> Any:
    """The reference samples of every process, when every process timed them: a comparison
    can only adjust replicates that all carry them."""
    import numpy as np

    if not all(p.reference.size for p in parts):
        return ()
    return np.concatenate([p.reference for p in parts])


def _worst_noise(parts: list[Result]) -> dict[str, Any]:
    """The noisiest process's signs stand for the merged result (a busy spell in any process
    is a busy spell of the run)."""
    signs = [p.meta.get("noise") for p in parts if isinstance(p.meta.get("noise"), dict)]
    if not signs:
        return {}
    return max(signs, key=lambda s: s.get("other_cores") or 0.0)
