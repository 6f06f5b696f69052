"""Where a History lives: its tables (and their columns' meaning), the SQLAlchemy URL of a
file path or database URL (read-only for readers), and the checks on what a user names."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from perflab.errors import ConfigurationError

__all__ = ["database_io", "engine_url", "ident", "redact", "tables"]


def tables(schema: str | None) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    meta = sa.MetaData(schema=schema)
    results = sa.Table(
        "results",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("saved", sa.Float, nullable=False),
        sa.Column("git", sa.Text),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("median", sa.Float, nullable=False),
        sa.Column("payload", sa.Text),
        sa.Column("center", sa.Float),
        sa.Column("figure", sa.Float),  # what is judged: Result.judged_figure
        sa.Column("replicates", sa.Text),  # JSON list of replicate medians
        sa.Column("unit", sa.Text),
        sa.Column("host", sa.Text),
        # the id both arms of one interleaved run share (bench.ab): each arm's peer
        sa.Column("pair", sa.Text),
        # the machine's reference speed beside the run (geometric mean of its replicates' ns
        # per reference call, bench.reference), so a run in a slow spell can be told apart
        sa.Column("speed", sa.Float),
        sa.Index("results_name", "name", "id"),
    )
    accepted = sa.Table(
        "accepted",
        meta,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("from_id", sa.Integer, nullable=False),
        sa.Column("saved", sa.Float, nullable=False),
        sa.Column("note", sa.Text),
    )
    return meta, results, accepted


def engine_url(location: str | Path, create: bool = True) -> str:
    """The SQLAlchemy URL of a history; ``create=False``: a reader's, which never creates the
    file (a mistyped path once read as an empty history: "no regressions") and opens SQLite
    read-only, so a read-only file or mount can be checked."""
    text = str(location)
    if "://" not in text:
        path = Path(text).expanduser()
        if path.is_dir():
            raise ConfigurationError(
                f"history path {path} is a directory; give a file such as {path}/history.sqlite",
                name=str(path),
            )
        if not create:
            if not path.is_file():
                raise ConfigurationError(
                    f"no history at {path}: no such file; check the path (`perflab bench "
                    "--save` creates the history)",
                    name=str(path),
                )
            return f"sqlite:///file:{urllib.parse.quote(str(path.absolute()))}?mode=ro&uri=true"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path.absolute()}"
    scheme = text.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if scheme in ("sqlite", "postgresql+psycopg"):
        return text
    raise ConfigurationError(
        f"history URL {text!r} has scheme {scheme!r}; use a file path, sqlite:///… or "
        "postgresql://…",
        name="PERFLAB_HISTORY_URL",
    )


def ident(name: str) -> str:
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ConfigurationError(f"history schema {name!r} is not a plain SQL identifier")
    return name


def redact(location: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    if parts.password:
        return location.replace(f":{parts.password}@", ":***@")
    return location


_Method = TypeVar("_Method", bound=Callable[..., Any])


def database_io(verb: str) -> Callable[[_Method], _Method]:
    """A History method whose database errors become one ConfigurationError naming it
    (``self.damaged``)."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sa.exc.SQLAlchemyError as err:
                raise self.damaged(err, verb) from err

        return cast("_Method", wrapper)

    return decorate
