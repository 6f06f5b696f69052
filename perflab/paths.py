"""Checks on paths the user names, made before long work starts."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from perflab.errors import ConfigurationError

__all__ = ["probe_writable", "write_page"]


def probe_writable(folder: Path, option: str, path: Path | None = None) -> None:
    """Raise a one-line :class:`ConfigurationError` naming ``option`` unless a new file can be
    made (and is removed again) in ``folder``. A real file is made because ``os.access`` says
    yes to root in /proc, where nothing can be created."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".perflab-probe-", dir=folder)
    except OSError as err:
        raise ConfigurationError(
            f"{option} {path or folder}: cannot create files in {folder} ({err.strerror}); "
            "give a place you can write",
            name=option,
        ) from err
    os.close(handle)
    os.unlink(probe)


def write_page(path: Path, text: str) -> Path:
    """Write a page (HTML, JSON) whole or not at all: to a temporary file beside ``path``,
    then renamed over it, so a failure never leaves a 0-byte page. Text that came from a
    non-UTF-8 file name (lone surrogates) is written escaped (``\\udcff``), not refused."""
    path = Path(path)
    data = text.encode("utf-8", "backslashreplace")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name[:40]}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path
