"""The demo trading-signals service, in two variants under one app.

``/baseline/...`` does what the seed's "before" did: sync endpoints (run in the thread pool),
a new database connection and a fresh computation (per-row loops, one query per symbol) on
every request. ``/optimized/...`` is async end to end: ``async def`` endpoints on the cache's
async path (``aget_or_load``: L1 memory + L2 Redis, refresh-ahead), database reads that do not
block the loop (:mod:`perflab.service.async_db`), set-based SQL, vectorised computation, and whole
JSON responses cached as text. Both return the same answers.

``/health`` reports each dependency (Redis, the database, pool use) and answers 503 when one
is down; ``POST /benchmark/{suite}`` runs a named in-process micro-suite
(:mod:`perflab.service.microbench`) when ``PERFLAB_SERVICE_BENCH_TOKEN`` is set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import numpy as np
import pandas as pd
import psycopg
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from perflab import servers
from perflab.cache import MemoryTier, RedisTier, TieredCache
from perflab.db import QueryRunner
from perflab.errors import QueryError
from perflab.service.async_db import make_reader
from perflab.service.limits import raise_file_limit
from perflab.service.ops import add_ops_routes
from perflab.service.requests import (
    MAX_BATCH,
    MAX_BODY,
    BatchRequest,
    BodyLimit,
    PortfolioRequest,
    echo,
    validation_errors,
)
from perflab.service.tail import TailWatch
from perflab.settings import Settings, resolve
from perflab.workload import bars, load, portfolio, signals

__all__ = ["MAX_BATCH", "MAX_BODY", "app_from_env", "create_app"]

log = logging.getLogger("perflab.service")
MAX_CLIENTS = 16_384  # keep-alive connections the service makes room for (file descriptors)
# Cold optimised requests compute (DataFrame, signals, JSON) in these threads, not on the event
# loop: on the loop, 8 clients' cold requests queued behind each other's computation (0.53x the
# baseline's thread pool); pandas and numpy release the GIL for much of it. Twice the cores,
# unless PERFLAB_SERVICE_THREADS says otherwise.
COMPUTE_THREADS = 2 * (os.cpu_count() or 1)
# bigint: what the ts column holds; a larger bound would reach PostgreSQL and fail there
Ts = Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)]
TABLE = "service_bars"
_BARS_SQL = f"SELECT symbol, ts, open, high, low, close, volume FROM {TABLE} WHERE symbol = :symbol AND ts BETWEEN :start AND :end ORDER BY ts"  # noqa: E501
_MANY_SQL = f"SELECT symbol, ts, open, high, low, close, volume FROM {TABLE} WHERE symbol IN ({{marks}}) ORDER BY symbol, ts"  # noqa: E501
_COUNT_SQL = f"SELECT count(*) FROM {TABLE}"
COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume"]


def _frame(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="ms")
    return frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, ts in epoch ms, NaN as None (JSON null). Built
    column by column (``replace`` + ``to_dict`` took 3x as long on 500 rows)."""
    columns = []
    for name in frame.columns:
        values = frame[name]
        if name == "ts":
            columns.append(values.astype("datetime64[ms]").astype("int64").tolist())
        elif values.dtype.kind == "f":
            columns.append([None if v != v else v for v in values.tolist()])  # v != v: NaN
        else:
            columns.append(values.tolist())
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class Backend:
    """State shared by the endpoints: symbols, runner, cache, raw URL for the baseline."""

    def __init__(self, settings: Settings, preset: str) -> None:
        endpoints = servers.start(settings)
        self.database_url = endpoints.database_url
        self.db = QueryRunner(endpoints.database_url)
        try:
            present = self.db.fetch(f"SELECT count(*) FROM {TABLE}")[0][0]
        except QueryError:
            present = 0
        if not present:
            load(self.db, bars(preset), table=TABLE)
        self.symbols = {r[0] for r in self.db.fetch(f"SELECT DISTINCT symbol FROM {TABLE}")}
        self.span = self.db.fetch(f"SELECT min(ts), max(ts) FROM {TABLE}")[0]
        self.redis = RedisTier(endpoints.redis_url, prefix=f"{settings.key_prefix}svc:")
        self.cache = TieredCache([MemoryTier(2_000), self.redis], default_ttl=30, refresh_ahead=0.8)
        self.reader = make_reader(self.db)
        self.bench_busy = False
        self.tail = TailWatch()
        threads = int(settings.service_threads or COMPUTE_THREADS)
        self.compute_pool = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="perflab-compute"
        )

    async def compute(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in the compute threads: CPU work never holds the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.compute_pool, fn, *args)

    def check_symbols(self, symbols: list[str], field: str = "symbol") -> None:
        unknown = [s for s in symbols if s not in self.symbols]
        if unknown:
            raise HTTPException(
                404, detail={"field": field, "error": f"unknown symbol {echo(unknown[0])!r}"}
            )

    def range(self, start: int | None, end: int | None) -> tuple[int, int]:
        lo, hi = self.span
        start, end = lo if start is None else start, hi if end is None else end
        if start > end:
            raise HTTPException(422, detail={"field": "start", "error": "start is after end"})
        return start, end

    # --- baseline: a new connection per request, per-row Python -----------------------------
    @contextlib.contextmanager
    def fresh_connection(self) -> Iterator[psycopg.Connection]:
        url = self.database_url
        if url.startswith("sqlite"):
            raise HTTPException(501, detail={"error": "the baseline variant needs PostgreSQL"})
        options = {}
        if self.db.schema not in (None, "public"):  # the runner's tables live in PERFLAB_SCHEMA
            options["options"] = f"-c search_path={self.db.schema},public"
        with psycopg.connect(url, autocommit=True, **options) as conn:
            yield conn

    def baseline_bars(
        self, conn: psycopg.Connection, symbol: str, start: int, end: int
    ) -> pd.DataFrame:
        rows = conn.execute(
            f"SELECT symbol, ts, open, high, low, close, volume FROM {TABLE} "
            "WHERE symbol = %s AND ts BETWEEN %s AND %s ORDER BY ts",
            (symbol, start, end),
        ).fetchall()
        return _frame(rows)

    # --- optimised: async reads (prepared statements), cache --------------------------------
    # rows, not frames: building the frame is computation, done in the compute threads
    async def optimized_rows(self, symbol: str, start: int, end: int) -> list:
        return await self.reader.fetch(_BARS_SQL, {"symbol": symbol, "start": start, "end": end})

    async def many_rows(self, symbols: list[str]) -> list:
        return await self.reader.fetch(_MANY_SQL.format(marks=_marks(symbols)), _params(symbols))

    async def cached(self, request: Request, key: str, load: Any) -> Any:
        """``aget_or_load``; a request with ``Cache-Control: no-cache`` skips the lookup (a
        cold-cache request: loaded fresh, then stored)."""
        load = self.tail.timed(load)
        if "no-cache" in request.headers.get("cache-control", ""):
            value = await load()
            await self.cache.aset(key, value)
            return value
        return await self.cache.aget_or_load(key, load)

    async def dependencies(self) -> dict[str, dict[str, Any]]:
        """Each dependency's state: Redis (PING), the database (a count), pool use."""
        out: dict[str, dict[str, Any]] = {}
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(self.redis.aclient.ping(), 1.0)
            out["redis"] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1e3, 3)}
        except (RedisError, OSError, TimeoutError) as err:
            out["redis"] = {"ok": False, "error": echo(f"{type(err).__name__}: {err}")}
        t0 = time.perf_counter()
        try:
            rows = await asyncio.wait_for(self.reader.fetch(_COUNT_SQL, {}), 2.0)
            out["database"] = {
                "ok": True,
                "rows": rows[0][0],
                "ms": round((time.perf_counter() - t0) * 1e3, 3),
            }
        except (QueryError, OSError, TimeoutError) as err:
            out["database"] = {"ok": False, "error": echo(f"{type(err).__name__}: {err}")}
        out["pool"] = {"ok": True, "optimized": self.reader.pool()}
        return out

    async def aclose(self) -> None:
        self.compute_pool.shutdown(wait=True, cancel_futures=True)
        await self.reader.aclose()
        await self.cache.aclose()
        self.db.close()


def create_app(settings: Settings | None = None, *, preset: str = "quick") -> FastAPI:
    """The app; servers are started and the workload loaded when it starts."""
    settings = settings or resolve()
    state: dict[str, Backend] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["backend"] = await run_in_threadpool(Backend, settings, preset)
        state["backend"].tail.start()
        yield
        state["backend"].tail.stop()
        await state.pop("backend").aclose()

    app = FastAPI(title="perflab demo service", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=MAX_BODY)

    def backend() -> Backend:
        return state["backend"]

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("incident %s on %s", incident, request.url.path)
        return JSONResponse({"error": "internal error", "incident": incident}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input whole: NaN makes it unserialisable (a 500)
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)

    add_ops_routes(app, backend)

    # --- GET /signals -----------------------------------------------------------------------
    @app.get("/baseline/signals")
    def baseline_signals(symbol: str, start: Ts = None, end: Ts = None) -> list[dict]:
        b = backend()
        b.check_symbols([symbol])
        lo, hi = b.range(start, end)
        with b.fresh_connection() as conn:
            frame = b.baseline_bars(conn, symbol, lo, hi)
        return _records(signals.baseline(frame))

    @app.get("/optimized/signals")
    async def optimized_signals(
        request: Request, symbol: str, start: Ts = None, end: Ts = None
    ) -> Response:
        b = backend()
        b.check_symbols([symbol])
        lo, hi = b.range(start, end)

        def compute(rows: list) -> str:
            return _json(_records(signals.optimized(_frame(rows))))

        async def load() -> str:
            return await b.compute(compute, await b.optimized_rows(symbol, lo, hi))

        text = await b.cached(request, f"signals.json:{symbol}:{lo}:{hi}", load)
        return Response(text, media_type="application/json")

    # --- GET /market-data/stream (NDJSON) ----------------------------------------------------
    @app.get("/baseline/market-data/stream")
    def baseline_stream(
        symbol: str, limit: int = Query(1000, ge=1, le=100_000)
    ) -> StreamingResponse:
        b = backend()
        b.check_symbols([symbol])
        with b.fresh_connection() as conn:
            frame = b.baseline_bars(conn, symbol, *b.span)
        lines = [json.dumps(r) + "\n" for r in _records(frame.head(limit))]
        return StreamingResponse(iter(lines), media_type="application/x-ndjson")

    @app.get("/optimized/market-data/stream")
    async def optimized_stream(
        request: Request, symbol: str, limit: int = Query(1000, ge=1, le=100_000)
    ) -> Response:
        b = backend()
        b.check_symbols([symbol])

        def compute(rows: list) -> str:
            return "".join(json.dumps(r) + "\n" for r in _records(_frame(rows).head(limit)))

        async def load() -> str:
            return await b.compute(compute, await b.optimized_rows(symbol, *b.span))

        body = await b.cached(request, f"stream:{symbol}:{limit}", load)
        return Response(body, media_type="application/x-ndjson")

    # --- POST /portfolio/optimize --------------------------------------------------------------
    @app.post("/baseline/portfolio/optimize")
    def baseline_portfolio(request: PortfolioRequest) -> dict:
        b = backend()
        b.check_symbols(request.symbols, "symbols")
        with b.fresh_connection() as conn:
            frame = pd.concat([b.baseline_bars(conn, s, *b.span) for s in request.symbols])
        symbols, returns = portfolio.returns_matrix(frame, request.symbols)
        return _allocation(portfolio.baseline(returns, symbols, request.risk_free))

    @app.post("/optimized/portfolio/optimize")
    async def optimized_portfolio(http: Request, request: PortfolioRequest) -> JSONResponse:
        b = backend()
        b.check_symbols(request.symbols, "symbols")
        key = "returns:" + ",".join(request.symbols)

        async def returns() -> list:
            # on the loop: a few symbols' returns take about a millisecond, less than what a
            # compute thread costs in hand-offs and GIL switches (cold 1.18-1.36x the baseline
            # in a thread, 1.57x on the loop, in benchmarks/service_cold.py)
            frame = _frame(await b.many_rows(request.symbols))
            return portfolio.returns_matrix(frame, request.symbols)[1].tolist()

        # the allocation itself is small (a few symbols' matrices) and runs warm too: on the loop
        matrix = np.asarray(await b.cached(http, key, returns), dtype=float)
        return JSONResponse(
            _allocation(portfolio.optimized(matrix, request.symbols, request.risk_free))
        )

    # --- POST /batch/signals ------------------------------------------------------------------
    @app.post("/baseline/batch/signals")
    def baseline_batch(request: BatchRequest) -> dict:
        b = backend()
        b.check_symbols(request.symbols, "symbols")
        out = {}
        with b.fresh_connection() as conn:
            for symbol in request.symbols:  # one query and one loop per symbol
                frame = signals.baseline(b.baseline_bars(conn, symbol, *b.span))
                out[symbol] = _records(frame.tail(1))[0]
        return out

    @app.post("/optimized/batch/signals")
    async def optimized_batch(http: Request, request: BatchRequest) -> JSONResponse:
        b = backend()
        b.check_symbols(request.symbols, "symbols")
        wanted = sorted(set(request.symbols))

        def compute(rows: list) -> dict:
            last = signals.optimized(_frame(rows)).groupby("symbol", sort=False)
            return {r["symbol"]: r for r in _records(last.tail(1))}

        async def latest() -> dict:
            return await b.compute(compute, await b.many_rows(wanted))

        found = await b.cached(http, "batch:" + ",".join(wanted), latest)
        return JSONResponse({s: found[s] for s in request.symbols})

    return app


def _json(value: Any) -> str:
    """JSON text as Starlette's JSONResponse writes it (compact, no NaN)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _marks(symbols: list[str]) -> str:
    return ", ".join(f":s{i}" for i in range(len(symbols)))


def _params(symbols: list[str]) -> dict[str, str]:
    return {f"s{i}": s for i, s in enumerate(symbols)}


def _allocation(a: portfolio.Allocation) -> dict:
    return {
        "symbols": list(a.symbols),
        "tangency": [round(float(w), 12) for w in a.tangency],
        "min_variance": [round(float(w), 12) for w in a.min_variance],
        "expected_return": round(a.expected_return, 12),
        "volatility": round(a.volatility, 12),
    }


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (``perflab serve``): preset from PERFLAB_SERVICE_PRESET.
    The open-file limit goes up as far as allowed: every keep-alive client holds a socket."""
    raise_file_limit(MAX_CLIENTS, strict=False)
    return create_app(preset=resolve().service_preset)
