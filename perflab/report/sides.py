"""The two sides of a before/after, loaded from what a user names: results files, report
folders or History selections.

A side is named by a string (what ``perflab compare`` and notebook 06 take):

* ``path/to/results.json`` — a file written by ``perflab bench --out`` (or one result);
* ``path/to/folder`` — every results file in it (a report's ``results/`` folder);
* ``history:latest`` / ``history:previous`` — the newest / second-newest report run in the
  History (``history:latest:quick`` limits it to one mode);
* ``history:run:NAME`` — the report run saved as ``run:NAME``.

A file written by ``perflab ab --out`` holds both sides at once: :func:`load_ab`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perflab.bench import Result
from perflab.errors import ConfigurationError
from perflab.report.headlines import RUN_TAG

__all__ = ["Side", "is_ab_file", "key", "load_ab", "load_side"]


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of a before/after: its results and where and when they were measured."""

    label: str
    results: tuple[Result, ...]
    meta: dict[str, Any]


def key(name: str) -> str:
    """A benchmark's name without the host:port of a URL (a service's port changes per run)."""
    return re.sub(r"https?://[^/\s]+", "", name)


def _meta_of(results: Sequence[Result], doc_meta: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = dict(doc_meta or {})
    if not meta and results:
        meta = {k: v for k, v in results[0].meta.items() if k not in ("noise", "interleaved")}
    return meta


def load_side(spec: str, *, history: str | Path | None = None) -> Side:
    """The side ``spec`` names (see the module docs); ``history``: the History to read
    ``history:`` selections from (default: ``PERFLAB_HISTORY_URL`` / outputs/history.sqlite).
    Raises ConfigurationError naming ``spec`` when it names nothing usable."""
    from perflab import suites
    from perflab.bench import foreign

    text = str(spec).strip()
    if not text:
        raise ConfigurationError(
            "an empty side: give a results file, a results folder or history:latest",
            name="side",
        )
    if text.startswith("history:"):
        return _history_side(text, history)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ConfigurationError(
                f"{path} holds no results files (*.json); give a file or a report's results folder",
                name=text,
            )
        loaded: list[list[Result]] = []
        meta: dict[str, Any] = {}
        for f in files:
            loaded.append(suites.load_results(f))
            meta = meta or _file_meta(f)
        # several runs of another tool (pytest-benchmark's .benchmarks/<machine>/ folder): a
        # benchmark in more than one file is one result with a replicate per run
        results = foreign.runs_as_replicates(loaded)
        return Side(label=str(path), results=tuple(results), meta=_meta_of(results, meta))
    if is_ab_file(path):
        raise ConfigurationError(
            f"{path} holds both sides of a perflab ab run; compare it alone: "
            f"perflab compare {path}",
            name=text,
        )
    results = suites.load_results(path)  # names the path when missing or not results
    return Side(label=str(path), results=tuple(results), meta=_meta_of(results, _file_meta(path)))


def is_ab_file(path: str | Path) -> bool:
    """Whether ``path`` is a file ``perflab ab --out`` wrote (both sides in one)."""
    import json

    path = Path(path)
    if not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == "ab"


def load_ab(path: str | Path) -> tuple[Side, Side]:
    """Both sides of a ``perflab ab --out`` file, as (baseline, candidate)."""
    import json

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        sides = tuple(
            Side(
                label=doc[role]["label"],
                results=tuple(Result.from_dict(r) for r in doc[role]["results"]),
                meta=dict(doc.get("meta") or {}),
            )
            for role in ("baseline", "candidate")
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigurationError(
            f"cannot read {path} as a perflab ab file: {err}", name=str(path)
        ) from err
    return sides[0], sides[1]


def _file_meta(path: Path) -> dict[str, Any]:
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    meta = doc.get("meta") if isinstance(doc, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def _history_side(spec: str, location: str | Path | None) -> Side:
    parts = spec.split(":")[1:]
    from perflab.bench import History  # SQLAlchemy (~0.1 s): only for history: sides

    store = History(location, create=False)
    try:
        frame = store.frame()
        runs: list[str] = []
        for tags in frame["tags"]:
            tag = next((t for t in tags if str(t).startswith(RUN_TAG)), None)
            if tag and (len(parts) < 2 or parts[0] == "run" or parts[1] in tags):
                name = tag[len(RUN_TAG) :]
                if name in runs:
                    runs.remove(name)
                runs.append(name)  # newest last
        if parts and parts[0] == "run" and len(parts) > 1:
            wanted = ":".join(parts[1:])
        elif parts and parts[0] in ("latest", "previous"):
            k = 1 if parts[0] == "latest" else 2
            if len(runs) < k:
                raise ConfigurationError(
                    f"{spec}: the history at {store.location} holds {len(runs)} report run(s); "
                    "run perflab report first (or give a results file)",
                    name=spec,
                )
            wanted = runs[-k]
        else:
            raise ConfigurationError(
                f"{spec!r} is not a history selection: use history:latest, history:previous, "
                "history:latest:quick or history:run:NAME",
                name=spec,
            )
        if wanted not in runs:
            raise ConfigurationError(
                f"{spec}: no report run named {wanted!r} in {store.location}", name=spec
            )
        results = store.tagged(f"{RUN_TAG}{wanted}")
    finally:
        store.close()
    return Side(label=f"report run {wanted}", results=tuple(results), meta=_meta_of(results, {}))
