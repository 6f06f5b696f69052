"""``perflab sweep``: one notebook over a grid of parameters, run in parallel on Dask
distributed (a LocalCluster by default; a scheduler address runs it on a cluster), collected
into one DataFrame and one HTML page linking every run."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from perflab import servers
from perflab.errors import ConfigurationError, NotebookError
from perflab.notebooks import (
    coerce_parameters,
    output_folder,
    read_notebook,
    read_parameters,
    run_notebook,
)
from perflab.report import index_page
from perflab.settings import Settings, resolve

__all__ = ["SweepRun", "check_scheduler", "parse_grid", "sweep"]


@dataclasses.dataclass(frozen=True)
class SweepRun:
    frame: pd.DataFrame  # one row per grid point: parameters, ok, seconds, html, error
    index: Path

    @property
    def ok(self) -> bool:
        return bool(self.frame["ok"].all())


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["n=1,2", "mode=a,b"]`` → ``{"n": ["1", "2"], "mode": ["a", "b"]}``."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not name or not values:
            raise ConfigurationError(f"--grid {spec!r}: write NAME=V1,V2,…", name="--grid")
        if name in grid:
            raise ConfigurationError(f"--grid names {name!r} twice", name=name)
        grid[name] = values.split(",")
    return grid


_CONNECT_TIMEOUT = 10.0  # seconds to reach a --scheduler (Dask's default is 30)


def check_scheduler(address: str, timeout: float = _CONNECT_TIMEOUT) -> None:
    """Raise a one-line :class:`ConfigurationError` naming ``address`` unless a TCP connection to
    that Dask scheduler opens (Dask itself retries for 30 s and then prints a long traceback)."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address, strict=False)
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as err:
        raise ConfigurationError(
            f"--scheduler {address!r} is not a Dask scheduler address ({err}); "
            "write tcp://host:8786",
            name="--scheduler",
        ) from err
    if host is None:
        return  # inproc://, ucx:// and friends: Dask checks those itself
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ConfigurationError(
            f"--scheduler {address}: no Dask scheduler answers at {host}:{port} "
            f"({err.strerror or err}); start one (dask scheduler) or leave out --scheduler "
            "to run on this machine",
            name="--scheduler",
        ) from err


def _label(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items())


def _run_point(notebook: str, point: dict, out_dir: str, timeout: float | None) -> dict:
    """One grid point, on a Dask worker (servers were started by the client)."""
    t0 = time.monotonic()
    try:
        run = run_notebook(notebook, point, out_dir=out_dir, timeout=timeout, start_servers=False)
        return {"ok": True, "seconds": run.seconds, "html": str(run.html), "error": None}
    except NotebookError as err:
        html = Path(out_dir) / f"{Path(notebook).stem}.html"
        return {"ok": False, "seconds": time.monotonic() - t0, "html": str(html), "error": str(err)}


def sweep(
    notebook: str | Path,
    grid: Mapping[str, Sequence[Any]],
    *,
    out_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    timeout: float | None = None,
    settings: Settings | None = None,
) -> SweepRun:
    """Run ``notebook`` once per combination of ``grid`` values (checked against its parameters
    cell before anything starts) on Dask; write ``index.html`` and ``sweep.json``."""
    from dask.distributed import Client, LocalCluster

    settings = settings or resolve()
    path = Path(notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ConfigurationError(f"notebook not found: {notebook}", name="NOTEBOOK")
    declared = read_parameters(read_notebook(path, str(notebook)))
    names = list(grid)
    points = [
        coerce_parameters(declared, dict(zip(names, combo, strict=True)), notebook=str(path))
        for combo in itertools.product(*(grid[n] for n in names))
    ]
    if not points:
        raise ConfigurationError("the grid is empty", name="--grid")
    out = (
        Path(out_dir)
        if out_dir
        else settings.outputs_dir
        / "sweeps"
        / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{path.stem}"
    )
    if timeout is not None and not timeout > 0:
        raise ConfigurationError(f"--timeout must be positive, got {timeout}", name="--timeout")
    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}", name="--workers")
    output_folder(out, "--out" if out_dir else "PERFLAB_OUTPUTS")
    if scheduler:
        check_scheduler(scheduler)
    servers.start(settings)  # once, here: workers reuse them through the state directory

    cluster = None if scheduler else LocalCluster(
        n_workers=max(1, min(workers, len(points))), threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=logging.ERROR,
    )  # fmt: skip
    try:
        with Client(scheduler or cluster, timeout=_CONNECT_TIMEOUT) as client:
            futures = [
                client.submit(_run_point, str(path.resolve()), point, str(out / f"run-{i:03d}"),
                              timeout, pure=False)
                for i, point in enumerate(points)
            ]  # fmt: skip
            outcomes = client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()

    rows = [{**point, **outcome} for point, outcome in zip(points, outcomes, strict=True)]
    frame = pd.DataFrame(rows)
    entries = [
        {
            "name": _label(point),
            "html": str(Path(outcome["html"]).relative_to(out)),
            "ok": outcome["ok"],
            "seconds": outcome["seconds"],
            "error": outcome["error"],
        }
        for point, outcome in zip(points, outcomes, strict=True)
    ]
    where = scheduler or f"LocalCluster ({min(workers, len(points))} workers)"
    grid_text = json.dumps({k: list(v) for k, v in grid.items()})
    meta = {"notebook": str(path), "grid": grid_text, "scheduler": where}
    index = out / "index.html"
    index.write_text(index_page(title=f"perflab sweep: {path.stem}", notebooks=entries, meta=meta))
    (out / "sweep.json").write_text(
        json.dumps({"format": 1, "meta": meta, "runs": rows}, default=str, indent=2)
    )
    return SweepRun(frame=frame, index=index)
