"""The statements of a workload and what they cost: the top of ``pg_stat_statements`` (when it
is installed, loaded and readable), a queries file, or perflab's own slow log."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from perflab.db.identifiers import quote_identifier
from perflab.errors import ConfigurationError

__all__ = [
    "WorkloadQuery",
    "extension_schema",
    "first_line",
    "queries_from_file",
    "queries_from_slow_log",
    "savepoint",
    "top_statements",
]

_READ = re.compile(r"^\s*(SELECT|WITH)\b", re.I)
# the catalogs (this notebook's own look-ups, monitoring tools): not the user's workload
_NOISE = re.compile(r"\bpg_[a-z_]+|hypopg|^\s*EXPLAIN\b|information_schema", re.I)


@dataclasses.dataclass(frozen=True)
class WorkloadQuery:
    """One statement of the workload and what it costs: ``calls`` × ``mean_ms``."""

    sql: str
    calls: int = 1
    total_ms: float | None = None
    mean_ms: float | None = None
    source: str = "file"


def savepoint(conn: Any) -> contextlib.AbstractContextManager:
    return conn.transaction()  # psycopg: a SAVEPOINT inside the open transaction


def extension_schema(conn: Any, name: str) -> str | None:
    """The quoted schema an extension is installed in (its objects are called through it, so
    the search_path does not matter), or None when it is not installed."""
    found = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = %s",
        (name,),
    ).fetchone()
    return None if found is None else quote_identifier(found[0], "schema")


def top_statements(conn: Any, limit: int = 10) -> tuple[list[WorkloadQuery], str | None]:
    """The reads that took the most total time in this database per ``pg_stat_statements``,
    or ``([], why not)`` when it is not installed, not loaded or not readable by this user."""
    import psycopg

    schema = extension_schema(conn, "pg_stat_statements")
    if schema is None:
        return [], "pg_stat_statements is not installed in this database"
    try:
        with savepoint(conn):
            rows = conn.execute(
                "SELECT query, calls, total_exec_time, mean_exec_time FROM "
                f"{schema}.pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY total_exec_time DESC LIMIT %(n)s",
                {"n": int(limit) * 5},
            ).fetchall()
    except psycopg.errors.InsufficientPrivilege as err:
        return [], f"this user may not read pg_stat_statements ({first_line(err)})"
    except psycopg.Error as err:  # e.g. "must be loaded via shared_preload_libraries"
        return [], f"pg_stat_statements cannot be read ({first_line(err)})"
    hidden = sum(1 for r in rows if r[0] == "<insufficient privilege>")
    found = [
        WorkloadQuery(q, int(c), float(t), float(m), "pg_stat_statements")
        for q, c, t, m in rows
        if q != "<insufficient privilege>" and _READ.match(q) and not _NOISE.search(q)
    ][:limit]
    why = None
    if hidden:
        why = (
            f"{hidden} statements of other users are hidden from this user (grant "
            "pg_read_all_stats to see them)"
        )
    if not found:
        why = why or "pg_stat_statements holds no reads for this database yet"
    return found, why


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


_CALLS = re.compile(r"--\s*calls\s*[=:]\s*(\d+)", re.I)


def queries_from_file(path: str | Path) -> list[WorkloadQuery]:
    """Statements separated by ``;`` (a ``-- calls: N`` comment before one weighs it, default
    1), or a JSON-lines slow log (``{"sql": ..., "ms": ...}`` per line, as
    ``QueryRunner.slow_log`` entries are)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigurationError(f"queries file {path} not found", name="queries") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigurationError(
            f"queries file {path} cannot be read as text ({err}); give a .sql file or a JSON-lines "
            "slow log",
            name="queries",
        ) from err
    if path.suffix in (".jsonl", ".json"):
        try:
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise ConfigurationError(
                f"queries file {path}: line {err.lineno} is not JSON; one slow-log entry per line",
                name="queries",
            ) from err
        found = queries_from_slow_log(entries)
    else:
        found = []
        for chunk in text.split(";"):
            calls = _CALLS.search(chunk)
            sql = "\n".join(
                ln for ln in chunk.splitlines() if not ln.strip().startswith("--")
            ).strip()
            if sql:
                found.append(WorkloadQuery(sql, int(calls.group(1)) if calls else 1))
    if not found:
        raise ConfigurationError(f"queries file {path} holds no statements", name="queries")
    return found


def queries_from_slow_log(entries: Iterable[dict]) -> list[WorkloadQuery]:
    """perflab's slow log (``QueryRunner.slow_log``: dicts with ``sql`` and ``ms``), grouped by
    statement: calls = how often it was slow, total and mean of those times."""
    grouped: dict[str, list[float]] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("sql"), str):
            grouped.setdefault(entry["sql"], []).append(float(entry.get("ms") or 0.0))
    return [
        WorkloadQuery(sql, len(ms), sum(ms), sum(ms) / len(ms), "slow log")
        for sql, ms in sorted(grouped.items(), key=lambda kv: -sum(kv[1]))
    ]
