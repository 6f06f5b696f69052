"""The layers of design.md and "public names only", as import-linter contracts (pyproject.toml),
and the module-size target of issue 11."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} missing: pip install -e '.[test]' (import-linter)")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_contracts_are_kept():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_upward_import_breaks_the_layers(tmp_path):
    """The contracts bite: db importing the harness (bench sits above db) is reported."""
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT / "perflab", copy / "perflab", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    views = copy / "perflab" / "db" / "views.py"
    views.write_text(views.read_text() + "\nfrom perflab.bench import run  # noqa\n")
    done = _lint_imports(copy)
    assert done.returncode == 1, done.stdout
    assert "perflab.db.views -> perflab.bench" in done.stdout


def test_a_deep_import_breaks_public_names_only(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT / "perflab", copy / "perflab", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    lab = copy / "perflab" / "lab.py"
    lab.write_text(lab.read_text() + "\nfrom perflab.db.runner import QueryRunner  # noqa\n")
    done = _lint_imports(copy)
    assert done.returncode == 1, done.stdout
    assert "perflab.lab -> perflab.db.runner" in done.stdout


# perflab/cache (split on its own branch), bench and suites are outside this target
_EXEMPT = ("cache", "bench", "suites")


def test_no_module_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "perflab").rglob("*.py")
        if path.relative_to(ROOT / "perflab").parts[0] not in _EXEMPT
        and (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long
