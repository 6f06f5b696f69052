"""The open-file limit a load generator needs: one descriptor per connection."""

from __future__ import annotations

import resource
from typing import Any

from perflab.errors import ConfigurationError

__all__ = ["raise_file_limit"]


def raise_file_limit(needed: int, *, strict: bool = True) -> dict[str, Any]:
    """Raise this process's open-file limit (RLIMIT_NOFILE) to fit ``needed`` sockets plus
    headroom, up to the hard limit. Returns what was done, for the result's params; raises a
    ConfigurationError saying what to do when the hard limit is too low (``strict=False``:
    raises it as far as the hard limit allows and says so in the answer)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if want <= soft:
        return {"nofile": soft, "raised": False}
    if hard != resource.RLIM_INFINITY and want > hard and not strict:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return {"nofile": hard, "raised": True, "was": soft, "short_of": want}
    if hard != resource.RLIM_INFINITY and want > hard:
        raise ConfigurationError(
            f"{needed} connections need {want} open files but the hard limit (ulimit -Hn) is "
            f"{hard}; raise it (e.g. ulimit -n {want} as root, or LimitNOFILE in a unit) or "
            "use fewer connections",
            name="--concurrency",
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return {"nofile": want, "raised": True, "was": soft}
