"""Result history, and regression detection that learns each benchmark's own noise.

Every saved result keeps run-level figures as columns — its centre (geometric mean of replicate
medians), the figure comparisons judge (``Result.figure``), median and replicate medians —
beside the raw samples. Detection reads only those
columns (a year of nightly runs is a few thousand small rows), finds the last change point in a
benchmark's series of run centres, and judges the runs after it against the runs before it with
the same replicate statistics ``compare`` uses: each run is one replicate, so the run-to-run
spread of the benchmark's own history is its noise floor. A single newest run is judged by its
prediction interval from the earlier runs. ``accept`` makes a known change the new baseline.

Storage is SQLite by default and PostgreSQL when given a ``postgresql://`` URL
(``PERFLAB_HISTORY_URL``), so several machines or CI runners can share one history.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from perflab.bench import changepoint, stats
from perflab.bench.comparison import THRESHOLD, Comparison, verdict
from perflab.bench.result import Result
from perflab.errors import BenchmarkError, ConfigurationError

__all__ = ["CONFIDENCE", "MIN_RUNS", "History"]

CONFIDENCE = 0.99  # per benchmark: a nightly check over dozens of benchmarks must not cry wolf
MIN_RUNS = 3  # earlier runs needed before a benchmark's noise is known well enough to judge
#: Degrees of freedom the typical run-to-run spread of a benchmark's suite counts for in each
#: benchmark's judgement (moderated t): four runs' worth. Quick reports here differ by 3-40 % sd per
#: benchmark (median 12 %), and one benchmark's four runs agreeing to 3 % said little about its
#: fifth: it read 1.09x "slower" on unchanged code, re-runs and all, before the prior joined.
PRIOR_DF = 4.0
#: Rows tagged so are kept and read by name (``run_noise``) but never judged for changes.
NOT_JUDGED = "claim"

_COLUMNS = [
    "name",
    "at",
    "git",
    "saved",
    "before",
    "after",
    "unit",
    "ratio",
    "ci_low",
    "ci_high",
    "runs_before",
    "runs_after",
    "reruns",
    "noise",
    "git_before",  # the commit of the last run before the change
    "git_newest",  # the commit of the newest run
]


def _tables(schema: str | None) -> tuple[sa.MetaData, sa.Table, sa.Table]:
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
        sa.Column("figure", sa.Float),  # what is judged: Result.figure
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


def _engine_url(location: str | Path, create: bool = True) -> str:
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


def _database_io(verb: str) -> Any:
    """A History method whose database errors become one ConfigurationError naming it."""

    def decorate(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: History, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sa.exc.SQLAlchemyError as err:
                raise self.damaged(err, verb) from err

        return wrapper

    return decorate


class History:
    """Results saved over time (default: ``PERFLAB_HISTORY_URL``, else
    ``outputs/history.sqlite``). ``location`` is a file path or a SQLAlchemy-style URL;
    ``schema`` places the tables in a PostgreSQL schema of their own."""

    CONFIDENCE = CONFIDENCE  # of the intervals it judges by (per benchmark)

    def __init__(
        self, location: str | Path | None = None, *, schema: str | None = None, create: bool = True
    ) -> None:
        """``create=False`` opens an existing history to read: a missing file, a file that
        holds no history or a damaged one is a ConfigurationError, and nothing is written."""
        if location is None:
            from perflab.settings import resolve

            settings = resolve()
            location = settings.history_url or settings.outputs_dir / "history.sqlite"
        self.location = str(location)
        self.path = Path(location) if "://" not in self.location else None
        url = _engine_url(location, create)
        self._meta, self._results, self._accepted = _tables(schema)
        try:
            self.engine = sa.create_engine(url)
            if create:
                self._create(schema)
            else:
                self._check_readable()
        except sa.exc.SQLAlchemyError as err:
            raise self.damaged(err) from err

    def damaged(self, err: BaseException, verb: str = "read") -> ConfigurationError:
        """The error for a history that cannot be opened, read or written (exit 2, one line;
        a damaged history once gave a 51-line traceback and exit 1, "regression", to CI)."""
        detail = str(getattr(err, "orig", None) or err).splitlines()[0]
        hint = "is it writable?" if verb == "write" else "is it a perflab history, and undamaged?"
        return ConfigurationError(
            f"cannot {verb} the history at {_redact(self.location)}: {detail} ({hint})",
            name=_redact(self.location),
        )

    def _create(self, schema: str | None) -> None:
        """Tables and upgrades, serialised between processes: several runners opening one new
        history at once raced here ("table results already exists", a duplicate pg_type)."""
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if self.engine.dialect.name == "postgresql":
                        # one creator at a time; released when this transaction ends
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7316204588)"))
                        if schema:
                            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{_ident(schema)}"'))
                    self._meta.create_all(conn)
                    self._upgrade(conn)
                return
            except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.ProgrammingError) as e:
                # SQLite has no advisory lock: a creator that lost the race sees the table on
                # its next look (create_all checks first); a locked database is waited out
                why = str(e.orig).lower()
                raced = "exist" in why or "duplicate" in why or "locked" in why
                if attempt == 4 or not raced:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _check_readable(self) -> None:
        """A reader's check: the tables are there, with every column this version reads."""
        with self.engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("results", schema=self._meta.schema):
                raise ConfigurationError(
                    f"{_redact(self.location)} holds no perflab history (no results table); "
                    "check the path or URL",
                    name=_redact(self.location),
                )
            have = {c["name"] for c in inspector.get_columns("results", schema=self._meta.schema)}
            missing = set(self._results.c.keys()) - have
            if missing:
                raise ConfigurationError(
                    f"the history at {_redact(self.location)} was written by an older perflab "
                    f"(no {', '.join(sorted(missing))}); open it once writable to upgrade it: "
                    "perflab history --path …",
                    name=_redact(self.location),
                )
            conn.execute(sa.select(sa.func.count()).select_from(self._results)).scalar_one()

    def _upgrade(self, conn: sa.Connection) -> None:
        """Histories written before run-level columns existed get them, filled from their
        medians (one replicate each: their samples were never grouped)."""
        have = {
            c["name"] for c in sa.inspect(conn).get_columns("results", schema=self._meta.schema)
        }
        table = self._results.fullname
        for column in ("center", "figure", "replicates", "unit", "host", "pair", "speed"):
            if column not in have:
                kind = "REAL" if column in ("center", "figure", "speed") else "TEXT"
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
        conn.execute(
            sa.update(self._results)
            .where(self._results.c.center.is_(None))
            .values(center=self._results.c.median)
        )
        conn.execute(
            sa.update(self._results)
            .where(self._results.c.figure.is_(None))
            .values(figure=self._results.c.center)
        )

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------------------ writing

    @_database_io("write")
    def save(
        self,
        item: Result | Comparison,
        *,
        tags: Iterable[str] = (),
        keep_samples: bool = True,
        saved: float | None = None,
    ) -> list[int]:
        """Store a result (or both sides of a comparison); returns the new row ids.
        ``keep_samples=False`` stores only the run-level figures. ``saved``: when it ran
        (seconds since 1970; default now), for results another tool's file dates."""
        results = [item.baseline, item.candidate] if isinstance(item, Comparison) else [item]
        if not all(isinstance(r, Result) for r in results):
            raise BenchmarkError(
                f"History.save takes a Result or a Comparison, not {type(item).__name__}"
            )
        ids = []
        with self.engine.begin() as conn:
            for r in results:
                row = {
                    "name": r.name,
                    "saved": time.time() if saved is None else float(saved),
                    "git": r.meta.get("git"),
                    "tags": json.dumps(sorted(tags)),
                    "median": r.median,
                    "center": r.center,
                    "figure": _judged_figure(r),
                    "replicates": json.dumps([round(float(v), 6) for v in r.replicate_medians]),
                    "unit": r.unit,
                    "host": r.meta.get("cpu"),
                    "pair": r.meta.get("interleaved"),
                    "speed": _speed(r),
                    "payload": r.to_json() if keep_samples else None,
                }
                cur = conn.execute(sa.insert(self._results).values(**row))
                ids.append(int(cur.inserted_primary_key[0]))
        return ids

    @_database_io("write")
    def accept(self, name: str, *, note: str | None = None) -> int:
        """Make ``name``'s newest change its new baseline: later checks judge only the runs
        from that change on (or from the newest run, when no change is found). Returns the row
        id the baseline starts from."""
        series = self._series(name)
        if series.empty:
            raise ConfigurationError(
                f"no saved results named {name!r} in {_redact(self.location)} "
                "(see 'perflab history' for the names)",
                name=name,
            )
        k = changepoint.last_change(series["center"].to_numpy(dtype=float))
        start = int(series["id"].iloc[k if k is not None else len(series) - 1])
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self._accepted).where(self._accepted.c.name == name))
            conn.execute(
                sa.insert(self._accepted).values(
                    name=name, from_id=start, saved=time.time(), note=note
                )
            )
        return start

    # ------------------------------------------------------------------------------ reading

    @_database_io("read")
    def frame(self, name: str | None = None) -> pd.DataFrame:
        """One row per saved result: id, name, saved (UTC), git, tags, center, median,
        replicates (count), speed (the machine's reference speed beside it; None before
        format 3)."""
        t = self._results
        query = sa.select(
            t.c.id,
            t.c.name,
            t.c.saved,
            t.c.git,
            t.c.tags,
            t.c.center,
            t.c.median,
            t.c.replicates,
            t.c.speed,
        ).order_by(t.c.id)
        if name is not None:
            query = query.where(t.c.name == name)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(query).all(), columns=list(query.selected_columns.keys())
            )
        frame["saved"] = pd.to_datetime(frame["saved"], unit="s", utc=True)
        frame["tags"] = frame["tags"].map(json.loads)
        frame["replicates"] = frame["replicates"].map(lambda v: len(json.loads(v)) if v else 1)
        return frame

    @_database_io("read")
    def results(self, name: str) -> list[Result]:
        """The full results (samples included) saved under ``name``, oldest first."""
        t = self._results
        query = sa.select(t.c.payload).where(t.c.name == name, t.c.payload.isnot(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.id)).all()
        return [Result.from_json(payload) for (payload,) in rows]

    @_database_io("read")
    def tagged(self, tag: str) -> list[Result]:
        """The full results saved with ``tag`` (e.g. one report run's ``run:NAME``), oldest
        first; a name saved twice under the tag keeps its newest result."""
        t = self._results
        query = (
            sa.select(t.c.name, t.c.payload, t.c.tags)
            .where(t.c.tags.contains(json.dumps(tag)), t.c.payload.isnot(None))
            .where(sa.not_(t.c.tags.contains(json.dumps(NOT_JUDGED))))
            .order_by(t.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        newest = {name: payload for name, payload, tags in rows if tag in json.loads(tags)}
        return [Result.from_json(payload) for payload in newest.values()]

    def _series(self, name: str | None = None, tag: str | None = None) -> pd.DataFrame:
        """Run-level figures only (never the samples), after each name's accepted baseline;
        with ``tag``, only results saved with that tag."""
        t, a = self._results, self._accepted
        query = (
            sa.select(
                t.c.id,
                t.c.name,
                t.c.saved,
                t.c.git,
                t.c.figure.label("center"),
                t.c.pair,
                t.c.speed,
                t.c.unit,
            )
            .select_from(t.outerjoin(a, a.c.name == t.c.name))
            .where(sa.or_(a.c.from_id.is_(None), t.c.id >= a.c.from_id))
            .where(t.c.figure > 0)
            .order_by(t.c.name, t.c.id)
        )
        if name is not None:
            query = query.where(t.c.name == name)
        else:
            # figures kept for their run noise only (a report's claim figures): a speedup that
            # grows is no regression, so they are never judged as timings
            query = query.where(sa.not_(t.c.tags.contains(json.dumps(NOT_JUDGED))))
        if tag is not None:
            query = query.where(t.c.tags.contains(json.dumps(tag)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        columns = ["id", "name", "saved", "git", "center", "pair", "speed", "unit"]
        return pd.DataFrame(rows, columns=columns)

    @_database_io("read")
    def run_noise(self, name: str, *, tag: str | None = None) -> tuple | None:
        """How much separate runs of ``name`` differ as a whole: (robust sd of the log run
        figures, :func:`changepoint.run_spread`; runs), after its accepted baseline — the term
        :func:`compare` adds for two separate runs. None until the history holds
        ``MIN_RUNS + 1`` runs of it. When every one of those runs kept the machine's reference
        speed, the spread is of speed-adjusted figures (:func:`stats.speed_adjusted`), the
        noise that :func:`compare`'s adjustment for the speed leaves, and a third item says
        how the runs followed the speed: (slope, its standard error), :func:`stats.speed_slope`,
        which :func:`compare` then uses instead of a slope fitted inside two runs."""
        series = self._series(name, tag)
        centres = series["center"].to_numpy(dtype=float)
        if centres.size < MIN_RUNS + 1:
            return None
        speeds = pd.to_numeric(series["speed"], errors="coerce").to_numpy(dtype=float)
        if np.all(np.isfinite(speeds) & (speeds > 0)):
            fit = stats.speed_slope(centres, speeds)
            if fit is not None:
                adjusted = stats.speed_adjusted(centres, speeds)
                return changepoint.run_spread(adjusted), int(centres.size), fit
        return changepoint.run_spread(centres), int(centres.size)

    @_database_io("read")
    def regressions(
        self,
        name: str | None = None,
        *,
        threshold: float = THRESHOLD,
        confidence: float = CONFIDENCE,
        tag: str | None = None,
        reruns: Mapping[str, Sequence[float]] | None = None,
    ) -> pd.DataFrame:
        """Benchmarks whose newest change made them slower: name, at (row id of the first
        slower run), git and saved of that run, before/after centres, ratio and its CI, how
        many runs on each side (``reruns`` of them re-runs), and the noise floor (run-to-run
        spread) of the history.

        A benchmark timed interleaved with a peer (the raw-driver arm of a ``bench.ab``) that
        moved with it — their ratio did not step — is not listed: the server or the machine
        changed, not the code (:meth:`changes` keeps it, with ``cause`` "environment").

        ``reruns`` maps a name to the figures of extra runs of the newest code taken just now
        (see :meth:`suspects`): they join the newest run's side and are not saved."""
        found = self.changes(
            name,
            threshold=threshold,
            confidence=confidence,
            tag=tag,
            only="slower",
            reruns=reruns,
        )
        return found[found["cause"] != "environment"].reset_index(drop=True)

    @_database_io("read")
    def suspects(
        self,
        *,
        threshold: float = THRESHOLD,
        confidence: float = CONFIDENCE,
        tag: str | None = None,
    ) -> list[str]:
        """Names a re-run could settle: the newest change is a slowdown by at least the
        threshold that is called ``slower`` or ``inconclusive`` (and not explained by the
        environment). A nightly check re-runs these before it fails: one report is one run, and
        a single run of a new level cannot be told from an outlier run on a noisy machine
        (5 unchanged quick reports here differed by ~4 % sd, so a 20 % step after one run read
        1.12x, 99 % CI 0.89-1.41)."""
        found = self.changes(threshold=threshold, confidence=confidence, tag=tag)
        keep = (
            found["verdict"].isin(["slower", "inconclusive"])
            & (found["ratio"] >= 1.0 + threshold)
            & (found["cause"] != "environment")
        )
        return [str(n) for n in found.loc[keep, "name"]]

    @_database_io("read")
    def changes(
        self,
        name: str | None = None,
        *,
        threshold: float = THRESHOLD,
        confidence: float = CONFIDENCE,
        tag: str | None = None,
        only: str | None = None,
        reruns: Mapping[str, Sequence[float]] | None = None,
    ) -> pd.DataFrame:
        """Like :meth:`regressions`, with a ``verdict`` column, for every benchmark whose
        newest change could be judged (``only`` keeps one verdict). ``peer`` names the
        interleaved peer and ``cause`` says "environment" when the two moved together (their
        ratio held within the threshold), "code" when the ratio stepped too, "unclear" when the
        ratio cannot tell, None without a peer to tell by."""
        everything = self._series(None, tag)
        rows = []
        selected = everything if name is None else everything[everything["name"] == name]
        extra = {k: _positive(k, v) for k, v in (reruns or {}).items()}
        priors = _typical_spreads(everything)
        for bench_name, series in selected.groupby("name", sort=True):
            row = _judge(
                series,
                threshold=threshold,
                confidence=confidence,
                reruns=extra.get(str(bench_name), ()),
                prior=priors.get(_kind(str(bench_name)), priors.get(None)),
            )
            if row is not None and (only is None or row["verdict"] == only):
                peer, cause = _cause(series, everything, row, threshold, confidence)
                rows.append({"name": bench_name, **row, "peer": peer, "cause": cause})
        return pd.DataFrame(rows, columns=[*_COLUMNS, "verdict", "peer", "cause"])


def _speed(result: Result) -> float | None:
    figures = result.reference_figures
    return float(np.exp(np.mean(np.log(figures)))) if figures.size else None


def _judged_figure(result: Result) -> float:
    """The run's figure as ``compare`` judges it: for calibrated loops, the geometric mean of
    the replicate floors left after contended ones are set aside (``stats.set_aside_contended``:
    one slow-luck worker process must not move a whole run's figure)."""
    if result.statistic != "floor":
        return result.figure
    kept, _ = stats.set_aside_contended(result.replicate_figures, stray=stats.STRAY)
    return float(np.exp(np.mean(np.log(np.maximum(kept, 1e-300)))))


def _kind(name: str) -> str:
    """The group of benchmarks measured alike: the suite of a ``suite/benchmark`` name, "" for
    the rest (the API suite's ``GET /path (variant)`` figures, users' own names)."""
    head, slash, _ = name.partition("/")
    return head if slash and head and " " not in head else ""


def _typical_spreads(everything: pd.DataFrame) -> dict[str | None, tuple[float, float]]:
    """Per kind of benchmark (:func:`_kind`), and for all of them under ``None``: (median
    run-to-run spread, PRIOR_DF) over those with runs enough to tell, when at least three have.

    Why per kind: the suites measure differently (calibrated loops in eight worker processes,
    a load generator against a live service, queries on a server), and their run noise differs
    with it: five unchanged quick reports here spread 2-7 % for the data suite's loops and
    9-44 % for API latencies. A prior over all of them (median 24 %) hid a real +24 % step of
    ``data/sma-loop``, whose own five runs had agreed to 2 % (99 % CI 0.64-2.32)."""
    spreads: dict[str | None, list[float]] = {}
    for name, group in everything.groupby("name"):
        if len(group) >= MIN_RUNS + 1:
            spread = changepoint.run_spread(group["center"].to_numpy(dtype=float))
            spreads.setdefault(_kind(str(name)), []).append(spread)
            spreads.setdefault(None, []).append(spread)
    return {
        kind: (float(np.median(values)), PRIOR_DF)
        for kind, values in spreads.items()
        if len(values) >= 3
    }


def _positive(name: str, figures: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in figures)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise BenchmarkError(
            f"re-run figures for {name!r} must be positive finite numbers, got {list(figures)}"
        )
    return values


def _cause(
    series: pd.DataFrame,
    everything: pd.DataFrame,
    row: dict[str, Any],
    threshold: float,
    confidence: float,
) -> tuple[str | None, str | None]:
    """(peer name, cause) of a judged change: judge the ratio to the interleaved peer too."""
    if row["verdict"] not in ("slower", "faster"):
        return None, None
    paired = series.dropna(subset=["pair"])
    if paired.empty:
        return None, None
    others = everything[
        everything["pair"].isin(paired["pair"]) & (everything["name"] != series["name"].iloc[0])
    ]
    if others.empty:
        return None, None
    peer = str(others["name"].value_counts().index[0])
    mine = paired.set_index("pair")
    theirs = others[others["name"] == peer].set_index("pair")["center"]
    both = mine.join(theirs.rename("peer_center"), how="inner").sort_values("id")
    ratio = both.assign(center=both["center"] / both["peer_center"]).reset_index()
    judged = _judge(ratio, threshold=threshold, confidence=confidence, prior=None)
    if judged is None:
        return peer, None
    # "environment" only when the ratio provably held: an inconclusive ratio hides nothing
    causes = {row["verdict"]: "code", "same": "environment"}
    return peer, causes.get(judged["verdict"], "unclear")


def _judge(
    series: pd.DataFrame,
    *,
    threshold: float,
    confidence: float,
    reruns: Sequence[float] = (),
    prior: tuple[float, float] | None = None,
) -> dict[str, Any] | None:
    """The newest change of one benchmark's series, judged; None when too short to judge.

    ``reruns`` are further runs of the newest code taken just after the newest run. They are
    not runs of their own: taken minutes apart they share the newest run's spell of the machine,
    so the newest run and its re-runs count as one run: the one of them nearest the earlier
    runs' level, so a change must be in all three (a real step is; a slow spell rarely is).
    Their median was used until re-runs here read 1.3-1.7x slower than the report itself
    (`db/pooled-fetch` 38 µs in the report, 48 and 62 µs in its re-runs, against 34-37 µs
    before), which turned one unlucky pair of re-runs into a regression. ``prior``: the typical
    run-to-run spread (sd, df) of the benchmarks judged together, moderating this one's own."""
    saved = series["center"].to_numpy(dtype=float)
    if saved.size < MIN_RUNS + 1:
        return None
    newest = saved.size - 1
    centres = saved.copy()
    if len(reruns):
        level = float(np.median(np.log(saved[:newest])))
        tonight = np.array([saved[newest], *reruns], dtype=float)
        centres[newest] = float(tonight[np.argmin(np.abs(np.log(tonight) - level))])
    values = np.log(centres)
    points = changepoint.change_points(centres)
    k = points[-1] if points else newest  # no change found: judge the newest run
    # the level before the step: from the latest earlier change point that leaves MIN_RUNS runs
    # (a small drift found just before the step must not leave too few runs to judge by: here a
    # +3 % drift split the five unchanged reports 3 + 2 and a real +20 % step went unjudged)
    earlier = [p for p in points[:-1] if k - p >= MIN_RUNS]
    start = earlier[-1] if earlier else 0
    before, after = values[start:k], values[k:]
    if before.size < MIN_RUNS:
        return None
    # runs on both sides share the benchmark's run-to-run noise: one pooled variance
    r = stats.replicate_ratio(
        np.exp(before), np.exp(after), confidence=confidence, pooled=True, prior=prior
    )
    first = series.iloc[k]
    return {
        "at": int(first["id"]),
        "git": first["git"],
        "saved": pd.to_datetime(first["saved"], unit="s", utc=True),
        "before": float(np.exp(before.mean())),
        "after": float(np.exp(after.mean())),
        "unit": first["unit"] or "ns",
        "ratio": r.ratio,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "runs_before": int(before.size),
        "runs_after": int(after.size),
        "reruns": len(reruns),
        "noise": changepoint.noise_floor(saved),
        "git_before": series.iloc[k - 1]["git"],
        "git_newest": series.iloc[newest]["git"],
        "verdict": verdict(r.ratio, r.ci_low, r.ci_high, threshold=threshold),
    }


def _ident(name: str) -> str:
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ConfigurationError(f"history schema {name!r} is not a plain SQL identifier")
    return name


def _redact(location: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    if parts.password:
        return location.replace(f":{parts.password}@", ":***@")
    return location
