"""Every command given bad input: one line on stderr naming the culprit, exit 2, no traceback,
and nothing run first (each case fails before a server, kernel, suite or cluster starts)."""

from __future__ import annotations

import json
import socket

import pytest

from .conftest import perflab_cli, write_notebook

# (id, argv, extra environment, text the one-line message must contain)
# Placeholders: {tmp} a fresh folder, {file} a plain file in it, {closed} a TCP port nobody
# listens on, {busy} a TCP port this test holds open.
CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    # usage
    ("unknown-command", ["frobnicate"], {}, "frobnicate"),
    ("unknown-option", ["run", "--frob", "x.ipynb"], {}, "--frob"),
    ("servers-unknown-action", ["servers", "restart"], {}, "restart"),
    # settings from the environment
    ("redis-url-bad-ipv6", ["servers", "status"], {"PERFLAB_REDIS_URL": "redis://[::1"},
     "PERFLAB_REDIS_URL"),
    ("redis-url-bad-ipv6-start", ["servers", "start"], {"PERFLAB_REDIS_URL": "redis://[::1:6379/0"},
     "PERFLAB_REDIS_URL"),
    ("database-url-bad-ipv6", ["servers", "status"],
     {"PERFLAB_DATABASE_URL": "postgresql://postgres@[::1/test"}, "PERFLAB_DATABASE_URL"),
    ("read-database-url-bad-ipv6", ["servers", "status"],
     {"PERFLAB_DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
      "PERFLAB_READ_DATABASE_URL": "postgresql://[zz/test"}, "PERFLAB_READ_DATABASE_URL"),
    ("redis-url-db-not-a-number", ["servers", "start"],
     {"PERFLAB_REDIS_URL": "redis://127.0.0.1:6379/abc"}, "PERFLAB_REDIS_URL"),
    ("redis-url-port-not-a-number", ["servers", "start"],
     {"PERFLAB_REDIS_URL": "redis://127.0.0.1:abc/0"}, "PERFLAB_REDIS_URL"),
    ("redis-url-port-out-of-range", ["servers", "start"],
     {"PERFLAB_REDIS_URL": "redis://127.0.0.1:99999/0"}, "PERFLAB_REDIS_URL"),
    ("redis-url-no-host", ["servers", "start"], {"PERFLAB_REDIS_URL": "redis:///0"},
     "PERFLAB_REDIS_URL"),
    ("redis-unix-url-no-path", ["servers", "start"], {"PERFLAB_REDIS_URL": "unix://"},
     "PERFLAB_REDIS_URL"),
    ("redis-unix-url-bad-db", ["servers", "start"],
     {"PERFLAB_REDIS_URL": "unix:///tmp/r.sock?db=x"}, "PERFLAB_REDIS_URL"),
    ("redis-url-wrong-scheme", ["servers", "start"], {"PERFLAB_REDIS_URL": "http://127.0.0.1/"},
     "PERFLAB_REDIS_URL"),
    ("database-url-port-not-a-number", ["servers", "start"],
     {"PERFLAB_DATABASE_URL": "postgresql://postgres@127.0.0.1:x/test"}, "PERFLAB_DATABASE_URL"),
    ("database-url-port-out-of-range", ["servers", "start"],
     {"PERFLAB_DATABASE_URL": "postgresql://postgres@127.0.0.1:70000/test"},
     "PERFLAB_DATABASE_URL"),
    ("database-url-wrong-scheme", ["servers", "start"], {"PERFLAB_DATABASE_URL": "mysql://h/db"},
     "PERFLAB_DATABASE_URL"),
    ("read-url-without-database-url", ["servers", "start"],
     {"PERFLAB_READ_DATABASE_URL": "postgresql://postgres@127.0.0.1/test"},
     "PERFLAB_READ_DATABASE_URL"),
    ("key-prefix", ["servers", "status"], {"PERFLAB_KEY_PREFIX": "a b"}, "PERFLAB_KEY_PREFIX"),
    ("schema", ["servers", "status"], {"PERFLAB_SCHEMA": "Robert'); DROP"}, "PERFLAB_SCHEMA"),
    ("state-dir-under-a-file-start", ["servers", "start"], {"PERFLAB_STATE_DIR": "{file}/state"},
     "PERFLAB_STATE_DIR"),
    ("state-dir-under-a-file-status", ["servers", "status"], {"PERFLAB_STATE_DIR": "{file}/state"},
     "PERFLAB_STATE_DIR"),
    ("state-dir-under-a-file-stop", ["servers", "stop"], {"PERFLAB_STATE_DIR": "{file}/state"},
     "PERFLAB_STATE_DIR"),
    ("state-dir-is-a-file", ["servers", "start"], {"PERFLAB_STATE_DIR": "{file}"},
     "PERFLAB_STATE_DIR"),
    ("state-dir-under-a-file-run", ["run", "{tmp}/ok.ipynb", "--out", "{tmp}/o"],
     {"PERFLAB_STATE_DIR": "{file}/state"}, "PERFLAB_STATE_DIR"),
    ("outputs-under-a-file-run", ["run", "{tmp}/ok.ipynb", "--no-servers"],
     {"PERFLAB_OUTPUTS": "{file}/out"}, "PERFLAB_OUTPUTS"),
    ("outputs-under-a-file-report", ["report"], {"PERFLAB_OUTPUTS": "{file}/out"},
     "PERFLAB_OUTPUTS"),
    ("notebooks-folder-empty", ["report"], {"PERFLAB_NOTEBOOKS": "{tmp}/nothing"},
     "PERFLAB_NOTEBOOKS"),
    # run
    ("run-missing-notebook", ["run", "{tmp}/nope.ipynb"], {}, "nope.ipynb"),
    ("run-not-ipynb", ["run", "{file}"], {}, "afile"),
    ("run-notebook-is-a-folder", ["run", "{tmp}/folder.ipynb"], {}, "folder.ipynb"),
    ("run-notebook-empty-object", ["run", "{tmp}/empty.ipynb", "--no-servers", "--out",
     "{tmp}/o"], {}, "empty.ipynb"),
    ("run-notebook-other-language", ["run", "{tmp}/julia.ipynb", "--no-servers", "--out",
     "{tmp}/o"], {}, "julia.ipynb"),
    ("run-notebook-not-json", ["run", "{tmp}/garbage.ipynb", "--no-servers"], {},
     "garbage.ipynb"),
    ("run-notebook-json-list", ["run", "{tmp}/list.ipynb", "--no-servers"], {}, "list.ipynb"),
    ("run-notebook-binary", ["run", "{tmp}/binary.ipynb", "--no-servers"], {}, "binary.ipynb"),
    ("run-parameters-cell-syntax", ["run", "{tmp}/badparams.ipynb", "--no-servers"], {},
     "parameters cell"),
    ("run-out-under-a-file", ["run", "{tmp}/ok.ipynb", "--no-servers", "--out", "{file}/o"], {},
     "--out"),
    ("run-out-in-proc", ["run", "{tmp}/ok.ipynb", "--no-servers", "--out", "/proc/perflab-o"], {},
     "--out"),
    ("run-out-is-a-file", ["run", "{tmp}/ok.ipynb", "--no-servers", "--out", "{file}"], {},
     "--out"),
    ("run-unknown-parameter", ["run", "{tmp}/ok.ipynb", "-p", "nn", "1"], {}, "'nn'"),
    ("run-bad-parameter", ["run", "{tmp}/ok.ipynb", "-p", "n", "abc"], {}, "'n'"),
    ("run-repeated-parameter", ["run", "{tmp}/ok.ipynb", "-p", "n", "1", "-p", "n", "2"], {},
     "'n'"),
    ("run-timeout-zero", ["run", "{tmp}/ok.ipynb", "--timeout", "0"], {}, "--timeout"),
    ("run-timeout-negative", ["run", "{tmp}/ok.ipynb", "--timeout", "-5"], {}, "--timeout"),
    ("run-timeout-nan", ["run", "{tmp}/ok.ipynb", "--timeout", "nan"], {}, "--timeout"),
    ("run-timeout-word", ["run", "{tmp}/ok.ipynb", "--timeout", "soon"], {}, "--timeout"),
    # bench
    ("bench-unknown-suite", ["bench", "nosuchsuite"], {}, "nosuchsuite"),
    ("bench-missing-file", ["bench", "{tmp}/nope.py"], {}, "nope.py"),
    ("bench-processes-zero", ["bench", "harness", "--processes", "0"], {}, "--processes"),
    ("bench-out-under-a-file", ["bench", "harness", "--quick", "--processes", "1", "--out",
     "{file}/r.json"], {}, "--out"),
    ("bench-out-in-proc", ["bench", "harness", "--quick", "--processes", "1", "--out",
     "/proc/perflab-r.json"], {}, "--out"),
    ("bench-out-is-a-folder", ["bench", "harness", "--quick", "--processes", "1", "--out",
     "{tmp}"], {}, "--out"),
    # compare
    ("compare-missing", ["compare", "{tmp}/nope.json", "{tmp}/nope.json"], {}, "nope.json"),
    ("compare-json-list", ["compare", "{tmp}/list.json", "{tmp}/list.json"], {}, "list.json"),
    ("compare-json-string", ["compare", "{tmp}/string.json", "{tmp}/string.json"], {},
     "string.json"),
    ("compare-results-not-a-list", ["compare", "{tmp}/abc.json", "{tmp}/abc.json"], {},
     "abc.json"),
    ("compare-results-bad-items", ["compare", "{tmp}/items.json", "{tmp}/items.json"], {},
     "items.json"),
    ("compare-binary", ["compare", "{tmp}/binary.json", "{tmp}/binary.json"], {}, "binary.json"),
    ("compare-not-json", ["compare", "{tmp}/garbage.json", "{tmp}/garbage.json"], {},
     "garbage.json"),
    ("compare-folder", ["compare", "{tmp}", "{tmp}"], {}, "{tmp}"),
    ("compare-threshold", ["compare", "{tmp}/list.json", "{tmp}/list.json", "--threshold", "x"],
     {}, "--threshold"),
    # history
    ("history-path-folder", ["history", "--path", "{tmp}"], {}, "{tmp}"),
    ("history-path-not-sqlite", ["history", "--path", "{tmp}/garbage.json"], {}, "garbage.json"),
    ("history-path-binary", ["history", "--path", "{tmp}/binary.json"], {}, "binary.json"),
    ("history-path-under-a-file", ["history", "--path", "{file}/h.sqlite"], {}, "h.sqlite"),
    ("history-url-bad-ipv6", ["history", "--path", "postgresql://[::1/x"], {}, "postgresql://"),
    ("history-url-env-bad-ipv6", ["history"], {"PERFLAB_HISTORY_URL": "postgresql://[::1/x"},
     "PERFLAB_HISTORY_URL"),
    ("history-threshold", ["history", "--check", "--path", "{tmp}/h.sqlite", "--threshold",
     "lots"], {}, "--threshold"),
    # sweep
    ("sweep-scheduler-closed-port", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1",
     "--scheduler", "tcp://127.0.0.1:{closed}", "--out", "{tmp}/s"], {}, "127.0.0.1:{closed}"),
    ("sweep-scheduler-garbage", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1", "--scheduler",
     "tcp://[::1", "--out", "{tmp}/s"], {}, "--scheduler"),
    ("sweep-grid-syntax", ["sweep", "{tmp}/ok.ipynb", "--grid", "n"], {}, "--grid"),
    ("sweep-grid-unknown", ["sweep", "{tmp}/ok.ipynb", "--grid", "nn=1"], {}, "'nn'"),
    ("sweep-grid-bad-value", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1,x"], {}, "'n'"),
    ("sweep-missing-notebook", ["sweep", "{tmp}/nope.ipynb", "--grid", "n=1"], {}, "nope.ipynb"),
    ("sweep-notebook-empty-object", ["sweep", "{tmp}/empty.ipynb", "--grid", "n=1"], {},
     "empty.ipynb"),
    ("sweep-out-under-a-file", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1", "--out",
     "{file}/s"], {}, "--out"),
    ("sweep-out-is-a-file", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1", "--out", "{file}"], {},
     "--out"),
    ("sweep-out-in-proc", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1", "--out",
     "/proc/perflab-s"], {}, "--out"),
    ("sweep-workers-zero", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1", "--workers", "0"], {},
     "--workers"),
    ("sweep-timeout-zero", ["sweep", "{tmp}/ok.ipynb", "--grid", "n=1", "--timeout", "0"], {},
     "--timeout"),
    # report
    ("report-out-under-a-file", ["report", "--out", "{file}/r"], {}, "--out"),
    ("report-out-is-a-file", ["report", "--out", "{file}"], {}, "--out"),
    ("report-out-in-proc", ["report", "--out", "/proc/perflab-r"], {}, "--out"),
    ("report-timeout-zero", ["report", "--timeout", "0"], {}, "--timeout"),
    # serve
    ("serve-port-too-big", ["serve", "--port", "99999"], {}, "--port"),
    ("serve-port-negative", ["serve", "--port", "-1"], {}, "--port"),
    ("serve-port-in-use", ["serve", "--port", "{busy}"], {}, "{busy}"),
    ("serve-workers-zero", ["serve", "--workers", "0"], {}, "--workers"),
    ("serve-unknown-preset", ["serve", "--preset", "huge"], {}, "huge"),
    # lab
    ("lab-port-too-big", ["lab", "--port", "99999"], {}, "--port"),
    ("lab-port-in-use", ["lab", "--port", "{busy}"], {}, "{busy}"),
    # load
    ("load-not-http", ["load", "ftp://x/"], {}, "ftp://x/"),
    ("load-duration-zero", ["load", "http://127.0.0.1:{closed}/", "--duration", "0"], {},
     "duration"),
    ("load-out-under-a-file", ["load", "http://127.0.0.1:{closed}/", "--duration", "0.2",
     "--out", "{file}/l.json"], {}, "--out"),
    ("load-out-in-proc", ["load", "http://127.0.0.1:{closed}/", "--duration", "0.2", "--out",
     "/proc/perflab-l.json"], {}, "--out"),
    ("load-out-is-a-folder", ["load", "http://127.0.0.1:{closed}/", "--duration", "0.2",
     "--out", "{tmp}"], {}, "--out"),
]  # fmt: skip


def _params(cases):
    for case in cases:
        if not hasattr(case, "marks"):
            yield pytest.param(*case[1:], id=case[0])
        else:
            yield pytest.param(*case.values[1:], id=case.values[0], marks=case.marks)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inputs(tmp_path):
    """The bad (and one good) files the cases name, and two ports."""
    (tmp_path / "afile").write_text("just a file\n")
    (tmp_path / "folder.ipynb").mkdir()
    (tmp_path / "nothing").mkdir()
    write_notebook(tmp_path / "ok.ipynb", "print(n)")
    (tmp_path / "empty.ipynb").write_text("{}")
    nb = json.loads((tmp_path / "ok.ipynb").read_text())
    del nb["metadata"]["kernelspec"]
    (tmp_path / "nokernel.ipynb").write_text(json.dumps(nb))
    nb["metadata"]["kernelspec"] = {"name": "julia", "display_name": "Julia", "language": "julia"}
    (tmp_path / "julia.ipynb").write_text(json.dumps(nb))
    write_notebook(tmp_path / "badparams.ipynb", "print(1)", params="n: int = (")
    (tmp_path / "garbage.ipynb").write_text("not json at all")
    (tmp_path / "garbage.json").write_text("not json at all")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "string.json").write_text('"abc"')
    (tmp_path / "abc.json").write_text('{"results": "abc"}')
    (tmp_path / "items.json").write_text('{"results": [1, "x"]}')
    (tmp_path / "binary.ipynb").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "binary.json").write_bytes(bytes(range(256)) * 4)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    values = {"tmp": str(tmp_path), "file": str(tmp_path / "afile"), "closed": _closed_port()}
    values["busy"] = busy.getsockname()[1]
    with busy:
        yield values


def run_case(argv, env, inputs, timeout: float = 60):
    args = [a.format(**inputs) for a in argv]
    environ = {k: v.format(**inputs) for k, v in env.items()}
    return perflab_cli(*args, env=environ, timeout=timeout)


@pytest.mark.parametrize(("argv", "env", "culprit"), list(_params(CASES)))
def test_bad_input_is_one_line_and_exit_2(argv, env, culprit, inputs):
    done = run_case(argv, env, inputs)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("perflab: error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert culprit.format(**inputs) in done.stderr, done.stderr
    assert done.stdout == "", done.stdout
