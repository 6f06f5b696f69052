"""The CLI's progress view: what it says, when, and the estimate it gives."""

from __future__ import annotations

import io
import json
import time

from perflab import progress
from perflab.progress import Progress, clock, expected_seconds


def wait_for(predicate, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)


def test_plain_lines_name_the_notebook_cell_note_and_what_is_left(tmp_path, monkeypatch):
    note_file = tmp_path / "note"
    err, out = io.StringIO(), io.StringIO()
    view = Progress(["01-a", "02-b"], {"01-a": 600, "02-b": 60}, note_file, stream=err, out=out,
                    live=False, tick=0.05, plain_every=0.0)  # fmt: skip
    view.start()
    try:
        hooks = view.hooks("01-a")
        assert hooks["note_file"] == note_file
        hooks["on_cell"](1, 4, "from perflab import lab\nrun = lab.suite_header('api')")
        # the kernel's side: a note through the environment variable run_notebook sets
        monkeypatch.setenv(progress.ENV, str(note_file))
        progress.note("suite api")
        wait_for(lambda: "suite api" in err.getvalue())
        view.done("ok     01-a.ipynb   1.0 s")
    finally:
        view.close()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("[1/2] 01-a · starting the kernel")
    assert any(
        line.startswith("[1/2] 01-a · cell 2/4 (run = lab.suite_header('api'))") for line in lines
    )
    noted = next(line for line in lines if "suite api" in line)
    assert "cell 2/4" in noted and "about 1" in noted and "left" in noted  # ~10 min + 1 min
    assert "\r" not in err.getvalue()  # not a terminal: plain lines only
    assert out.getvalue() == "ok     01-a.ipynb   1.0 s\n"


def test_a_terminal_gets_one_redrawn_line_wiped_before_a_finished_notebook(tmp_path):
    err, out = io.StringIO(), io.StringIO()
    view = Progress(["01-a"], {}, tmp_path / "note", stream=err, out=out, live=True, tick=0.05)
    view.start()
    try:
        view.notebook("01-a")
        wait_for(lambda: err.getvalue().count("\r") >= 3)  # redrawn every tick
        view.done("ok     01-a.ipynb")
    finally:
        view.close()
    text = err.getvalue()
    assert "\n" not in text and text.count("\r\x1b[2K[1/1] 01-a") >= 3
    assert "left" not in text  # no estimate without an earlier run or declared seconds
    assert text.endswith("\r\x1b[2K")  # wiped before the finished line went to stdout
    assert out.getvalue() == "ok     01-a.ipynb\n"


def test_estimates_come_from_the_last_report_of_the_same_mode_then_the_metadata(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for stem, seconds in (("01-a", {"full": 40}), ("02-b", {"quick": 3}), ("03-c", {})):
        doc = {"cells": [], "metadata": {"perflab": {"seconds": seconds}}}
        (nbs / f"{stem}.ipynb").write_text(json.dumps(doc))
    outputs = tmp_path / "outputs"
    for name, mode, seconds in (("old", "full", 99.0), ("new", "full", 12.5), ("q", "quick", 1)):
        (outputs / name).mkdir(parents=True)
        doc = {
            "meta": {"mode": mode},
            "notebooks": [{"name": "02-b", "ok": True, "seconds": seconds}],
        }
        (outputs / name / "run.json").write_text(json.dumps(doc))
        time.sleep(0.01)  # the newest by modification time wins
    (outputs / "q" / "run.json").touch()
    (outputs / "broken").mkdir()
    (outputs / "broken" / "run.json").write_text("{not json")
    paths = sorted(nbs.glob("*.ipynb"))
    assert expected_seconds(paths, "full", outputs) == {"02-b": 12.5, "01-a": 40.0}
    assert expected_seconds(paths, "quick", outputs) == {"02-b": 1.0}


def test_note_without_the_variable_does_nothing_and_never_fails(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    progress.note("nothing to say")  # no file named: no error, nothing written
    monkeypatch.setenv(progress.ENV, str(tmp_path / "missing-folder" / "note"))
    progress.note("a folder that is gone")  # progress must never fail a measurement
    monkeypatch.setenv(progress.ENV, str(tmp_path / "note"))
    monkeypatch.setenv(progress.CONTEXT_ENV, "process 3/8")
    progress.note("data/signals-loop")
    assert (tmp_path / "note").read_text() == "data/signals-loop (process 3/8)"


def test_clock():
    assert [clock(s) for s in (0, 59.6, 61, 3725)] == ["0:00", "1:00", "1:01", "1:02:05"]
