"""The typed ``parameters`` cell: read it, and convert what a user passed to its declared types
(before any kernel starts: papermill validates nothing)."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perflab.errors import ConfigurationError, ParameterError

if TYPE_CHECKING:
    import nbformat


__all__ = [
    "Parameter",
    "coerce_parameters",
    "read_parameters",
]


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
