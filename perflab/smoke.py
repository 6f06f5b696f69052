"""The smoke check behind ``notebooks/00-smoke.ipynb``: a value through each real server and back,
timed, so a fresh machine proves Redis, PostgreSQL and the notebook path work end to end."""

from __future__ import annotations

import contextlib
import os
import time
import uuid

import numpy as np
import pandas as pd

from perflab import servers
from perflab.errors import ConfigurationError, ServerError
from perflab.settings import Settings, resolve

__all__ = ["roundtrips"]


def roundtrips(
    samples: int = 1000, *, payload_bytes: int = 64, settings: Settings | None = None
) -> pd.DataFrame:
    """Round-trip ``samples`` random payloads through Redis (SET+GET) and PostgreSQL (a bound
    ``bytea`` parameter selected back). Every value is checked; a mismatch raises ServerError.

    Returns one row per round trip: ``server``, ``ns`` (latency in nanoseconds).
    Redis keys live under the settings' key prefix and are deleted afterwards.
    """
    import sqlalchemy as sa

    if samples < 1 or payload_bytes < 0:
        raise ConfigurationError(
            f"samples must be >= 1 and payload_bytes >= 0, got {samples}, {payload_bytes}",
            name="samples" if samples < 1 else "payload_bytes",
        )
    settings = settings or resolve()
    endpoints = servers.start(settings)
    payloads = [os.urandom(payload_bytes) for _ in range(min(samples, 64))]
    rows: list[tuple[str, int]] = []

    client = servers.redis_client(settings)
    key = f"{settings.key_prefix}smoke:{uuid.uuid4().hex}"
    with contextlib.closing(client):
        try:
            for i in range(samples):
                value = payloads[i % len(payloads)]
                t0 = time.perf_counter_ns()
                client.set(key, value, ex=60)
                got = client.get(key)
                rows.append(("redis", time.perf_counter_ns() - t0))
                if got != value:
                    raise ServerError(
                        f"Redis at {endpoints.redis_url} returned a different value",
                        url=endpoints.redis_url,
                    )
        finally:
            client.delete(key)

    engine = servers.database_engine(settings)
    query = sa.text(
        "SELECT CAST(:v AS bytea)" if engine.dialect.name == "postgresql" else "SELECT :v"
    )
    try:
        with engine.connect() as conn:
            for i in range(samples):
                value = payloads[i % len(payloads)]
                t0 = time.perf_counter_ns()
                got = conn.execute(query, {"v": value}).scalar_one()
                rows.append((engine.dialect.name, time.perf_counter_ns() - t0))
                if bytes(got) != value:
                    raise ServerError(
                        f"database at {endpoints.database_url} returned a different value",
                        url=endpoints.database_url,
                    )
    finally:
        engine.dispose()
    return pd.DataFrame(rows, columns=["server", "ns"]).astype({"ns": np.int64})
