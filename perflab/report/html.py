"""The index page of a report run: plain data in, one self-contained HTML string out.

The index is the report: headline comparisons per notebook (ratio with CI, verdict, trend over
the last runs, change since the previous run), regressions from the history, the claims audit
as a forest plot and a table, the notebooks, and the environment with its noise signs. Every
value is escaped; every figure goes through :mod:`perflab.numbers`."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from perflab.numbers import DASH, interval, is_missing, number, quantity, times
from perflab.report.svg import forest_plot, sparkline

__all__ = ["STYLE", "environment_facts", "index_page"]

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:2px solid #eee;padding-bottom:.2rem}
h3{margin:1.2rem 0 .3rem}
table{border-collapse:collapse;margin:.6rem 0}
th,td{border-bottom:1px solid #ddd;padding:.3rem .7rem;text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600}td.num{text-align:right;white-space:nowrap}
.ok,.confirmed,.faster{color:#1b7f3b}.failed,.slower,.not-reproduced{color:#b00020}
.inconclusive{color:#8a6d00}.same{color:#555}.verdict{font-weight:600;white-space:nowrap}
.ci,.muted{color:#666;font-size:90%}.ci{white-space:nowrap}code{font-size:90%}
.warn{background:#fff4e5;border-left:4px solid #e69500;padding:.5rem .8rem;margin:.6rem 0}
dl{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem}dt{color:#666}dd{margin:0}
svg{max-width:100%;height:auto}table.hl{width:100%;table-layout:fixed}
"""
_E = html.escape


def _css(verdict: str) -> str:
    return str(verdict).replace(" ", "-")


def _verdict(verdict: Any) -> str:
    text = str(verdict or "")
    return f'<span class="verdict {_E(_css(text), quote=True)}">{_E(text)}</span>'


def _speedup_words(speedup: Any) -> str:
    if is_missing(speedup) or float(speedup) <= 0:
        return ""
    x = float(speedup)
    return f"{times(x)} faster" if x >= 1 else f"{times(1 / x)} slower"


def _since(row: Mapping[str, Any]) -> str:
    previous, current = row.get("previous"), row.get("current")
    if is_missing(previous) or is_missing(current):
        return '<span class="muted">first run</span>'
    change = float(current) / float(previous) - 1
    sign = "+" if change >= 0 else "−"
    return (
        f"{_E(times(previous))} → {_E(times(current))} "
        f'<span class="muted">({sign}{_E(number(abs(change) * 100, 2))} %)</span>'
    )


def _headline_table(rows: Sequence[Mapping[str, Any]], mode: str) -> str:
    body = []
    for r in rows:
        ci = interval(r.get("ci_low"), r.get("ci_high"), "x")
        # a busy machine is said once, above the tables and under Environment and noise
        kept = [str(n) for n in r.get("notes", []) if "ran on a busy machine" not in str(n)]
        notes = "".join(f'<br><span class="muted">{_E(n)}</span>' for n in kept)
        reps = r.get("replicates")
        reps_text = f"{reps[0]} vs {reps[1]} replicates" if reps else ""
        body.append(
            f"<tr><td>{_E(str(r['label']))}{notes}</td>"
            f'<td class="num">{_E(str(r["baseline"]))} → {_E(str(r["candidate"]))}</td>'
            f'<td class="num"><b>{_E(times(r["speedup"]))}</b><br>'
            f'<span class="ci">95 % CI {_E(ci)}</span><br><span class="muted">'
            f"{_E(reps_text)}</span></td>"
            f"<td>{_verdict(r.get('verdict'))}<br><span class=muted>"
            f"{'est. ' if r.get('verdict') == 'inconclusive' else ''}"
            f"{_E(_speedup_words(r['speedup']))}</span></td>"
            f"<td>{sparkline(r.get('trend') or []) or '<span class=muted>—</span>'}</td>"
            f"<td>{_since(r)}</td></tr>"
        )
    return (
        '<table class="hl"><colgroup><col style="width:34%"><col style="width:17%">'
        '<col style="width:17%"><col style="width:9%"><col style="width:10%">'
        '<col style="width:13%"></colgroup>'
        "<tr><th>comparison</th><th>baseline → optimised</th>"
        "<th>speedup (baseline ÷ optimised)</th><th>verdict</th>"
        f"<th>trend (last {_E(mode)} runs)</th><th>since the previous run</th></tr>"
        f"{''.join(body)}</table>"
    )


def _busy(groups: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    rows = [r for rows in groups.values() for r in rows]
    busy = sum(any("ran on a busy machine" in str(n) for n in r.get("notes", [])) for r in rows)
    if not busy:
        return ""
    return (
        f'<p class="warn">{busy} of {len(rows)} comparisons ran while other processes used '
        "0.3 CPU cores or more (see Environment and noise). Each pair was interleaved, so "
        "both arms met the same load; absolute times and run-to-run trends are noisier.</p>"
    )


def _headlines(groups: Mapping[str, Sequence[Mapping[str, Any]]], mode: str) -> str:
    if not groups:
        return ""
    parts = [
        "<h2>Headlines</h2><p class=muted>Each pair measured side by side in this run "
        "(interleaved rounds or worker processes as replicates); the verdict is bench.compare's "
        "(faster / slower / same / inconclusive at a 5 % threshold). Trends and the change since "
        "the previous run use each run's median figures.</p>",
        _busy(groups),
    ]
    for notebook, rows in groups.items():
        if rows:
            parts.append(f"<h3>{_E(str(notebook))}</h3>{_headline_table(rows, mode)}")
    return "".join(parts)


def _reruns(count: Any) -> str:
    n = int(count) if isinstance(count, int | float) and count == count else 0
    return f" (incl. {n} re-run{'s' if n != 1 else ''})" if n else ""


def _regressions(rows: Sequence[Mapping[str, Any]] | None, mode: str) -> str:
    if rows is None:
        return ""
    head = f"<h2>Regressions against earlier {_E(mode)} reports</h2>"
    if not rows:
        return head + (
            "<p class=ok>None: no benchmark's newest change made it significantly slower "
            "(History.regressions, 99 % CI over whole runs; with --check-history, whatever "
            "looked slower was re-run first).</p>"
        )
    body = "".join(
        f"<tr><td><code>{_E(str(r['name']))}</code></td>"
        f'<td class="num">{_E(quantity(r.get("before"), str(r.get("unit") or "ns")))} → '
        f"{_E(quantity(r.get('after'), str(r.get('unit') or 'ns')))}</td>"
        f'<td class="num slower"><b>{_E(times(r.get("ratio")))}</b> '
        f'<span class="ci">CI {_E(interval(r.get("ci_low"), r.get("ci_high"), "x"))}</span></td>'
        f'<td class="num">{_E(str(r.get("runs_before")))} / {_E(str(r.get("runs_after")))}'
        f"{_E(_reruns(r.get('reruns')))}</td>"
        f"<td>{_E(str(r.get('git') or DASH))}</td></tr>"
        for r in rows
    )
    return head + (
        f'<p class="failed">{len(rows)} benchmark(s) got slower.</p>'
        "<table><tr><th>benchmark</th><th>before → after (run figures)</th>"
        "<th>ratio (after ÷ before)</th><th>runs before / after</th><th>first slower at</th></tr>"
        f"{body}</table>"
    )


def _claims(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    body = []
    for r in rows:
        unit = str(r.get("unit", ""))
        measured = quantity(r.get("measured"), unit)
        ci = interval(r.get("ci_low"), r.get("ci_high"), unit)
        if measured != DASH and ci != DASH and r.get("ci_low") != r.get("ci_high"):
            measured += f' <span class="ci">(95 % CI {_E(ci)})</span>'
        else:
            measured = _E(measured)
        body.append(
            f"<tr><td>{_E(str(r.get('claim', '')))}</td>"
            f'<td class="num">{_E(quantity(r.get("claimed"), unit))}</td>'
            f'<td class="num">{measured}</td><td>{_verdict(r.get("verdict"))}</td>'
            f"<td class=muted>{_E(str(r.get('conditions', '')))}</td></tr>"
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("verdict"))] = counts.get(str(r.get("verdict")), 0) + 1
    tally = ", ".join(f"{n} {_E(v)}" for v, n in counts.items())
    return (
        f"<h2>The seed's claims, measured</h2><p>{tally}.</p>{forest_plot(rows)}"
        "<table><tr><th>claim</th><th>claimed</th><th>measured</th><th>verdict</th>"
        f"<th>conditions</th></tr>{''.join(body)}</table>"
    )


def _facts(items: Mapping[str, Any]) -> str:
    return (
        "<dl>"
        + "".join(f"<dt>{_E(str(k))}</dt><dd>{_E(str(v))}</dd>" for k, v in items.items())
        + "</dl>"
    )


def _environment(env: Mapping[str, Any] | None, noise: Sequence[str]) -> str:
    if not env:
        return ""
    warn = "".join(f'<p class="warn">{_E(n)}</p>' for n in noise)
    return f"<h2>Environment and noise</h2>{warn}{_facts(env)}"


def index_page(
    *,
    title: str,
    notebooks: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    summary: Sequence[Mapping[str, Any]] = (),
    headlines: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    regressions: Sequence[Mapping[str, Any]] | None = None,
    environment: Mapping[str, Any] | None = None,
    noise: Sequence[str] = (),
) -> str:
    """HTML for a report run.

    ``notebooks``: one mapping per notebook with ``name``, ``html`` (a relative link), ``ok``,
    ``seconds`` and, when it failed, ``error``. ``meta``: run facts (when, mode, commit).
    ``summary``: claims-audit rows. ``headlines``: notebook name → rows of
    :func:`perflab.report.headlines.with_trends`. ``regressions``: ``History.regressions``
    rows (None: not checked). ``environment``: fingerprint facts; ``noise``: warnings about a
    busy machine. Every value is escaped."""
    mode = str(meta.get("mode", ""))
    rows = []
    for nb in notebooks:
        state = "ok" if nb.get("ok") else "failed"
        link = f'<a href="{_E(str(nb["html"]), quote=True)}">{_E(str(nb["name"]))}</a>'
        error = f"<br><code>{_E(str(nb['error']))}</code>" if nb.get("error") else ""
        rows.append(
            f'<tr><td>{link}</td><td class="{state}">{state}{error}</td>'
            f'<td class="num">{_E(quantity(nb.get("seconds", 0.0), "s"))}</td></tr>'
        )
    failed = sum(not nb.get("ok") for nb in notebooks)
    verdict = (
        f'<p class="ok">All {len(notebooks)} notebooks ran.</p>'
        if not failed
        else f'<p class="failed">{failed} of {len(notebooks)} notebooks failed.</p>'
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_E(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head><body>'
        f"<h1>{_E(title)}</h1>{verdict}{_facts(meta)}<h2>Notebooks</h2>"
        "<table><tr><th>page</th><th>status</th><th>time</th></tr>"
        f"{''.join(rows)}</table>"
        f"{_headlines(headlines or {}, mode)}{_regressions(regressions, mode)}"
        f"{_claims(summary)}{_environment(environment, noise)}</body></html>"
    )


def environment_facts(results: Sequence[Any], meta: Mapping[str, Any]) -> tuple[dict, list]:
    """Where this ran (versions, CPU, commit) and how busy the machine was while it measured
    ``results``: the load average now and the most CPU other processes took during any
    measurement. Returns (facts for the index's environment table, warnings)."""
    from perflab.bench import environment

    env = environment()
    signs = [r.meta["noise"] for r in results if isinstance(r.meta.get("noise"), dict)]
    others = [s["other_cores"] for s in signs if isinstance(s.get("other_cores"), int | float)]
    busy = sum(o >= 0.3 for o in others)
    load = env.get("loadavg") or []
    facts = {
        "commit": meta.get("commit") or env.get("git") or "unknown",
        "perflab": env["perflab"],
        "python": f"{env['python']} ({env['implementation']})",
        "platform": env["platform"],
        "CPU": f"{env['cpu']} × {env['cpus']}",
        "load average (1, 5, 15 min)": ", ".join(number(v) for v in load) or "unknown",
        "other processes' CPU while measuring": (
            f"median {number(sorted(others)[len(others) // 2])} cores, worst "
            f"{number(max(others))} cores over {len(others)} measurements"
            if others
            else "not recorded"
        ),
        "libraries": ", ".join(f"{k} {v}" for k, v in env.get("libraries", {}).items()),
    }
    noise = []
    if others and busy:
        noise.append(
            f"The machine was busy: in {busy} of {len(others)} measurements other processes used "
            "0.3 CPU cores or more. Ratios measured side by side hold up; absolute times and "
            "run-to-run trends are less reliable."
        )
    if load and env.get("cpus") and load[0] > env["cpus"]:
        noise.append(
            f"The 1-minute load average ({number(load[0])}) exceeds the {env['cpus']} CPUs."
        )
    return facts, noise
