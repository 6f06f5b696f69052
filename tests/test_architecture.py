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


# every module, cache, bench and suites included (issue 26)
_EXEMPT: tuple[str, ...] = ()


def test_no_module_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "perflab").rglob("*.py")
        if path.relative_to(ROOT / "perflab").parts[0] not in _EXEMPT
        and (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long


# --- the error tree: what used to escape as ValueError is a PerflabError naming its culprit ----


def test_bad_input_raises_configuration_errors_naming_the_culprit():
    from perflab.errors import ConfigurationError
    from perflab.report import latency_histogram
    from perflab.smoke import roundtrips

    with pytest.raises(ConfigurationError, match="samples") as info:
        roundtrips(samples=0)
    assert info.value.name == "samples"
    with pytest.raises(ConfigurationError, match="no latencies") as info:
        latency_histogram({"empty": []})
    assert info.value.name == "latencies"


def test_a_negative_chunk_size_is_refused_before_any_row_is_read():
    from perflab.db.bulk import chunks
    from perflab.errors import ConfigurationError

    def rows():
        raise AssertionError("read a row")
        yield ()

    with pytest.raises(ConfigurationError, match="chunk_size") as info:
        chunks(rows(), 0)
    assert info.value.name == "chunk_size"
    assert list(chunks(iter([(1,), (2,), (3,)]), 2)) == [[(1,), (2,)], [(3,)]]


def test_a_key_prefix_with_a_trailing_newline_is_refused():
    from perflab.errors import ConfigurationError
    from perflab.settings import resolve

    with pytest.raises(ConfigurationError, match="PERFLAB_KEY_PREFIX"):
        resolve({}, key_prefix="perflab:\n")


# --- one module of URL schemes, one make_engine ------------------------------------------------


def test_every_layer_reads_its_schemes_from_perflab_urls():
    from perflab import settings, urls

    assert settings.DATABASE_SCHEMES is urls.DATABASE_SCHEMES
    assert settings.REDIS_SCHEMES is urls.REDIS_SCHEMES
    assert urls.is_postgres("postgresql+psycopg://u@h/db") and not urls.is_postgres("sqlite://")
    assert urls.libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert urls.redact("redis://:secret@h:6379/0") == "redis://:***@h:6379/0"


@pytest.mark.servers
def test_make_engine_keeps_prepared_statements_across_checkouts(settings):
    """The design's headline trap: six checkouts of one lookup leave it prepared on the server
    (a default pool's rollback on return would have thrown it away each time)."""
    import sqlalchemy as sa

    from perflab import servers
    from perflab.sql import make_engine

    engine = make_engine(
        servers.start(settings, redis=False).database_url, pool_size=1, max_overflow=0
    )
    try:
        for _ in range(6):
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1 WHERE 1 = %(x)s", {"x": 1}).all()
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar()
        assert count >= 1
        assert engine.dialect.skip_autocommit_rollback
    finally:
        engine.dispose()


def test_the_harness_and_the_cache_are_type_checked_strictly():
    """perflab.bench and perflab.cache under ``mypy --strict`` (issue 26): the cache's parts
    declare what they use of each other with its type, so the checker follows every call."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
         "--follow-imports=silent", "--no-error-summary", str(ROOT / "perflab" / "bench"),
         str(ROOT / "perflab" / "cache")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_import_cycles_not_even_for_types():
    """No module reaches itself through imports, TYPE_CHECKING blocks included (a cycle held
    together by import order once guarded suites/__init__.py with noqa: E402)."""
    import grimp

    graph = grimp.build_graph("perflab", include_external_packages=False)
    cycles = sorted(
        f"{module} <-> {imported}"
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )
    assert not cycles, cycles
