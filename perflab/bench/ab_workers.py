"""The worker processes of ``perflab ab``: one side's process (:mod:`perflab.bench.abworker`),
asked one JSON line at a time, and the blocks a pair samples in (alternating or duet)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from perflab.errors import BenchmarkError

__all__ = ["WORKER", "Worker", "blocks", "cores_for"]

WORKER = Path(__file__).with_name("abworker.py")


def cores_for(pair: int, cores: list[int]) -> tuple[int, int]:
    """Duet: (baseline's core, candidate's core) of pair ``pair``, swapped every pair so
    neither side keeps the faster core."""
    first, second = cores[0], cores[1 % len(cores)]
    return (first, second) if pair % 2 == 0 else (second, first)


class Worker:
    """One side's worker process, asked one JSON line at a time."""

    def __init__(
        self, tree: Path, file: Path, label: str, core: int | None, timeout: float | None = None
    ) -> None:
        self.label, self.timeout = label, timeout
        # the user's prints, and tracebacks; closed in close()
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(tree), str(file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            preexec_fn=pin,  # the affinity is set before the side's code loads
        )

    def send(self, ask: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(ask) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.receive()  # the worker died: say why

    def receive(self, name: str = "") -> dict[str, Any]:
        assert self.proc.stdout is not None
        # one line answers each request, so nothing waits in the pipe's buffer between them
        if (
            self.timeout is not None
            and not select.select([self.proc.stdout], [], [], self.timeout)[0]
        ):
            self.proc.kill()
            raise BenchmarkError(
                f"{self.label}: {name or 'the benchmark'} gave no answer within "
                f"{self.timeout:g} s (--timeout); stopped"
            )
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line.strip() else {"error": self._last_words()}
        if "error" in answer:
            raise BenchmarkError(f"{self.label}: the benchmark file failed: {answer['error']}")
        return answer

    def ask(self, ask: dict[str, Any]) -> dict[str, Any]:
        self.send(ask)
        return self.receive(str(ask.get("name", "")))

    def _last_words(self) -> str:
        self.proc.wait(timeout=10)
        self.errors.seek(0)
        lines = self.errors.read().strip().splitlines()
        return lines[-1] if lines else f"the worker exited with {self.proc.returncode}"

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.errors.close()


def blocks(
    workers: list[Worker], name: str, loops: int, count: int, duet: bool, rng: Any, rounds: int
) -> list[list[float]]:
    """``rounds`` blocks of ``count`` samples per side: in random order, or both at once."""
    got: list[list[float]] = [[], []]
    ask = {"op": "sample", "name": name, "loops": loops, "samples": count}
    for _ in range(rounds):
        if duet:
            for w in workers:
                w.send(ask)
            for i, w in enumerate(workers):
                got[i] += w.receive(name)["ns"]
        else:
            for i in rng.permutation(2):
                got[i] += workers[i].ask(ask)["ns"]
    return got
