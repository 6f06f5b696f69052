"""Where a long run is, told to whoever waits for it.

Two sides. Inside a kernel (or a suite's worker process), :func:`note` records what is being
measured — ``"api: GET /signals"`` — in the file named by ``PERFLAB_PROGRESS``; nothing happens
when the variable is unset, so library users pay one environment lookup. In the CLI,
:class:`Progress` shows the notebook running, its cell, that note, the elapsed time and an
estimate of what is left: one line redrawn every second on a terminal, plain lines when the
output is not one (cron, CI) — a line per change, at most one per ``PLAIN_EVERY`` seconds unless
the cell changed, and one every ``HEARTBEAT`` seconds while nothing changes.

The estimate comes from the last report of the same mode (``outputs/*/run.json``) or, before
there is one, from the seconds the notebook's metadata declares (``perflab.seconds``); it is
labelled as an estimate and never shown when neither exists."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from perflab.settings import variable

__all__ = ["CONTEXT_ENV", "ENV", "Progress", "clock", "expected_seconds", "note", "watched"]

ENV = "PERFLAB_PROGRESS"
CONTEXT_ENV = "PERFLAB_PROGRESS_CONTEXT"  # set for worker processes: "process 3/8"
PLAIN_EVERY = 10.0  # seconds between plain lines for notes within one cell
HEARTBEAT = 30.0  # seconds without a change before a plain line repeats where it is
WIDTH = 120  # a terminal line is cut here so that it never wraps (a wrapped \r line cannot redraw)


def note(text: str) -> None:
    """Say what this process is measuring now (a kernel, a suite worker). A no-op unless
    ``PERFLAB_PROGRESS`` names a file; a file that cannot be written is left alone (progress
    must never fail a measurement)."""
    path = variable(ENV)
    if not path:
        return
    context = variable(CONTEXT_ENV)
    text = f"{text} ({context})" if context else text
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text.replace("\n", " ")[:200])
    except OSError:  # a full disk or a removed folder: the run matters, its progress does not
        return


def watched() -> bool:
    """Whether someone watches this process's progress bars: a terminal, or a Jupyter kernel
    that perflab's headless runner did not start (those runs report to the CLI through
    :func:`note`, and a widget would be saved into the executed notebook). tqdm.auto then
    draws a widget in JupyterLab (ipywidgets, the ``lab`` extra) and text in a terminal."""
    if sys.stderr.isatty():
        return True
    if "ipykernel" not in sys.modules or variable(ENV) is not None:
        return False
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour)."""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def expected_seconds(notebooks: Sequence[Path], mode: str, outputs_dir: Path) -> dict[str, float]:
    """Seconds each notebook (by stem) is expected to take in ``mode``: from the newest report of
    that mode under ``outputs_dir`` where it succeeded, else the notebook's ``perflab.seconds``
    metadata for the mode. Notebooks with neither are left out."""
    found: dict[str, float] = {}
    for run_json in sorted(outputs_dir.glob("*/run.json"), key=_mtime, reverse=True):
        try:
            doc = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a report being written, or damaged: not an estimate
            continue
        if not isinstance(doc, dict) or doc.get("meta", {}).get("mode") != mode:
            continue
        for entry in doc.get("notebooks", []):
            if entry.get("ok") and isinstance(entry.get("seconds"), int | float):
                found.setdefault(str(entry.get("name")), float(entry["seconds"]))
        break
    for path in notebooks:
        if path.stem in found:
            continue
        try:
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        except (OSError, ValueError):
            continue
        declared = meta.get("perflab", {}).get("seconds", {}).get(mode)
        if isinstance(declared, int | float) and declared > 0:
            found[path.stem] = float(declared)
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class Progress:
    """The CLI's view of a run of ``notebooks`` (stems, in order); ``expected`` maps stems to
    the seconds each is expected to take. Call :meth:`start`, :meth:`notebook`, :meth:`cell`
    (a papermill hook) and :meth:`done`, :meth:`say` for lines of its own, :meth:`close` at the
    end. ``note_file`` is the file kernels write their :func:`note` into. The progress goes to
    ``stream`` (stderr), finished notebooks' lines to ``out`` (stdout), the line wiped first."""

    def __init__(
        self,
        notebooks: Sequence[str],
        expected: Mapping[str, float],
        note_file: Path,
        *,
        stream: IO[str] | None = None,
        out: IO[str] | None = None,
        live: bool | None = None,
        tick: float = 1.0,
        plain_every: float = PLAIN_EVERY,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.stream = stream or sys.stderr  # the progress line
        self.out = out or sys.stdout  # the finished notebooks' lines
        self.live = self.stream.isatty() if live is None else live
        self.notebooks = list(notebooks)
        self.expected = dict(expected)
        self.note_file = note_file
        self.tick = tick
        self.plain_every, self.heartbeat = plain_every, heartbeat
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: str | None = None
        self._index = 0
        self._started = time.monotonic()
        self._nb_started = self._started
        self._cell = ""
        self._note = ""
        self._last_plain = ("", "", 0.0)  # (cell, note, when) of the last plain line
        self._shown = False

    # the run's events -------------------------------------------------------------------
    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="perflab-progress", daemon=True)
        self._thread.start()

    def notebook(self, stem: str) -> None:
        with self._lock:
            self._current = stem
            self._index = self.notebooks.index(stem) if stem in self.notebooks else self._index
            self._nb_started = time.monotonic()
            self._cell, self._note = "starting the kernel", ""
            self._clear_note_file()
            self._emit()

    def hooks(self, stem: str) -> dict[str, Any]:
        """Announce notebook ``stem`` and return the keyword arguments that connect
        :func:`perflab.notebooks.run_notebook` to this view."""
        self.notebook(stem)
        return {"on_cell": self.cell, "note_file": self.note_file}

    def cell(self, index: int, total: int, source: str) -> None:
        """papermill's cell-start hook for code cells: ``index`` counts from 0 over ``total``
        cells. The cell is named by its first line of work: not a magic, comment or import."""
        lines = [ln.strip() for ln in source.splitlines() if ln.strip()]
        work = [ln for ln in lines if not ln.startswith(("%", "#", "import ", "from "))]
        first = (work or lines or [""])[0]
        first = first if len(first) <= 40 else first[:37] + "..."
        with self._lock:
            self._cell = f"cell {index + 1}/{total}" + (f" ({first})" if first else "")
            self._note = ""
            self._clear_note_file()
            self._emit()

    def done(self, line: str) -> None:
        """A finished notebook's line, printed above the progress line."""
        with self._lock:
            self._current = None
            self._put_line(line)

    def say(self, line: str) -> None:
        with self._lock:
            self._put_line(line)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._wipe()

    # rendering ----------------------------------------------------------------------------
    def line(self) -> str:
        """The progress line as it reads now."""
        now = time.monotonic()
        parts = [f"[{self._index + 1}/{len(self.notebooks)}] {self._current}"]
        if self._cell:
            parts.append(self._cell)
        if self._note:
            parts.append(self._note)
        timing = f"{clock(now - self._nb_started)} ({clock(now - self._started)} in all)"
        left = self.remaining(now)
        if left is not None:
            timing += f", about {clock(left)} left"
        parts.append(timing)
        return " · ".join(parts)

    def remaining(self, now: float | None = None) -> float | None:
        """Estimated seconds until the run ends, or None when a notebook still to run has no
        estimate. A notebook past its estimate is taken to need a tenth of its time again."""
        now = time.monotonic() if now is None else now
        later = self.notebooks[self._index + 1 :]
        if self._current is None or any(stem not in self.expected for stem in later):
            return None
        expected = self.expected.get(self._current)
        if expected is None:
            return None
        spent = now - self._nb_started
        current = expected - spent if spent < expected else 0.1 * spent
        return current + sum(self.expected[stem] for stem in later)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                if self._current is None:
                    continue
                self._note = self._read_note()
                self._emit()

    def _emit(self) -> None:
        if self._current is None:
            return
        if self.live:
            text = self.line()
            text = text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            self._shown = True
            return
        now = time.monotonic()
        cell, noted, when = self._last_plain
        if (
            self._cell != cell
            or (self._note != noted and now - when >= self.plain_every)
            or now - when >= self.heartbeat
        ):
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_plain = (self._cell, self._note, now)

    def _put_line(self, line: str) -> None:
        self._wipe()
        self.out.write(line + "\n")
        self.out.flush()

    def _wipe(self) -> None:
        if self.live and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False

    def _read_note(self) -> str:
        try:
            return self.note_file.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _clear_note_file(self) -> None:
        try:
            self.note_file.write_text("", encoding="utf-8")
        except OSError:
            return
