"""The index page of a report run: plain data in, one self-contained HTML string out."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["index_page"]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0}
th,td{border-bottom:1px solid #ddd;padding:.35rem .8rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.ok{color:#1b7f3b}.failed{color:#b00020}code{font-size:90%}
.ci{color:#666;font-size:90%;white-space:nowrap}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#666}
"""


def _number(value: Any) -> str:
    """A figure for a table cell; missing (None, NaN) is a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.3g}"


def _summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """The claims audit as a table: claim, claimed, measured with its CI, verdict (escaped)."""
    if not rows:
        return ""
    e = html.escape
    body = []
    for r in rows:
        claimed, measured = _number(r.get("claimed")), _number(r.get("measured"))
        verdict = str(r.get("verdict", ""))
        css = {"confirmed": "ok", "not reproduced": "failed"}.get(verdict, "")
        unit = " " + e(str(r.get("unit", "")))
        claimed_cell = e(claimed) + (unit if claimed != "—" else "")
        measured_cell = e(measured) + (unit if measured != "—" else "")
        low, high = _number(r.get("ci_low")), _number(r.get("ci_high"))
        if measured != "—" and "—" not in (low, high) and low != high:
            measured_cell += f' <span class="ci">(95 % CI {e(low)}–{e(high)})</span>'
        body.append(
            f"<tr><td>{e(str(r.get('claim', '')))}</td><td>{claimed_cell}</td>"
            f'<td>{measured_cell}</td><td class="{css}">{e(verdict)}</td></tr>'
        )
    return (
        "<h2>The seed's claims, measured</h2><table><tr><th>claim</th><th>claimed</th>"
        f"<th>measured</th><th>verdict</th></tr>{''.join(body)}</table>"
    )


def index_page(
    *,
    title: str,
    notebooks: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    summary: Sequence[Mapping[str, Any]] = (),
) -> str:
    """HTML for a report run.

    ``notebooks``: one mapping per notebook with ``name``, ``html`` (a relative link), ``ok``,
    ``seconds`` and, when it failed, ``error``. ``meta``: run facts shown as a list (when, host,
    version, parameters). ``summary``: claims-audit rows. Every value is escaped.
    """
    e = html.escape
    facts = "".join(f"<dt>{e(str(k))}</dt><dd>{e(str(v))}</dd>" for k, v in meta.items())
    rows = []
    for nb in notebooks:
        state = "ok" if nb.get("ok") else "failed"
        link = f'<a href="{e(str(nb["html"]), quote=True)}">{e(str(nb["name"]))}</a>'
        error = f"<br><code>{e(str(nb['error']))}</code>" if nb.get("error") else ""
        rows.append(
            f'<tr><td>{link}</td><td class="{state}">{state}{error}</td>'
            f"<td>{float(nb.get('seconds', 0.0)):.1f} s</td></tr>"
        )
    failed = sum(not nb.get("ok") for nb in notebooks)
    verdict = (
        f'<p class="ok">All {len(notebooks)} notebooks ran.</p>'
        if not failed
        else f'<p class="failed">{failed} of {len(notebooks)} notebooks failed.</p>'
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{e(title)}</h1>{verdict}<dl>{facts}</dl>"
        f"{_summary(summary)}<h2>Notebooks</h2>"
        "<table><tr><th>notebook</th><th>status</th><th>time</th></tr>"
        f"{''.join(rows)}</table></body></html>"
    )
