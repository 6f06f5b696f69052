"""An executed notebook as one self-contained HTML file (no code cells), and the honest marks
for a run papermill stopped early."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perflab.paths import write_page
from perflab.urls import redact_value

if TYPE_CHECKING:
    import nbformat


__all__ = [
    "banner",
    "export_html",
    "mark_interrupted",
]


_TEMPLATES = Path(__file__).parent.parent / "report" / "templates"


def mark_interrupted(nb: nbformat.NotebookNode, *, ename: str, evalue: str) -> int | None:
    """Make a notebook that papermill stopped early (timeout, dead kernel) look like what it is.

    papermill marks every cell "completed" when execution ends, whatever happened. Here the cell
    that was running gets the error as an output and status "failed", every later cell goes back
    to "pending" with no outputs, and the notebook is flagged as failed. Returns the index of the
    interrupted cell (None when no cell had started).
    """
    import nbformat

    started = [i for i, cell in enumerate(nb.cells) if _papermill(cell).get("start_time")]
    if not started:
        index = None
    else:
        index = started[-1]
        cell = nb.cells[index]
        cell.metadata.papermill.update(status="failed", exception=True)
        error = nbformat.v4.new_output("error", ename=ename, evalue=evalue)
        error.traceback = [f"{ename}: {evalue}"]
        cell.setdefault("outputs", []).append(error)
    for cell in nb.cells[(index if index is not None else -1) + 1 :]:
        meta = cell.get("metadata", {}).get("papermill")
        if meta is not None:
            meta.update(status="pending", start_time=None, end_time=None, duration=None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.setdefault("papermill", {})["exception"] = True
    return index


def banner(text: str) -> Any:
    import nbformat

    return nbformat.v4.new_markdown_cell(
        f'<div style="color:#b00020;font-weight:bold">{html.escape(text)}</div>',
        metadata={"tags": ["perflab-error"]},
    )


def export_html(
    nb: nbformat.NotebookNode,
    path: Path,
    *,
    title: str,
    parameters: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``nb`` as one self-contained HTML file: outputs and narrative, no code cells.

    Plots are already inline PNGs in the outputs; the parameters used head the page.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.from_dict(nb)  # a copy: the caller's notebook keeps its cells
    if parameters:
        rows = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(redact_value(v)))}</code></td></tr>"
            for k, v in parameters.items()
        )
        nb.cells.insert(
            0,
            nbformat.v4.new_markdown_cell(
                f"<table><tr><th>run parameter</th><th>value</th></tr>{rows}</table>"
            ),
        )
    exporter = HTMLExporter(
        extra_template_basedirs=[str(_TEMPLATES)],
        template_name="perflab_report",  # the lab template without CDN scripts or empty cells
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_page(path, body)
    return path


def _papermill(cell: Any) -> dict:
    return cell.get("metadata", {}).get("papermill", {})
