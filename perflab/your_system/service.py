"""Load a service perflab did not create, endpoint by endpoint, through the public load
generator (``perflab.service.run_load``): the endpoints from a list or a small spec file, the
results saved as one file, and an earlier results file read back as the baseline of verdicts."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from perflab import bench
from perflab.errors import BenchmarkError, ConfigurationError
from perflab.service import run_load
from perflab.urls import redact

__all__ = [
    "Endpoint",
    "ServiceRun",
    "check_base_url",
    "latencies",
    "load_endpoints",
    "parse_endpoints",
    "read_results",
    "save_results",
    "status_table",
    "verdicts",
]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RESULTS_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One request to repeat: ``method`` ``path`` with an optional JSON ``body``."""

    path: str
    method: str = "GET"
    body: Any = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def check_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, or a one-line ConfigurationError: it must be
    http(s)://host[:port][/prefix]. Any host the user names is loaded; nothing is refused
    silently."""
    parts = urlsplit(base_url or "")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError as err:
        raise ConfigurationError(
            f"base_url {redact(base_url)!r} has a bad port ({err})", name="base_url"
        ) from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url {redact(base_url or '')!r} is not an http(s) URL; write it as "
            "http://host:port (the service to load)",
            name="base_url",
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"base_url {redact(base_url)!r} has a query or fragment; put those in paths",
            name="base_url",
        )
    return base_url.rstrip("/")


def _endpoint(item: Any, where: str) -> Endpoint:
    if isinstance(item, Endpoint):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - {"method", "path", "body"}
        if unknown or "path" not in item:
            raise ConfigurationError(
                f"{where}: {dict(item)!r} needs a 'path' (and optionally 'method', 'body'), "
                f"not {', '.join(sorted(unknown)) or 'nothing'}",
                name="paths",
            )
        method, path, body = str(item.get("method", "GET")), item["path"], item.get("body")
    elif isinstance(item, str):
        words = item.strip().split(None, 2)
        if not words:
            raise ConfigurationError(f"{where}: an empty endpoint", name="paths")
        if words[0].upper() in _METHODS:
            method, path = words[0], words[1] if len(words) > 1 else ""
            rest = words[2] if len(words) > 2 else ""
        else:
            method, path, rest = "GET", words[0], " ".join(words[1:])
        try:
            body = json.loads(rest) if rest else None
        except json.JSONDecodeError as err:
            raise ConfigurationError(
                f"{where}: the body of {item.strip()!r} is not JSON ({err.msg})", name="paths"
            ) from err
    else:
        raise ConfigurationError(
            f"{where}: {item!r} is not an endpoint; give '/path', 'POST /path {{json}}' or "
            "{'method': ..., 'path': ..., 'body': ...}",
            name="paths",
        )
    method = method.upper()
    if method not in _METHODS:
        raise ConfigurationError(f"{where}: unknown HTTP method {method!r}", name="paths")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(
            f"{where}: path {path!r} must start with / (it is joined to base_url)", name="paths"
        )
    return Endpoint(path, method, body)


def parse_endpoints(paths: Sequence[Any] | str) -> list[Endpoint]:
    """Endpoints from a list (``"/health"``, ``"POST /items {\"a\": 1}"`` or dicts with
    method, path, body) or from a spec file: a JSON list of the same, or one endpoint a line
    (``#`` comments)."""
    if isinstance(paths, str | Path):
        path = Path(paths)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigurationError(
                f"endpoint spec {path} cannot be read ({getattr(err, 'strerror', err)}); give a "
                "JSON list or one 'METHOD /path [json]' a line",
                name="spec",
            ) from err
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigurationError(
                    f"endpoint spec {path}: not valid JSON (line {err.lineno}: {err.msg})",
                    name="spec",
                ) from err
        else:
            items = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        where = f"endpoint spec {path}"
    else:
        items, where = list(paths), "paths"
    endpoints = [_endpoint(item, where) for item in items]
    if not endpoints:
        raise ConfigurationError(f"{where}: no endpoints to load", name="paths")
    labels = [e.label for e in endpoints]
    if len(set(labels)) != len(labels):
        raise ConfigurationError(f"{where}: an endpoint is listed twice", name="paths")
    return endpoints


@dataclasses.dataclass(frozen=True)
class ServiceRun:
    """Results per endpoint label, and the endpoints that never answered (label → why)."""

    results: dict[str, bench.Result]
    unanswered: dict[str, str] = dataclasses.field(default_factory=dict)


def load_endpoints(
    base_url: str,
    endpoints: Sequence[Endpoint],
    *,
    concurrency: int = 8,
    rate: float | None = None,
    duration: float = 10.0,
    warmup: float = 1.0,
    timeout: float = 10.0,
    runs: int = 3,
    ca_file: str | None = None,
    verify: bool = True,
) -> ServiceRun:
    """Each endpoint under the same load through ``run_load``, in ``runs`` separate runs of
    ``duration / runs`` seconds taken in turn (A B C, A B C, …), each run one replicate: a
    whole run can sit in a slow spell, so only separate runs let ``compare`` judge this run
    against a baseline saved by another. The first request checks that something listens at
    ``base_url`` (ServerError naming it otherwise); an endpoint whose requests all fail is
    listed in ``unanswered``, not a traceback."""
    base = check_base_url(base_url)
    if not isinstance(runs, int) or runs < 1:
        raise ConfigurationError(f"runs must be a positive whole number, got {runs!r}", name="runs")
    parts: dict[str, list[bench.Result]] = {e.label: [] for e in endpoints}
    unanswered: dict[str, str] = {}
    for r in range(runs):
        for i, endpoint in enumerate(endpoints):
            if endpoint.label in unanswered:
                continue
            try:
                part = run_load(
                    base + endpoint.path,
                    method=endpoint.method,
                    json_body=endpoint.body,
                    concurrency=concurrency,
                    rate=rate or None,
                    duration=duration / runs,
                    warmup=warmup,
                    timeout=timeout,
                    rounds=1,
                    check=r == i == 0,
                    progress=False,
                    ca_file=ca_file,
                    verify=verify,
                )
            except BenchmarkError as err:  # every request failed: say so for this endpoint
                unanswered[endpoint.label] = str(err)
                continue
            parts[endpoint.label].append(part)
    results = {
        label: _as_runs(label, found)
        for label, found in parts.items()
        if found and label not in unanswered
    }
    if not results:
        raise BenchmarkError(
            f"no endpoint of {redact(base)} answered: {next(iter(unanswered.values()))}"
        )
    return ServiceRun(results, unanswered)


def _as_runs(label: str, parts: list[bench.Result]) -> bench.Result:
    """Separate runs of one endpoint as one result, a replicate per run, named by endpoint (a
    URL with a password never reaches a plot or a file): every latency in one HDR histogram,
    status and error counts summed."""
    import collections

    import numpy as np

    histogram = parts[0].hdr()
    counts: dict[str, collections.Counter] = {"statuses": collections.Counter()}
    counts["errors"] = collections.Counter()
    for part in parts:
        if part is not parts[0]:
            histogram.add(part.hdr())
        for kind, counter in counts.items():
            counter.update(part.params.get(kind, {}))
    rates = [p.throughput for p in parts if p.throughput is not None]
    statuses, errors = dict(counts["statuses"]), dict(counts["errors"])
    total = sum(statuses.values()) + sum(errors.values())
    server_errors = sum(n for code, n in statuses.items() if int(code) >= 500)
    failed = {**({"5xx": server_errors} if server_errors else {}), **errors}
    params = {
        **parts[0].params,
        "url": redact(parts[0].params.get("url", "")),
        "statuses": statuses,
        "errors": errors,
        "failures": failed,
        "failed": sum(failed.values()) / total if total else 0.0,
        "runs": len(parts),
    }
    return dataclasses.replace(
        parts[0],
        name=label,
        samples=np.concatenate([p.samples for p in parts]),
        replicates=tuple(p.samples.size for p in parts),
        replicate_level="run",
        rates=tuple(rates),
        throughput=float(np.mean(rates)) if rates else None,
        histogram=histogram.encode().decode("ascii"),
        params=params,
    )


def status_table(run: ServiceRun) -> pd.DataFrame:
    """One row per endpoint: latencies kept, throughput, status codes and errors counted."""
    rows = []
    for label, result in run.results.items():
        params = result.params
        row: dict[str, Any] = {
            "endpoint": label,
            "latencies": int(result.samples.size),
            "throughput": result.throughput,
            "failed": params.get("failed", 0.0),
        }
        row.update({f"HTTP {k}": v for k, v in sorted(params.get("statuses", {}).items())})
        row.update(params.get("errors", {}))
        rows.append(row)
    for label, why in run.unanswered.items():
        rows.append({"endpoint": label, "latencies": 0, "failed": 1.0, "note": why})
    frame = pd.DataFrame(rows).set_index("endpoint")
    numbers = frame.select_dtypes("number").columns
    frame[numbers] = frame[numbers].fillna(0)
    return frame.fillna("")


def latencies(run: ServiceRun) -> dict[str, Any]:
    """Every latency kept per endpoint (ns), for ``report.ecdf_plot``/``percentile_plot``."""
    return {label: r.samples for label, r in run.results.items()}


def save_results(run: ServiceRun, path: str | Path, *, base_url: str = "") -> Path:
    """Write the run's results as one JSON file (the baseline of a later run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": RESULTS_FORMAT,
        "kind": "perflab-service-results",
        "base_url": redact(base_url),
        "saved": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "endpoints": {k: r.to_dict() for k, r in run.results.items()},
    }
    path.write_text(json.dumps(doc))
    return path


def read_results(path: str | Path) -> dict[str, bench.Result]:
    """A file :func:`save_results` wrote, or a one-line ConfigurationError naming it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigurationError(f"baseline {path} not found", name="baseline") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigurationError(
            f"baseline {path} is not a results file ({err}); give the .json an earlier run of "
            "this notebook saved",
            name="baseline",
        ) from err
    if not isinstance(doc, dict) or doc.get("kind") != "perflab-service-results":
        raise ConfigurationError(
            f"baseline {path} is not a perflab service results file", name="baseline"
        )
    if doc.get("format") != RESULTS_FORMAT:
        raise ConfigurationError(
            f"baseline {path} has format {doc.get('format')!r}; this perflab reads "
            f"{RESULTS_FORMAT}",
            name="baseline",
        )
    return {k: bench.Result.from_dict(v) for k, v in doc["endpoints"].items()}


def verdicts(baseline: Mapping[str, bench.Result], current: ServiceRun) -> pd.DataFrame:
    """Before/after per endpoint present in both (``bench.compare``: ratio with its interval
    from the replicates, and the verdict); endpoints in only one side are listed as such."""
    rows = []
    now = current.results
    for label in dict.fromkeys([*now, *baseline]):
        before, after = baseline.get(label), now.get(label)
        if before is None or after is None:
            rows.append(
                {"endpoint": label, "verdict": "only in " + ("run" if after else "baseline")}
            )
            continue
        c = bench.compare(before, after, match_names=False)
        rows.append({"endpoint": label, **c.summary().to_dict()})
    return pd.DataFrame(rows).set_index("endpoint")
