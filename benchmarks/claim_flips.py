"""Do claim verdicts flip between reports? Reads the ``run.json`` of kept reports (any folders
given, ordered by start time) and counts, for consecutive reports from the fifth on, verdicts
that flip between ``confirmed`` and ``not reproduced``: as each report judged them, and judged
again with the run-to-run noise the history would have learnt from the reports before it
(``claims.with_run_noise`` of ``changepoint.run_spread`` over the earlier figures).

Run: ``.venv/bin/python benchmarks/claim_flips.py outputs/benchmarks/report-history-*-runs``.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import sys
from pathlib import Path

from perflab import claims
from perflab.bench import changepoint
from perflab.bench.history import MIN_RUNS

FLIP = {"confirmed", "not reproduced"}


def main(folders: list[str]) -> None:
    runs = [p for f in folders for p in Path(f).glob("*/run.json")]
    docs = sorted(
        (json.loads(p.read_text()) for p in runs), key=lambda d: d["meta"]["started (UTC)"]
    )
    by_text = {c.text: c for c in claims.CLAIMS}
    earlier: dict[str, list[float]] = collections.defaultdict(list)
    plain: dict[str, list[str]] = collections.defaultdict(list)
    learnt: dict[str, list[str]] = collections.defaultdict(list)
    for doc in docs:
        for row in doc["claims"]:
            claim, value = by_text[row["claim"]], row["measured"]
            plain[claim.text].append(row["verdict"])
            measured = isinstance(value, int | float) and math.isfinite(value) and value > 0
            if not measured or claim.judge is None:
                learnt[claim.text].append(row["verdict"])
                continue
            low, high = row["ci_low"], row["ci_high"]
            if len(earlier[claim.text]) > MIN_RUNS and not claim.exact:
                sd = changepoint.run_spread(earlier[claim.text])
                low, high = claims.with_run_noise(value, low, high, sd)
            learnt[claim.text].append(claims.judge(claim, value, low, high))
            earlier[claim.text].append(value)

    def flips(table: dict[str, list[str]]) -> tuple[int, int]:
        pairs = [(a, b) for v in table.values() for a, b in itertools.pairwise(v[4:])]
        return sum({a, b} == FLIP for a, b in pairs), len(pairs)

    print(
        json.dumps(
            {"reports": len(docs), "as_judged": flips(plain), "with_run_noise": flips(learnt)}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
