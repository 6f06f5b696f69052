"""Run a lab notebook headless: typed parameters checked up front, papermill on a real kernel,
failures that are never disguised as success, and a one-file HTML export without code.

The pieces that decide things (reading the ``parameters`` cell, converting values, marking a
timed-out run) are plain functions over notebook data; :func:`run_notebook` is the I/O shell.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import html
import json
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from perflab import servers
from perflab.errors import ConfigurationError, NotebookError, ParameterError
from perflab.settings import Settings, resolve

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "KERNEL_NAME",
    "NotebookRun",
    "Parameter",
    "RunInterrupted",
    "coerce_parameters",
    "ensure_kernelspec",
    "export_html",
    "mark_interrupted",
    "output_folder",
    "read_notebook",
    "read_parameters",
    "run_notebook",
]

KERNEL_NAME = "perflab"
_TEMPLATES = Path(__file__).parent / "report" / "templates"
_TYPES: dict[str, type] = {t.__name__: t for t in (bool, int, float, str, list, dict)}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


# ----------------------------------------------------------------------------------------------
# parameters: read the typed `parameters` cell, convert what the user passed


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One name assigned in a notebook's ``parameters`` cell."""

    name: str
    type: type | None  # None: no annotation and no typed default, so any value is taken as given
    default: Any
    nullable: bool = False
    help: str = ""


def _parameters_cell(nb: nbformat.NotebookNode) -> Any | None:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def _annotation_type(node: ast.expr | None) -> tuple[type | None, bool]:
    """``int`` → (int, False); ``str | None`` / ``Optional[str]`` → (str, True); else (None, …)."""
    if node is None:
        return None, False
    if isinstance(node, ast.Name):
        return _TYPES.get(node.id), False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
        nones = [s for s in sides if isinstance(s, ast.Constant) and s.value is None]
        others = [s for s in sides if s not in nones]
        if nones and len(others) == 1:
            return _annotation_type(others[0])[0], True
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id == "Optional":
            return _annotation_type(node.slice)[0], True
        return _TYPES.get(node.value.id), False  # list[int] -> list
    return None, False


def read_parameters(nb: nbformat.NotebookNode) -> dict[str, Parameter]:
    """The parameters a notebook declares, in order, from its cell tagged ``parameters``.

    The type comes from the annotation (``n: int = 10``), else from the default's type.
    A trailing comment on the line becomes the parameter's help.
    """
    cell = _parameters_cell(nb)
    if cell is None:
        return {}
    source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ConfigurationError(
            f"the parameters cell does not parse as Python (line {err.lineno}): {err.msg}"
        ) from err
    lines = source.splitlines()
    found: dict[str, Parameter] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names, annotation, value = [stmt.target.id], stmt.annotation, stmt.value
        elif isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            names, annotation, value = [t.id for t in stmt.targets], None, stmt.value
        else:
            continue
        literal = True
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            literal = False
            default = ast.get_source_segment(source, value)  # an expression: keep its text
        declared, nullable = _annotation_type(annotation)
        if declared is None and annotation is None and literal and type(default) in _TYPES.values():
            declared = type(default)
        nullable = nullable or default is None
        comment = lines[stmt.lineno - 1].partition("#")[2].strip() if stmt.lineno else ""
        for name in names:
            found[name] = Parameter(name, declared, default, nullable, comment)
    return found


def _convert(param: Parameter, value: Any) -> Any:
    """``value`` as ``param``'s type, or raise ValueError saying what was expected."""
    kind = param.type
    spelled_none = isinstance(value, str) and value in ("None", "null")
    if value is None or (spelled_none and (kind is not str or param.nullable)):
        if param.nullable or kind is None:
            return None
        raise ValueError("None is not allowed")
    if kind is None:
        return value
    if not isinstance(value, str):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise ValueError(f"got {type(value).__name__}")
    text = value.strip()
    if kind is str:
        return value
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("use true or false")
    if kind is int:
        return int(text)
    if kind is float:
        number = float(text)
        if math.isnan(number):
            raise ValueError("NaN is not a number perflab can use")
        return number
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = ast.literal_eval(text)
    if not isinstance(parsed, kind):
        raise ValueError(f"got {type(parsed).__name__}")
    return parsed


def coerce_parameters(
    declared: Mapping[str, Parameter], given: Mapping[str, Any], *, notebook: str = "the notebook"
) -> dict[str, Any]:
    """Check ``given`` against ``declared`` and convert strings (from the command line) to the
    declared types. Raises :class:`ParameterError` naming the first bad parameter."""
    result: dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared:
            known = ", ".join(declared) or "none (it has no cell tagged 'parameters')"
            raise ParameterError(
                f"unknown parameter {name!r} for {notebook}; it takes: {known}", name=name
            )
        param = declared[name]
        try:
            result[name] = _convert(param, value)
        except (ValueError, SyntaxError, TypeError) as err:
            expected = param.type.__name__ if param.type else "a value"
            if param.nullable and param.type:
                expected += " or None"
            raise ParameterError(
                f"parameter {name!r} of {notebook} expects {expected}, got {value!r} ({err})",
                name=name,
            ) from err
    return result


# ----------------------------------------------------------------------------------------------
# outcome of a run


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


def _banner(text: str) -> Any:
    import nbformat

    return nbformat.v4.new_markdown_cell(
        f'<div style="color:#b00020;font-weight:bold">{html.escape(text)}</div>',
        metadata={"tags": ["perflab-error"]},
    )


# ----------------------------------------------------------------------------------------------
# HTML export


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
            f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>"
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
    path.write_text(body, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# output folder


def output_folder(path: Path, option: str = "--out") -> Path:
    """Create ``path`` as a folder this process can write in, or raise a one-line
    :class:`ConfigurationError` naming ``option`` (it is a file, lies under a file, cannot be
    created, e.g. in /proc)."""
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"{option} {path} is a file; give a folder", name=option)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".perflab-probe-", dir=path)
    except OSError as err:
        raise ConfigurationError(
            f"{option} {path} cannot be used as an output folder ({err.strerror}); give a "
            "folder you can write",
            name=option,
        ) from err
    os.close(handle)
    os.unlink(probe)
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


# ----------------------------------------------------------------------------------------------
# kernel


def ensure_kernelspec(name: str = KERNEL_NAME) -> str:
    """Install (once) a kernelspec named ``name`` that runs this interpreter, so notebooks run
    in the environment perflab is installed in whichever Jupyter starts them."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        if spec.argv and Path(spec.argv[0]) == Path(sys.executable):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    try:
        install(kernel_name=name, display_name="Python (perflab)", prefix=sys.prefix)
    except PermissionError:  # a system-wide interpreter: fall back to the user's kernels
        install(kernel_name=name, display_name="Python (perflab)", user=True)
    return name


def _kernel_manager_class(log: IO[bytes], started: list | None = None) -> type:
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        """Kernel over unix sockets (no TCP port, and none of ipykernel 7's 'running over TCP
        without encryption' warning); the kernel process's own stdout/stderr (not the notebook's
        output, which travels over the sockets) go to ``log`` rather than the terminal."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            # Socket paths of our own: the default ("kernel-ipc-N" in the working directory)
            # is shared by every kernel started there, so two at once (a sweep) cross wires.
            kwargs.setdefault(
                "ip", os.path.join(tempfile.gettempdir(), f"perflab-{uuid.uuid4().hex[:12]}")
            )
            super().__init__(**kwargs)
            if started is not None:
                started.append(self)

        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            await super().start_kernel(**kw)

    return IPCKernelManager


@contextlib.contextmanager
def _environ(updates: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the kernel this process starts, and put them back afterwards."""
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _kernel_environ(settings: Settings) -> dict[str, str]:
    env = {
        "PERFLAB_STATE_DIR": str(settings.state_dir),
        "PERFLAB_OUTPUTS": str(settings.outputs_dir),
        "PERFLAB_KEY_PREFIX": settings.key_prefix,
        "PERFLAB_SCHEMA": settings.schema,
        "PERFLAB_RESULTS": str(settings.results_dir),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # debugpy's frozen-modules note at kernel start
    }
    for variable, value in (
        ("PERFLAB_REDIS_URL", settings.redis_url),
        ("PERFLAB_DATABASE_URL", settings.database_url),
        ("PERFLAB_READ_DATABASE_URL", settings.read_database_url),
        ("PERFLAB_HISTORY_URL", settings.history_url),
    ):
        if value is not None:
            env[variable] = value
    return env


# ----------------------------------------------------------------------------------------------
# the run


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


def _papermill(cell: Any) -> dict:
    return cell.get("metadata", {}).get("papermill", {})


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
) -> NotebookRun:
    """Execute ``notebook`` with papermill and write ``<stem>.ipynb`` and ``<stem>.html``.

    Parameters are checked against the notebook's ``parameters`` cell before any kernel starts
    (strings are converted to the declared types). ``timeout`` bounds the whole run, kernel start
    included. With ``start_servers``, Redis and PostgreSQL are started (embedded) or checked
    (external) first, so an unreachable URL fails here rather than in a cell.

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
        executed.cells.insert(0, _banner(f"Execution stopped {where}: {why}."))
        nbformat.write(executed, ipynb)
        return f"{label}: stopped {where}: {why}; see {html_path}", index

    with _environ(_kernel_environ(settings)), open(out / "kernel.log", "ab") as kernel_log:
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
                kernel_manager_class=_kernel_manager_class(kernel_log, kernels),
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
            _kill_kernels(kernels)
            name = signal.Signals(signum).name
            why = f"interrupted by {name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")
            message, _ = stop_marks("KeyboardInterrupt", why)
            interrupted = RunInterrupted(message, signum=signum)
    seconds = time.monotonic() - started
    executed = nbformat.read(ipynb, as_version=4)
    export_html(executed, html_path, title=path.stem, parameters=effective)
    if interrupted is not None:
        raise interrupted
    if failure is not None:
        raise failure
    return NotebookRun(
        notebook=path, ipynb=ipynb, html=html_path, parameters=values, seconds=seconds
    )


def _kill_kernels(managers: list) -> None:
    """Kill the kernels an interrupted run leaves behind (nbclient's own cleanup never runs when
    the interrupt lands in the event loop)."""
    for manager in managers:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)


def _one_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())
