"""perflab as someone else installs it: the wheel built from this checkout carries the lab
notebooks, `perflab init` copies them into a project, and a report finds the packaged ones
where a folder has no notebooks of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, built from a copy of the checkout and installed (without its dependencies,
    which this environment has) into a folder of its own, away from the checkout."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "notebooks", source / "notebooks")
    shutil.copytree(ROOT / "perflab", source / "perflab", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(base / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = (base / "dist").glob("perflab-*.whl")
    target = base / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return wheel, target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_NOTEBOOKS"}
    env["PYTHONPATH"] = str(target)  # this install first, the environment's packages after
    return subprocess.run([sys.executable, "-m", "perflab", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)  # fmt: skip


def test_the_wheel_carries_the_notebooks_and_the_type_marker(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.rsplit("/", 1)[-1] for n in names if n.startswith("perflab/lab_notebooks/"))
    assert shipped == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert "perflab/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]" in text and "perflab.pytest_plugin" in text


def test_init_copies_the_lab_into_a_project_and_keeps_what_is_there(installed, tmp_path):
    _, target = installed
    project = tmp_path / "project"
    done = run_installed(target, tmp_path, "init", str(project))
    assert done.returncode == 0, done.stderr
    copied = sorted(p.name for p in (project / "notebooks").glob("*.ipynb"))
    assert copied == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    mine = project / "notebooks" / "01-cache-tiers.ipynb"
    mine.write_text("{}")  # the user's edits survive a second init
    again = run_installed(target, tmp_path, "init", str(project))
    assert again.returncode == 0 and "kept 10 already there" in again.stdout
    assert mine.read_text() == "{}"
    forced = run_installed(target, tmp_path, "init", str(project), "--force")
    assert forced.returncode == 0 and mine.read_text() != "{}"
    blocked = tmp_path / "file"
    blocked.write_text("x")
    bad = run_installed(target, tmp_path, "init", str(blocked))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "file" in bad.stderr


def test_a_folder_without_notebooks_uses_the_packaged_ones(installed, tmp_path):
    _, target = installed
    code = "from perflab.lab import lab_notebooks; print(lab_notebooks()[0])"
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_NOTEBOOKS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(target)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = Path(done.stdout.strip())
    assert first.name == "00-smoke.ipynb" and first.is_relative_to(target)
