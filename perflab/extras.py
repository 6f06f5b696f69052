"""Which optional part of perflab a third-party module belongs to, so that a command needing an
extra that is not installed says which one and how to get it, in one line.

The base install holds the harness, the cache, the query runner and the CLI; the rest is
opt-in (``pip install 'perflab[lab]'`` and so on; ``perflab[all]`` takes every extra but the
test tools)."""

from __future__ import annotations

__all__ = ["EXTRAS", "missing_extra"]

#: top-level module -> the extra that installs it
EXTRAS = {
    # notebooks and reports: perflab run / report / lab / sweep's notebooks
    "papermill": "lab",
    "nbconvert": "lab",
    "nbformat": "lab",
    "nbclient": "lab",
    "ipykernel": "lab",
    "jupyter_client": "lab",
    "jupyterlab": "lab",
    "ipywidgets": "lab",
    "matplotlib": "lab",
    # the demo service and the load generator
    "fastapi": "service",
    "uvicorn": "service",
    "httpx": "service",
    "httptools": "service",
    "uvloop": "service",
    # parameter sweeps on a cluster
    "dask": "dask",
    "distributed": "dask",
    # profiles
    "memory_profiler": "profile",
    # the peers perflab is measured against (notebook 01 sets its L1 beside cachetools)
    "cachetools": "lab",
    "aiohttp": "test",
    "libcachesim": "test",
}


def missing_extra(err: ModuleNotFoundError) -> str | None:
    """The one-line advice for a missing optional module, or None when ``err`` is about a
    module no extra provides (a real bug, to be raised as it is)."""
    top = (err.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return (
        f"this needs {top}, part of perflab's '{extra}' extra, which is not installed: "
        f"pip install 'perflab[{extra}]' (from a clone: pip install '.[{extra}]')"
    )
