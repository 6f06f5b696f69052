from pathlib import Path

import pytest

from perflab.errors import ConfigurationError
from perflab.settings import ENV_VARS, Settings, resolve, sqlalchemy_url


def test_defaults_mean_embedded_servers():
    s = resolve({})
    assert s.redis_embedded and s.database_embedded
    assert s.redis_url is None and s.database_url is None
    assert s.key_prefix == "perflab:" and s.schema == "public"
    assert s.state_dir.is_absolute()


def test_variables_are_read_and_empty_counts_as_unset(tmp_path):
    s = resolve(
        {
            "PERFLAB_REDIS_URL": "redis://127.0.0.1:6379/0",
            "PERFLAB_DATABASE_URL": "  ",
            "PERFLAB_STATE_DIR": str(tmp_path / "st"),
            "PERFLAB_KEY_PREFIX": "t1:",
        }
    )
    assert s.redis_url == "redis://127.0.0.1:6379/0" and not s.redis_embedded
    assert s.database_embedded
    assert s.state_dir == tmp_path / "st"
    assert s.key_prefix == "t1:"


def test_relative_paths_become_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = resolve({"PERFLAB_OUTPUTS": "out"})
    assert s.outputs_dir == tmp_path / "out"


def test_overrides_beat_environment():
    s = resolve({"PERFLAB_KEY_PREFIX": "a:"}, key_prefix="b:")
    assert s.key_prefix == "b:"


def test_settings_are_frozen():
    s = resolve({})
    with pytest.raises(AttributeError):
        s.redis_url = "redis://x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERFLAB_REDIS_URL", "http://127.0.0.1:6379"),
        ("PERFLAB_REDIS_URL", "127.0.0.1:6379"),
        ("PERFLAB_DATABASE_URL", "mysql://root@localhost/test"),
    ],
)
def test_bad_url_names_the_variable(variable, value):
    with pytest.raises(ConfigurationError) as info:
        resolve({variable: value})
    assert info.value.name == variable
    assert variable in str(info.value)


def test_password_is_redacted_in_messages():
    with pytest.raises(ConfigurationError) as info:
        resolve({"PERFLAB_DATABASE_URL": "mysql://root:hunter2@localhost/test"})
    assert "hunter2" not in str(info.value)


def test_read_url_needs_a_write_url():
    with pytest.raises(ConfigurationError, match="PERFLAB_READ_DATABASE_URL"):
        resolve({"PERFLAB_READ_DATABASE_URL": "postgresql://postgres@127.0.0.1/test"})


@pytest.mark.parametrize("prefix", ["has space:", "semi;colon", "star*"])
def test_key_prefix_is_validated(prefix):
    with pytest.raises(ConfigurationError, match="PERFLAB_KEY_PREFIX"):
        resolve({"PERFLAB_KEY_PREFIX": prefix})


@pytest.mark.parametrize("schema", ["Public", "drop table x", "a-b", "1abc", "x" * 64])
def test_schema_must_be_a_plain_identifier(schema):
    with pytest.raises(ConfigurationError, match="PERFLAB_SCHEMA"):
        resolve({"PERFLAB_SCHEMA": schema})


def test_unknown_override_is_rejected():
    with pytest.raises(ConfigurationError, match="unknown setting"):
        resolve({}, redis_ulr="redis://x")


def test_every_variable_maps_to_a_field():
    fields = set(Settings.__dataclass_fields__)
    assert {field for field, _ in ENV_VARS.values()} <= fields


def test_sqlalchemy_url_uses_psycopg3():
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_url_is_accepted(tmp_path: Path):
    s = resolve({"PERFLAB_DATABASE_URL": f"sqlite:///{tmp_path}/lab.db"})
    assert not s.database_embedded
