"""Result history, and regression detection that learns each benchmark's own noise.

Every saved result keeps run-level figures as columns — its centre (geometric mean of replicate
medians), the figure comparisons judge (``Result.judged_figure``), median and replicate medians —
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

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from perflab.bench import changepoint, regressions
from perflab.bench.comparison import THRESHOLD, Comparison
from perflab.bench.history_schema import database_io, engine_url, ident, redact, tables
from perflab.bench.regressions import CONFIDENCE, MIN_RUNS
from perflab.bench.result import Result
from perflab.errors import BenchmarkError, ConfigurationError
from perflab.sql import make_engine

__all__ = ["CONFIDENCE", "MIN_RUNS", "History"]

#: Rows tagged so are kept and read by name (``run_noise``) but never judged for changes.
NOT_JUDGED = "claim"


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
        url = engine_url(location, create)
        self._meta, self._results, self._accepted = tables(schema)
        try:
            self.engine = make_engine(url, autocommit=False)  # writes are transactions
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
            f"cannot {verb} the history at {redact(self.location)}: {detail} ({hint})",
            name=redact(self.location),
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
                            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{ident(schema)}"'))
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
                    f"{redact(self.location)} holds no perflab history (no results table); "
                    "check the path or URL",
                    name=redact(self.location),
                )
            have = {c["name"] for c in inspector.get_columns("results", schema=self._meta.schema)}
            missing = set(self._results.c.keys()) - have
            if missing:
                raise ConfigurationError(
                    f"the history at {redact(self.location)} was written by an older perflab "
                    f"(no {', '.join(sorted(missing))}); open it once writable to upgrade it: "
                    "perflab history --path …",
                    name=redact(self.location),
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

    @database_io("write")
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
                    "figure": r.judged_figure,
                    "replicates": json.dumps([round(float(v), 6) for v in r.replicate_medians]),
                    "unit": r.unit,
                    "host": r.meta.get("cpu"),
                    "pair": r.meta.get("interleaved"),
                    "speed": r.speed,
                    "payload": r.to_json() if keep_samples else None,
                }
                cur = conn.execute(sa.insert(self._results).values(**row))
                key = cur.inserted_primary_key
                assert key is not None  # an INSERT of one row always has one
                ids.append(int(key[0]))
        return ids

    @database_io("write")
    def accept(self, name: str, *, note: str | None = None) -> int:
        """Make ``name``'s newest change its new baseline: later checks judge only the runs
        from that change on (or from the newest run, when no change is found). Returns the row
        id the baseline starts from."""
        series = self._series(name)
        if series.empty:
            raise ConfigurationError(
                f"no saved results named {name!r} in {redact(self.location)} "
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

    @database_io("read")
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

    @database_io("read")
    def results(self, name: str) -> list[Result]:
        """The full results (samples included) saved under ``name``, oldest first."""
        t = self._results
        query = sa.select(t.c.payload).where(t.c.name == name, t.c.payload.isnot(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.id)).all()
        return [Result.from_json(payload) for (payload,) in rows]

    @database_io("read")
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

    @database_io("read")
    def run_noise(self, name: str, *, tag: str | None = None) -> tuple[Any, ...] | None:
        """How much separate runs of ``name`` differ as a whole: (robust sd of the log run
        figures, :func:`changepoint.run_spread`; runs), after its accepted baseline — the term
        :func:`compare` adds for two separate runs. None until the history holds
        ``MIN_RUNS + 1`` runs of it. When every one of those runs kept the machine's reference
        speed, the spread is of speed-adjusted figures
        (:func:`machine_speed.speed_adjusted`), the noise that :func:`compare`'s adjustment for
        the speed leaves, and a third item says how the runs followed the speed: (slope, its
        standard error, :func:`machine_speed.speed_slope`), which :func:`compare` then uses
        instead of a slope fitted inside two runs."""
        return regressions.run_noise(self._series(name, tag))

    @database_io("read")
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

    @database_io("read")
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

    @database_io("read")
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
        return regressions.judge_changes(
            self._series(None, tag),
            name,
            threshold=threshold,
            confidence=confidence,
            only=only,
            reruns=reruns,
        )
