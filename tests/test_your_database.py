"""Notebook 08 (your database): expensive queries from pg_stat_statements (a real server that
preloads it, started from the system's PostgreSQL binaries) or from a queries file (the embedded
server, which lacks it), index advice ranked by time saved, HypoPG where installed, the
verified speedup, and proof that nothing is written without apply."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from perflab import db, your_system
from perflab.errors import ConfigurationError, ServerError
from perflab.urls import libpq_url

from .conftest import perflab_cli

pytestmark = pytest.mark.servers

NOTEBOOK = "notebooks/08-your-database.ipynb"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

# 3 tables, 6 query shapes; orders.customer_id lacks the index that matters, regions.code one
# that does not (20 rows). (sql, calls, params)
SHAPES = [
    ("SELECT id, amount FROM orders WHERE customer_id = %s", 60, lambda r: (r.randrange(20_000),)),
    ("SELECT name FROM regions WHERE code = %s", 400, lambda r: (f"r{r.randrange(20)}",)),
    ("SELECT name FROM customers WHERE id = %s", 200, lambda r: (r.randrange(20_000),)),
    ("SELECT amount FROM orders WHERE id = %s", 200, lambda r: (r.randrange(200_000),)),
    (
        "SELECT c.name, count(*) FROM customers c JOIN regions g ON g.id = c.region "
        "WHERE c.id = %s GROUP BY c.name",
        100,
        lambda r: (r.randrange(20_000),),
    ),
    ("SELECT count(*) FROM customers WHERE region = %s", 10, lambda r: (r.randrange(20),)),
]


def build_workload(url: str, schema: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute(
            "CREATE TABLE regions AS SELECT g AS id, 'r' || g AS code, 'region ' || g AS name "
            "FROM generate_series(0, 19) g"
        )
        conn.execute(
            "CREATE TABLE customers AS SELECT g AS id, g % 20 AS region, 'c' || g AS name "
            "FROM generate_series(0, 19999) g"
        )
        conn.execute(
            "CREATE TABLE orders AS SELECT g AS id, (g * 7919) % 20000 AS customer_id, "
            "g % 97 AS amount FROM generate_series(0, 199999) g"
        )
        conn.execute("ALTER TABLE customers ADD PRIMARY KEY (id)")
        conn.execute("ALTER TABLE orders ADD PRIMARY KEY (id)")
        conn.execute("ANALYZE")


def run_workload(url: str, schema: str) -> None:
    rng = random.Random(7)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        for sql, calls, params in SHAPES:
            for _ in range(calls):
                conn.execute(sql, params(rng)).fetchall()


def schema_snapshot(url: str, schema: str) -> list[tuple]:
    """Every relation, index definition and row count in ``schema``."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rels = conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1",
            (schema,),
        ).fetchall()
        idx = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1", (schema,)
        ).fetchall()
        counts = [
            conn.execute(f'SELECT count(*) FROM "{schema}"."{t}"').fetchone()
            for t in ("orders", "customers", "regions")
        ]
    return [*rels, *idx, *counts]


@pytest.fixture(scope="module")
def pgss_url():
    """A real PostgreSQL 15 from the system's binaries with pg_stat_statements preloaded and
    HypoPG installed (Debian postgresql-15-hypopg): the system server itself only gets
    pg_stat_statements through shared_preload_libraries and a restart, which would cut off
    everyone else using it."""
    # the server's binaries can be there without HypoPG (a machine with Debian's postgresql-15)
    if not (PG_BIN / "initdb").exists() or not (PG_BIN.parent / "lib" / "hypopg.so").exists():
        if os.environ.get("CI"):
            pytest.fail(
                "PostgreSQL 15 with HypoPG missing; tools/system-packages.sh installs "
                "postgresql-15-hypopg"
            )
        pytest.skip("no PostgreSQL 15 with HypoPG (apt-get install postgresql-15-hypopg)")
    base = Path(tempfile.mkdtemp(prefix="perflab-pgss-"))
    data = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        shutil.chown(base, "postgres")
        base.chmod(0o755)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = (
        f"-c shared_preload_libraries=pg_stat_statements -c listen_addresses='' "
        f"-c unix_socket_directories={base} -c pg_stat_statements.track=top"
    )
    subprocess.run(
        [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
         str(base / "log"), "start"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    url = f"postgresql://postgres@/postgres?host={base}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE EXTENSION hypopg")
        yield url
    finally:
        subprocess.run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_pg_stat_statements_path_ranks_the_index_that_matters_first(pgss_url):
    schema = "shop"
    build_workload(pgss_url, schema)
    with psycopg.connect(pgss_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    run_workload(pgss_url, schema)
    before = schema_snapshot(pgss_url, schema)
    advice = db.advise_workload(pgss_url, limit=10, search_path=schema)
    assert advice.source == "pg_stat_statements" and advice.hypothetical
    top = advice.suggestions.iloc[0]
    assert (top["table"], top["columns"]) == ("shop.orders", "customer_id"), (
        advice.suggestions.to_string(),
        advice.queries.to_string(),
        advice.notes,
    )
    assert top["est_saved"] > 0 and advice.worth_applying[0] == advice.chosen[0]
    regions = advice.suggestions[advice.suggestions["table"] == "shop.regions"]
    assert regions.empty or (regions["est_saved"] < top["est_saved"] / 10).all()
    assert {"calls", "mean_ms", "total_ms"} <= set(advice.queries.columns)
    assert schema_snapshot(pgss_url, schema) == before  # advice wrote nothing

    comparison = your_system.verify_index(
        pgss_url,
        advice.chosen[0],
        "SELECT id, amount FROM orders WHERE customer_id = %s",
        (1234,),
        search_path=schema,
        rounds=10,
        min_time=1.0,
    )
    assert comparison.verdict == "faster", comparison.summary()
    print(f"\nverified: {comparison.speedup:.1f}x faster, CI {comparison.speedup_ci}")
    assert schema_snapshot(pgss_url, schema) == before  # the scratch copy is gone


def test_a_user_without_rights_gets_a_stated_limitation(pgss_url):
    name = f"reader_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pgss_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute("SELECT count(*) FROM shop.orders WHERE customer_id = 7")
    url = pgss_url.replace("postgres@", f"{name}@")
    with pytest.raises(ConfigurationError) as err:
        db.advise_workload(url)
    message = str(err.value)
    assert "hidden from this user" in message and "pass a queries file" in message
    assert "\n" not in message
    advice = db.advise_workload(url, [db.WorkloadQuery("SELECT 1", 1)])
    assert advice.source == "file" and advice.suggestions.empty


def _queries_file(path: Path, schema: str) -> Path:
    lines = []
    for sql, calls, params in SHAPES:
        literal = sql % tuple(repr(v) for v in params(random.Random(3)))
        qualified = literal.replace(" FROM ", f" FROM {schema}.").replace(
            " JOIN ", f" JOIN {schema}."
        )
        lines.append(f"-- calls: {calls}\n{qualified};")
    path.write_text("\n".join(lines))
    return path


def test_fallback_queries_file_on_a_server_without_pg_stat_statements(settings, tmp_path):
    from perflab import servers

    pg_url = servers.start(settings, redis=False).database_url
    schema = f"{settings.schema}_adv"
    build_workload(pg_url, schema)
    try:
        queries = db.queries_from_file(_queries_file(tmp_path / "q.sql", schema))
        assert [q.calls for q in queries] == [c for _, c, _ in SHAPES]
        advice = db.advise_workload(pg_url, queries, analyze=True)
        assert advice.source == "file"
        top = advice.suggestions.iloc[0]
        assert (top["table"], top["columns"]) == (f"{schema}.orders", "customer_id")
        assert advice.unit == "ms"
        if not advice.hypothetical:
            assert any("HypoPG is not installed" in n for n in advice.notes)
    finally:
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(ServerError) as err:
        db.advise_workload("postgresql://me:s3cret@127.0.0.1:1/x", [db.WorkloadQuery("SELECT 1")])
    assert "s3cret" not in str(err.value) and "127.0.0.1:1" in str(err.value)
    with pytest.raises(ConfigurationError, match="not found"):
        db.queries_from_file(tmp_path / "none.sql")
    (tmp_path / "empty.sql").write_text("-- nothing\n;\n")
    with pytest.raises(ConfigurationError, match="no statements"):
        db.queries_from_file(tmp_path / "empty.sql")
    forged = db.IndexSuggestion("t", ("a",), "DROP TABLE t", "forged")
    with pytest.raises(Exception, match="nothing was executed"):
        db.apply_suggestion("postgresql://127.0.0.1:1/x", forged)


@pytest.mark.notebook
def test_notebook_08_writes_nothing_without_apply_and_only_the_ddl_with_it(pgss_url, tmp_path):
    schema = "shop_nb"
    build_workload(pgss_url, schema)
    run_workload(pgss_url, schema)
    before = schema_snapshot(pgss_url, schema)
    out = tmp_path / "run"
    done = perflab_cli(
        "run", NOTEBOOK, "-p", "database_url", pgss_url, "-p", "search_path", schema,
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    html = (out / "08-your-database.html").read_text()
    assert "pg_stat_statements" in html and "CREATE INDEX IF NOT EXISTS" in html
    assert "customer_id" in html and "Traceback" not in html
    assert schema_snapshot(pgss_url, schema) == before
    done = perflab_cli(
        "run", NOTEBOOK, "-p", "database_url", pgss_url, "-p", "search_path", schema,
        "-p", "apply", "true",
        "--out", str(tmp_path / "applied"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    after = schema_snapshot(pgss_url, schema)
    added = [row for row in after if row not in before]
    assert any("customer_id" in str(row) for row in added), added
    assert all("customer_id" in str(row) or "ix_orders" in str(row) for row in added), added


@pytest.mark.notebook
def test_notebook_08_sweeps_the_fallback_path_on_the_embedded_server(settings, tmp_path):
    from perflab import servers

    pg_url = servers.start(settings, redis=False).database_url
    schema = f"{settings.schema}_nb"
    build_workload(pg_url, schema)
    try:
        queries = _queries_file(tmp_path / "q.sql", schema)
        before = schema_snapshot(pg_url, schema)
        sweep = tmp_path / "sweep"
        done = perflab_cli(
            "sweep", NOTEBOOK, "--grid", f"database_url={pg_url}", "--grid", f"queries={queries}",
            "--grid", "analyze=false,true", "--out", str(sweep),
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        runs = json.loads((sweep / "sweep.json").read_text())["runs"]
        assert sorted(r["analyze"] for r in runs) == [False, True] and all(r["ok"] for r in runs)
        for r in runs:
            html = Path(r["html"]).read_text()
            assert "queries from file" in html and f"{schema}.orders" in html
            assert "nothing was written" in html
        assert schema_snapshot(pg_url, schema) == before
        done = perflab_cli(
            "run", NOTEBOOK, "-p", "database_url", pg_url, "-p", "queries", str(queries),
            "-p", "apply", "true", "-p", "verify", "true", "--out", str(tmp_path / "applied"),
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        html = (tmp_path / "applied" / "08-your-database.html").read_text()
        assert "verified on a scratch copy" in html and "faster" in html, html[-3000:]
        added = [row for row in schema_snapshot(pg_url, schema) if row not in before]
        assert len(added) == 2 and all("customer_id" in str(row) for row in added), added
    finally:
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
