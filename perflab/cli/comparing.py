"""``perflab compare`` and ``perflab ab``: two sides, a ratio per benchmark with its interval,
a verdict, and exit 1 when anything got slower. Both print the same table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perflab.cli.checks import check_output_file, check_timeout, threshold
from perflab.errors import ConfigurationError
from perflab.paths import write_page

__all__ = ["ab_command", "compare_command", "print_comparisons"]


def _run_noise(location: str | None):
    """name -> (sd, runs) of separate runs from the history, or None; a missing default
    history is no history (it is not created), a history the user named must open."""
    from perflab.settings import resolve

    if location == "none":
        return lambda name: None
    if location is None:
        settings = resolve()
        location = settings.history_url or str(settings.outputs_dir / "history.sqlite")
        if "://" not in location and not Path(location).is_file():
            return lambda name: None
    elif "://" not in location and not Path(location).is_file():
        raise ConfigurationError(
            f"--history {location}: no such history file; give the file `perflab bench --save` "
            "wrote, a postgresql:// URL, or 'none'",
            name="--history",
        )
    from perflab.bench import History  # SQLAlchemy and pandas: only when there is a history

    store = History(location, create=False)  # read-only: a read-only file or mount is fine
    return store.run_noise


def compare_command(args: argparse.Namespace) -> int:
    from perflab.bench import compare
    from perflab.report import compare_page, load_ab, load_side
    from perflab.report.sides import is_ab_file

    limit = threshold(args.threshold)
    if args.html:
        check_output_file(Path(args.html), "--html")
    if args.candidate is None:
        if not is_ab_file(args.baseline):
            raise ConfigurationError(
                f"give two sides to compare (A B), or one file perflab ab --out wrote; "
                f"{args.baseline} is not one",
                name="B",
            )
        before, after = load_ab(args.baseline)
    else:
        before, after = load_side(args.baseline), load_side(args.candidate)
    base = {r.name: r for r in before.results}
    cand = {r.name: r for r in after.results}
    common = [name for name in base if name in cand]
    if not common:
        raise ConfigurationError(
            f"{before.label} and {after.label} share no benchmark names; nothing to compare"
        )
    noise = _run_noise(args.history)
    if args.html:
        page = compare_page(before, after, threshold=limit, title="Before / after", run_noise=noise)
        write_page(Path(args.html), page)
        print(f"wrote {args.html}")
    comparisons = [
        compare(base[name], cand[name], threshold=limit, run_noise=noise(name)) for name in common
    ]
    only = {name: before.label if name in base else after.label for name in set(base) ^ set(cand)}
    print_comparisons(comparisons, only)
    return 1 if any(c.verdict == "slower" for c in comparisons) else 0


def print_comparisons(comparisons: list, only: dict[str, str]) -> None:
    """The table ``perflab compare`` and ``perflab ab`` print: benchmark, ratio, its CI,
    replicates per side and the verdict; then what one side alone has, and the notes."""
    notes: dict[str, list[str]] = {}  # note -> the benchmarks it is about, in order
    print(f"{'benchmark':<34} {'ratio':>7} {'95% CI':>17} {'reps':>7}  verdict")
    for c in comparisons:
        ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]"
        reps = f"{c.replicates[0]}v{c.replicates[1]}"
        shown = c.verdict
        if c.verdict == "inconclusive":
            shown += f" (sees ≥{c.detectable:.0%})" if c.detectable == c.detectable else ""
        print(f"{c.name:<34} {c.ratio:>7.3f} {ci:>17} {reps:>7}  {shown}")
        for note in c.notes:
            notes.setdefault(note, []).append(c.name)
    for name in sorted(only):
        print(f"{name:<34} only in {only[name]}")
    for note, names in notes.items():
        about = "" if len(names) == len(comparisons) else f" ({', '.join(names)})"
        print(f"note{about}: {note}")


def ab_command(args: argparse.Namespace) -> int:
    from perflab.bench import ab

    limit = threshold(args.threshold)
    if not limit > 0:
        raise ConfigurationError("--threshold must be above 0 for perflab ab", name="--threshold")
    if args.budget is not None and not (0 < args.budget < float("inf")):
        raise ConfigurationError(
            f"--budget {args.budget} is not a positive number of seconds", name="--budget"
        )
    for option in ("out", "html"):
        if getattr(args, option):
            check_output_file(Path(getattr(args, option)), f"--{option}")
    check_timeout(args.timeout)
    tty = sys.stderr.isatty()

    def progress(pairs: int, seconds: float) -> None:
        if tty:
            print(f"\r  {pairs} pairs, {seconds:.0f} s", end="", file=sys.stderr, flush=True)

    run = ab(
        args.baseline,
        args.candidate,
        target=args.target,
        threshold=limit,
        budget=args.budget,
        duet=bool(args.duet),
        on_pair=progress,
        timeout=args.timeout,
    )
    if tty:
        print(file=sys.stderr)
    labels = {"baseline": run.baseline, "candidate": run.candidate}
    print_comparisons(run.comparisons, {name: labels[side] for name, side in run.only.items()})
    print(run.summary())
    if args.out:
        print(f"saved {run.save(Path(args.out))}")
    if args.html:
        from perflab.report import Side, compare_page

        sides = [
            Side(label=label, results=tuple(run.results(role)), meta=run.meta)
            for role, label in (("baseline", run.baseline), ("candidate", run.candidate))
        ]
        page = compare_page(*sides, threshold=limit, title=f"perflab ab: {run.summary()}")
        write_page(Path(args.html), page)
        print(f"wrote {args.html}")
    if args.save:
        from perflab.bench import History

        store = History()
        for r in run.results("candidate"):
            store.save(r, tags=["ab", run.candidate])
        print(f"history: {store.location}")
    return 1 if run.slower else 0
