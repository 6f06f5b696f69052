"""The two sides of ``perflab ab``: source trees, given as git revisions or as folders.

A revision is checked out with ``git worktree add --detach`` into a temporary folder and
removed afterwards — also when the run is interrupted — so the user's working tree, index and
branches are never touched (a worktree has an index of its own). A folder is used as it is, so
the working tree itself, uncommitted changes included, can be one side.

Every revision is validated before git sees it: it must not start with ``-`` (it would be read
as an option), must be made of the characters git revision syntax uses, and must name a commit
(``rev-parse --verify --end-of-options REV^{commit}``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from perflab.errors import ConfigurationError

__all__ = ["Source", "checkout", "repository_root", "target_path"]

# what git revision syntax uses (names, ~N, ^N, @{…}, :/text excluded): nothing a shell or an
# option parser reads specially
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/~^@{}+-]{0,199}")


@dataclasses.dataclass(frozen=True)
class Source:
    """One side: what the user named (``spec``), the folder its code is in, and the commit when
    it is a revision (``None`` for a folder)."""

    spec: str
    tree: Path
    commit: str | None = None

    @property
    def label(self) -> str:
        return f"{self.spec} ({self.commit[:10]})" if self.commit else self.spec


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
        )
    except FileNotFoundError as err:
        raise ConfigurationError(
            "git is not installed; give both sides as folders instead of revisions", name="git"
        ) from err


def repository_root(where: Path) -> Path | None:
    """The top folder of the git repository holding ``where``, or None outside one."""
    done = _git(["rev-parse", "--show-toplevel"], where)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def _commit(spec: str, role: str, where: Path) -> str:
    if _REVISION.fullmatch(spec) is None:
        raise ConfigurationError(
            f"{role} {spec!r} is neither a folder nor a git revision (a revision is a branch, "
            "tag, commit or an expression such as HEAD~1)",
            name=role,
        )
    root = repository_root(where)
    if root is None:
        raise ConfigurationError(
            f"{role} {spec!r} is not a folder, and {where} is not in a git repository to look "
            "it up in (run perflab ab inside the repository, or give folders)",
            name=role,
        )
    done = _git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{spec}^{{commit}}"], root
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise ConfigurationError(
            f"{role} {spec!r}: unknown revision in {root} (see git log --oneline)", name=role
        )
    return done.stdout.strip()


@contextlib.contextmanager
def checkout(spec: str, role: str, where: Path | None = None) -> Iterator[Source]:
    """The source ``spec`` names, for as long as the ``with`` block runs: a folder as it is,
    a revision of the repository at ``where`` (default: the current folder) checked out into a
    temporary worktree that is removed on the way out, whatever ends the block."""
    where = (where or Path.cwd()).absolute()
    text = str(spec)
    folder = where / Path(text).expanduser()
    if folder.is_dir():
        yield Source(text, folder.resolve())
        return
    if folder.exists():
        raise ConfigurationError(
            f"{role} {text!r} is a file; give a folder of source code or a git revision",
            name=role,
        )
    commit = _commit(text, role, where)
    root = repository_root(where)
    assert root is not None  # _commit checked it
    holder = Path(tempfile.mkdtemp(prefix="perflab-ab-"))
    tree = holder / "tree"
    try:
        done = _git(["worktree", "add", "--detach", "--quiet", str(tree), commit], root)
        if done.returncode != 0:
            raise ConfigurationError(
                f"{role} {text!r}: git could not check it out: {done.stderr.strip()}", name=role
            )
        yield Source(text, tree, commit)
    finally:
        if tree.exists():
            _git(["worktree", "remove", "--force", str(tree)], root)
        shutil.rmtree(holder, ignore_errors=True)  # what git left (an untracked build file)
        _git(["worktree", "prune"], root)  # drop the record if removal was cut short


def target_path(target: str, where: Path | None = None) -> Path:
    """TARGET as a path relative to the top of its repository (or to ``where`` outside one):
    the same relative path is then looked up in each side's tree."""
    where = (where or Path.cwd()).absolute()
    path = (where / Path(target).expanduser()).resolve()
    base = repository_root(where) or where
    try:
        return path.relative_to(base.resolve())
    except ValueError:
        raise ConfigurationError(
            f"TARGET {target!r} lies outside {base}; give a file inside the source trees",
            name="TARGET",
        ) from None
