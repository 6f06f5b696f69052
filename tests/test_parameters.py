"""Reading a notebook's typed parameters cell and converting what the user passed: pure
functions, no kernel."""

from __future__ import annotations

import math

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perflab.errors import ParameterError
from perflab.notebooks import coerce_parameters, mark_interrupted, read_parameters

CELL = """\
quick: bool = False  # small run
samples: int = 2000  # round trips
ratio: float = 0.8
name = "lab"
sizes: list = [1, 2]
label: str | None = None
when = None
expr = 2 ** 10
"""


def notebook(source: str = CELL, tags=("parameters",)) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# t"),
        nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}),
        nbformat.v4.new_code_cell("print(quick)"),
    ]
    return nb


def test_types_come_from_annotations_then_defaults():
    params = read_parameters(notebook())
    assert list(params) == ["quick", "samples", "ratio", "name", "sizes", "label", "when", "expr"]
    assert params["quick"].type is bool and params["quick"].default is False
    assert params["samples"].type is int and params["samples"].help == "round trips"
    assert params["ratio"].type is float
    assert params["name"].type is str and params["name"].default == "lab"
    assert params["sizes"].type is list
    assert params["label"].type is str and params["label"].nullable
    assert params["when"].type is None and params["when"].nullable
    assert params["expr"].type is None and params["expr"].default == "2 ** 10"


def test_no_parameters_cell_means_no_parameters():
    assert read_parameters(notebook(tags=())) == {}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("quick", "true", True),
        ("quick", "No", False),
        ("quick", "1", True),
        ("samples", "1_000", 1000),
        ("samples", "-3", -3),
        ("ratio", "2", 2.0),
        ("ratio", "1e-3", 0.001),
        ("name", "123", "123"),
        ("sizes", "[3, 4]", [3, 4]),
        ("label", "None", None),
        ("label", "x", "x"),
        ("when", "anything", "anything"),
    ],
)
def test_strings_convert_to_the_declared_type(name, text, expected):
    assert coerce_parameters(read_parameters(notebook()), {name: text}) == {name: expected}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("samples", "abc"),
        ("samples", "1.5"),
        ("quick", "maybe"),
        ("ratio", "nan"),
        ("ratio", "fast"),
        ("sizes", "{'a': 1}"),
        ("samples", None),
        ("samples", True),
        ("quick", 1),
        ("ratio", "1,5"),
    ],
)
def test_wrong_types_are_rejected_naming_the_parameter(name, value):
    with pytest.raises(ParameterError) as info:
        coerce_parameters(read_parameters(notebook()), {name: value}, notebook="nb.ipynb")
    assert info.value.name == name
    assert repr(name) in str(info.value) and "nb.ipynb" in str(info.value)


def test_unknown_parameter_lists_the_known_ones():
    with pytest.raises(ParameterError) as info:
        coerce_parameters(read_parameters(notebook()), {"sample": "3"}, notebook="nb.ipynb")
    message = str(info.value)
    assert "unknown parameter 'sample'" in message and "samples" in message


def test_python_values_pass_when_they_fit():
    params = read_parameters(notebook())
    assert coerce_parameters(params, {"samples": 5, "ratio": 3, "quick": True}) == {
        "samples": 5,
        "ratio": 3.0,
        "quick": True,
    }


@given(st.integers())
def test_any_integer_round_trips_through_text(n):
    assert coerce_parameters(read_parameters(notebook()), {"samples": str(n)}) == {"samples": n}


@given(st.floats(allow_nan=False))
def test_any_float_round_trips_through_text(x):
    got = coerce_parameters(read_parameters(notebook()), {"ratio": repr(x)})["ratio"]
    assert got == x or (math.isinf(x) and got == x)


def _executed(n_cells: int, started: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for i in range(n_cells):
        cell = nbformat.v4.new_code_cell(f"x = {i}")
        cell.outputs = [nbformat.v4.new_output("stream", text=f"{i}\n")]
        cell.execution_count = i + 1
        cell.metadata["papermill"] = {
            "status": "completed",
            "start_time": "t" if i < started else None,
            "end_time": "t",
            "exception": False,
        }
        nb.cells.append(cell)
    nb.metadata["papermill"] = {"exception": None}
    return nb


def test_an_interrupted_run_never_looks_completed():
    nb = _executed(5, started=3)
    assert mark_interrupted(nb, ename="Timeout", evalue="over 10 s") == 2
    statuses = [c.metadata.papermill["status"] for c in nb.cells]
    assert statuses == ["completed", "completed", "failed", "pending", "pending"]
    assert nb.cells[2].outputs[-1]["output_type"] == "error"
    assert nb.cells[2].outputs[-1]["ename"] == "Timeout"
    assert nb.cells[3].outputs == [] and nb.cells[4].execution_count is None
    assert nb.metadata.papermill["exception"] is True


def test_an_interrupted_run_before_any_cell():
    nb = _executed(2, started=0)
    assert mark_interrupted(nb, ename="DeadKernelError", evalue="died") is None
    assert all(c.metadata.papermill["status"] == "pending" for c in nb.cells)
    assert nb.metadata.papermill["exception"] is True
