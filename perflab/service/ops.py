"""The service's operational routes: ``/ping``, ``/health`` (each dependency; 503 when one is
down), ``POST /benchmark/{suite}`` (token-guarded, one at a time), ``/metrics``,
``/metrics/tail`` and, with ``PERFLAB_SERVICE_DEBUG=1``, the ``/debug`` endpoints the
generator's tests use."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from perflab.service import microbench
from perflab.service.requests import echo
from perflab.settings import resolve

__all__ = ["add_ops_routes"]


def add_ops_routes(app: FastAPI, backend: Callable[[], Any]) -> None:
    """Add the operational routes; ``backend()`` gives the running service's Backend."""

    @app.get("/ping")
    async def ping() -> dict:
        """No dependency at all: the cheapest answer the service gives (generator checks)."""
        return {"ok": True}

    @app.get("/health")
    async def health() -> JSONResponse:
        b = backend()
        deps = await b.dependencies()
        ok = all(d["ok"] for d in deps.values())
        body = {
            "status": "ok" if ok else "degraded",
            "symbols": len(b.symbols),
            "rows": deps["database"].get("rows"),
            "dependencies": deps,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.post("/benchmark/{suite}")
    async def benchmark(
        suite: str,
        request: Request,
        seconds: float = Query(0.5, gt=0, le=microbench.MAX_SECONDS),
    ) -> JSONResponse:
        b = backend()
        token = os.environ.get(microbench.TOKEN_ENV)
        if not token:
            raise HTTPException(
                404,
                detail={"error": f"the benchmark endpoint is off; set {microbench.TOKEN_ENV}"},
            )
        given = request.headers.get(microbench.TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                403, detail={"field": microbench.TOKEN_HEADER, "error": "missing or wrong token"}
            )
        if suite not in microbench.SUITES:
            known = ", ".join(sorted(microbench.SUITES))
            raise HTTPException(
                404,
                detail={"field": "suite", "error": f"unknown suite {echo(suite)!r}; use {known}"},
            )
        if b.bench_busy:
            raise HTTPException(429, detail={"error": "a benchmark is running; try again later"})
        b.bench_busy = True
        try:
            results = await microbench.SUITES[suite](b, seconds)
        finally:
            b.bench_busy = False
        return JSONResponse({"suite": suite, "results": [r.to_dict() for r in results]})

    @app.get("/metrics")
    def metrics() -> dict:
        b = backend()
        cache = b.cache.stats().reset_index().replace({np.nan: None}).to_dict(orient="records")
        pools = b.db.stats().reset_index().to_dict(orient="records")
        return {"cache": cache, "pools": pools}

    @app.get("/metrics/tail")
    async def tail(reset: bool = False) -> dict:
        """GC pauses, event-loop stalls and cache loads since the last reset."""
        b = backend()
        out = b.tail.snapshot()
        if reset:
            b.tail.reset()
        return out

    if resolve().service_debug == "1":
        stalls = {"n": 0}

        @app.get("/debug/stall")
        async def stall(every: int = 100, ms: float = 50.0) -> dict:
            """Every ``every``-th request takes ``ms`` longer, blocking the whole event loop:
            for checking that the load generator counts the requests queued behind it."""
            stalls["n"] += 1
            if stalls["n"] % every == 0:
                time.sleep(ms / 1000)  # deliberately blocking
            return {"n": stalls["n"]}

        @app.get("/debug/status")
        async def status(code: int = Query(503, ge=200, le=599)) -> JSONResponse:
            """Answers with ``code``: for checking that failures are counted by kind."""
            return JSONResponse({"status": code}, status_code=code)
