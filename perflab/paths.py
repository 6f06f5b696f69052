"""Checks on paths the user names, made before long work starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from perflab.errors import ConfigurationError

__all__ = ["probe_writable"]


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
