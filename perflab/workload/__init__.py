"""The reproducible workload: synthetic market data, signals and portfolio optimisation, each in
a baseline and an optimised form that give the same answers."""

from perflab.workload import portfolio, signals
from perflab.workload.market import PRESETS, Preset, bars, data_hash
from perflab.workload.store import load

__all__ = ["PRESETS", "Preset", "bars", "data_hash", "load", "portfolio", "signals"]
