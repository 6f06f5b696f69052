"""Execute one notebook headless with papermill: parameters checked first, servers started,
the kernel given its environment, failures located, HTML written whatever happened."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perflab import servers
from perflab.errors import ConfigurationError, NotebookError
from perflab.notebooks.export import _papermill, banner, export_html, mark_interrupted
from perflab.notebooks.kernel import (
    ensure_kernelspec,
    kernel_environ,
    kernel_manager_class,
    kill_kernels,
)
from perflab.notebooks.parameters import coerce_parameters, read_parameters
from perflab.paths import probe_writable
from perflab.settings import Settings, resolve
from perflab.urls import redact_value

if TYPE_CHECKING:
    import nbformat


__all__ = [
    "NotebookRun",
    "RunInterrupted",
    "output_folder",
    "read_notebook",
    "run_notebook",
]


@dataclasses.dataclass(frozen=True)
class NotebookRun:
    """What :func:`run_notebook` produced."""

    notebook: Path
    ipynb: Path
    html: Path
    parameters: dict[str, Any]
    seconds: float
    ok: bool = True
    error: str | None = None
    cell_index: int | None = None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run. A ``KeyboardInterrupt``, so it stops whatever
    loop called :func:`run_notebook` (a report, a sweep) rather than being taken for one failed
    notebook. The message says where the run stopped; ``exit_code`` is 128 + the signal."""

    def __init__(self, message: str = "", *, signum: int = signal.SIGINT) -> None:
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


def output_folder(path: Path, option: str = "--out") -> Path:
    """Create ``path`` as a folder this process can write in, or raise a one-line
    :class:`ConfigurationError` naming ``option`` (it is a file, lies under a file, cannot be
    created, e.g. in /proc)."""
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"{option} {path} is a file; give a folder", name=option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigurationError(
            f"{option} {path} cannot be used as an output folder ({err.strerror}); give a "
            "folder you can write",
            name=option,
        ) from err
    probe_writable(path, option)
    return path


def read_notebook(path: Path, label: str) -> nbformat.NotebookNode:
    """The notebook at ``path``, or a one-line :class:`ConfigurationError` when it is not a
    Python notebook papermill can run (not JSON, no cells, another kernel language). One that
    names no language at all runs on perflab's Python kernel."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        cells = nb.cells
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as err:
        raise ConfigurationError(
            f"cannot read notebook {label}: {_one_line(str(err)) or type(err).__name__}; "
            "give an .ipynb saved by Jupyter",
            name="NOTEBOOK",
        ) from err
    except nbformat.ValidationError as err:
        raise ConfigurationError(
            f"cannot read notebook {label}: {_one_line(err.message)}; give an .ipynb saved by "
            "Jupyter",
            name="NOTEBOOK",
        ) from err
    if not isinstance(cells, list):
        raise ConfigurationError(f"notebook {label} has no list of cells", name="NOTEBOOK")
    meta = nb.get("metadata", {})
    language = (meta.get("kernelspec") or {}).get("language") or (
        meta.get("language_info") or {}
    ).get("name")
    if not language:  # papermill needs one to inject parameters; perflab's kernel is Python
        return nb
    if str(language).lower() != "python":
        raise ConfigurationError(
            f"notebook {label} is a {language} notebook; perflab runs Python notebooks",
            name="NOTEBOOK",
        )
    return nb


def _locate(source_nb: Any, executed_nb: Any, index: int) -> tuple[int | None, str]:
    """Executed cell ``index`` as (its index in the source notebook, a name for messages).

    papermill adds cells (injected parameters, an error banner), so cells are matched by id;
    a cell papermill added has no source index and is named from the executed notebook.
    """
    cell_id = executed_nb.cells[index].get("id")
    for i, cell in enumerate(source_nb.cells):
        if cell_id and cell.get("id") == cell_id:
            return i, _cell_name(source_nb, i)
    return None, _cell_name(executed_nb, index)


def _cell_name(nb: Any, index: int) -> str:
    """``cell 3/7 (first line of its code)``: counted from 1, as a reader scrolling would."""
    text = nb.cells[index].source
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line if len(line) <= 60 else line[:57] + "..."
    return f"cell {index + 1}/{len(nb.cells)} ({line})"


def run_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    out_dir: str | Path | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    start_servers: bool = True,
    progress: bool = False,
    log_output: bool = False,
    on_cell: Callable[[int, int, str], None] | None = None,
    note_file: Path | None = None,
) -> NotebookRun:
    """Execute ``notebook`` with papermill and write ``<stem>.ipynb`` and ``<stem>.html``.

    Parameters are checked against the notebook's ``parameters`` cell before any kernel starts
    (strings are converted to the declared types). ``timeout`` bounds the whole run, kernel start
    included. With ``start_servers``, Redis and PostgreSQL are started (embedded) or checked
    (external) first, so an unreachable URL fails here rather than in a cell.

    ``on_cell(index, total, source)`` is called as each cell starts (counted from 0 over the
    executed notebook's cells); ``note_file`` is handed to the kernel as ``PERFLAB_PROGRESS``
    for :func:`perflab.progress.note` (:class:`perflab.progress.Progress` reads it).

    Raises :class:`NotebookError` when a cell fails or time runs out; the executed notebook and
    its HTML are still written, showing where it stopped.
    """
    import nbformat

    settings = settings or resolve()
    path = Path(notebook)
    label = str(notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ConfigurationError(
            f"notebook not found: {label} (give the path of an .ipynb file)", name="NOTEBOOK"
        )
    if timeout is not None and not timeout > 0:
        raise ConfigurationError(f"--timeout must be positive, got {timeout}", name="--timeout")
    source_nb = read_notebook(path, label)
    declared = read_parameters(source_nb)
    values = coerce_parameters(declared, parameters or {}, notebook=label)
    effective = {name: values.get(name, p.default) for name, p in declared.items()}

    out = Path(out_dir) if out_dir else settings.outputs_dir / "runs" / f"{_stamp()}-{path.stem}"
    output_folder(out, "--out" if out_dir else "PERFLAB_OUTPUTS")
    ipynb, html_path = out / f"{path.stem}.ipynb", out / f"{path.stem}.html"

    if start_servers:
        servers.start(settings)
    kernel = ensure_kernelspec()

    import papermill
    from nbclient.exceptions import CellTimeoutError

    started = time.monotonic()
    deadline = None if timeout is None else started + timeout

    def remaining(_cell: Any = None) -> float | None:
        # nbclient treats 0 as "no limit", so never hand it 0.
        return None if deadline is None else max(deadline - time.monotonic(), 0.01)

    failure: NotebookError | None = None
    interrupted: RunInterrupted | None = None
    kernels: list = []

    def stop_marks(ename: str, why: str) -> tuple[str, int | None]:
        """papermill has marked every cell completed (or not written the output at all):
        mark the cell that was running failed and later ones pending, add a banner, save."""
        executed = (
            nbformat.read(ipynb, as_version=4) if ipynb.exists() else nbformat.from_dict(source_nb)
        )
        cut = mark_interrupted(executed, ename=ename, evalue=why)
        index, name = (None, "") if cut is None else _locate(source_nb, executed, cut)
        where = "before any cell ran" if cut is None else f"in {name}"
        executed.cells.insert(0, banner(f"Execution stopped {where}: {why}."))
        nbformat.write(executed, ipynb)
        return f"{label}: stopped {where}: {why}; see {html_path}", index

    env = {**os.environ, **kernel_environ(settings)}  # the kernel's, not this process's
    if note_file is not None:
        from perflab.progress import ENV

        env[ENV] = str(note_file)
    hooks = {"engine_name": _engine(), "on_cell": on_cell} if on_cell else {}
    with open(out / "kernel.log", "ab") as kernel_log:
        try:
            papermill.execute_notebook(
                str(path),
                str(ipynb),
                parameters=values,
                kernel_name=kernel,
                language="python",  # perflab's kernel; a notebook without kernelspec needs it
                cwd=str(path.parent),
                progress_bar=progress,
                log_output=log_output,
                start_timeout=max(1, math.ceil(min(60.0, remaining() or 60.0))),
                timeout_func=remaining if deadline else None,
                kernel_manager_class=kernel_manager_class(kernel_log, kernels, env),
                **hooks,
            )
        except papermill.PapermillExecutionError as err:
            executed = nbformat.read(ipynb, as_version=4)
            failed = next(
                (i for i, c in enumerate(executed.cells) if _papermill(c).get("exception")),
                err.cell_index,
            )
            index, name = _locate(source_nb, executed, failed)
            failure = NotebookError(
                f"{label}: {name} failed: {err.ename}: {_one_line(err.evalue)}; see {html_path}",
                notebook=label,
                cell_index=index,
                output=str(ipynb),
            )
        except (TimeoutError, RuntimeError) as err:
            # A cell or the kernel start ran out of time (CellTimeoutError, TimeoutError), or the
            # kernel died or never answered (DeadKernelError, RuntimeError).
            if isinstance(err, (CellTimeoutError, TimeoutError)) and timeout is not None:
                ename, why = "Timeout", f"the run exceeded its {timeout:g} s time limit"
            else:
                ename, why = type(err).__name__, _one_line(str(err)) or "the kernel died"
            message, index = stop_marks(ename, why)
            failure = NotebookError(message, notebook=label, cell_index=index, output=str(ipynb))
        except KeyboardInterrupt as err:
            # Ctrl-C, or SIGTERM turned into RunInterrupted by the CLI: the same honest marks as
            # a timeout, then the interrupt goes on (after the HTML is written, below).
            signum = getattr(err, "signum", signal.SIGINT)
            kill_kernels(kernels)
            name = signal.Signals(signum).name
            why = f"interrupted by {name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")
            message, _ = stop_marks("KeyboardInterrupt", why)
            interrupted = RunInterrupted(message, signum=signum)
    seconds = time.monotonic() - started
    executed = nbformat.read(ipynb, as_version=4)
    if _redact_parameters(executed, values):
        nbformat.write(executed, ipynb)  # the saved notebook keeps no password either
    export_html(executed, html_path, title=path.stem, parameters=effective)
    if interrupted is not None:
        raise interrupted
    if failure is not None:
        raise failure
    return NotebookRun(
        notebook=path, ipynb=ipynb, html=html_path, parameters=values, seconds=seconds
    )


def _engine() -> str:
    """papermill's nbclient engine with a cell-start hook (``on_cell=``), registered once as
    ``perflab``: papermill's own progress bar is tqdm over cells with no room for the rest."""
    from papermill.engines import NBClientEngine, papermill_engines

    class HookedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            on_cell = kwargs.pop("on_cell", None)
            if on_cell is not None:
                cell_start = nb_man.cell_start

                def hooked(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                    if cell.get("cell_type") == "code":  # markdown "runs" in no time
                        on_cell(cell_index or 0, len(nb_man.nb.cells), cell.get("source", ""))
                    return cell_start(cell, cell_index, **kw)

                nb_man.cell_start = hooked
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("perflab", HookedEngine)  # a dict entry: the same each time
    return "perflab"


def _redact_parameters(executed: Any, values: dict[str, Any]) -> bool:
    """Passwords in URL parameters out of the executed notebook: papermill writes every value
    into the injected-parameters cell and the notebook's metadata. True when one was found."""
    secret = {k: v for k, v in values.items() if redact_value(v) != v}
    if not secret:
        return False
    for cell in executed.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            for value in secret.values():
                cell.source = cell.source.replace(repr(value), repr(redact_value(value)))
                cell.source = cell.source.replace(str(value), str(redact_value(value)))
    recorded = executed.metadata.get("papermill", {}).get("parameters", {})
    for key in secret:
        if key in recorded:
            recorded[key] = redact_value(recorded[key])
    return True


def _one_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())
