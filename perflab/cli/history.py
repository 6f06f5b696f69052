"""``perflab history``: list, check, accept and add results (perflab's, or another tool's
file) in the History."""

from __future__ import annotations

import argparse
from pathlib import Path

from perflab.cli.checks import environment_line, regression_line, threshold
from perflab.errors import ConfigurationError

__all__ = ["history_command"]


def _add_to_history(args: argparse.Namespace) -> int:
    """``perflab history --add FILE…``: every file read before the history is touched, so a
    bad one adds nothing."""
    from perflab import suites
    from perflab.bench import History

    loaded = [(path, suites.load_results(Path(path))) for path in args.add]
    store = History(args.path)
    try:
        for path, results in loaded:
            for r in results:
                tool = r.meta.get("tool")
                store.save(r, tags=[*args.tag, *([tool] if tool else [])], saved=_dated(r))
            print(f"added {len(results)} results from {path}")
    finally:
        store.close()
    print(f"history: {store.location}")
    return 0


def _dated(result) -> float | None:
    """When another tool's run happened (its file says), so the history keeps their order."""
    import datetime

    text = result.meta.get("date")
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def history_command(args: argparse.Namespace) -> int:
    from perflab.bench import History
    from perflab.urls import DATABASE_SCHEMES, check_url

    if args.path and "://" in args.path:
        check_url("--path", args.path, DATABASE_SCHEMES)
    limit = threshold(args.threshold)  # every argument checked before the history is opened
    # every use reads an existing history: a mistyped --path once created an empty file and
    # the check said "no regressions" (exit 0); it is opened read-only unless it accepts
    if args.add:
        return _add_to_history(args)
    store = History(args.path, create=False)
    if args.accept:
        store.close()
        store = History(args.path)
        start = store.accept(args.accept)
        print(f"accepted: {args.accept} is judged from result #{start} on")
        return 0
    frame = store.frame(args.name)
    if frame.empty:
        where = store.location
        empty = f"no results saved in {where}" + (f" for {args.name!r}" if args.name else "")
        if args.check:  # nothing to judge is not "no regressions"
            raise ConfigurationError(
                f"{empty}: nothing to check (is it the history `perflab bench --save` wrote?)",
                name="--path",
            )
        print(empty)
        return 0
    if not args.check:
        print(frame.drop(columns=["tags"]).to_string(index=False))
        return 0
    slower = store.changes(args.name, threshold=limit, only="slower")
    for row in slower[slower["cause"] == "environment"].itertuples():
        print(environment_line(row))
    found = slower[slower["cause"] != "environment"]
    if found.empty:
        print("no regressions")
        return 0
    for row in found.itertuples():
        print(regression_line(row))
    return 1
