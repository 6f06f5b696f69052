"""Point the lab at a system perflab did not create (notebooks 07-09): the pieces that need the
harness beside the subject (a verified index speedup, a service's endpoints under load)."""

from perflab.probe.database import verify_index

__all__ = ["verify_index"]
