"""The demo HTTP service (baseline vs optimised endpoints) and its load generator."""

from perflab.service.app import MAX_BATCH, create_app
from perflab.service.load import run_load

__all__ = ["MAX_BATCH", "create_app", "run_load"]
