"""L3 table size under a TTL workload (issue 24's target: rows ≤ 2x the live keys).

100 rounds of ``set_many`` of 1,000 new keys with TTL 1 s, 0.3 s apart (100,000 sets over
30 s), through a TieredCache on the lab's PostgreSQL (or ``--url``); prints the rows in the
table, the live ones, and what the lazy purge deleted.

    .venv/bin/python benchmarks/l3_expiry.py [--url postgresql://...] [--rounds 100]
"""

from __future__ import annotations

import argparse
import time
import uuid

from perflab.cache import DatabaseTier, MemoryTier, TieredCache

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--purge-every", type=int, default=1000)
    args = parser.parse_args()
    tier = DatabaseTier(
        args.url, table=f"expiry_{uuid.uuid4().hex[:8]}", purge_every=args.purge_every
    )
    cache = TieredCache([MemoryTier(10_000), tier], coherence=False)
    try:
        peak = 0
        for r in range(args.rounds):
            started = time.time()
            cache.set_many({f"r{r}:{i}": i for i in range(1000)}, ttl=1.0)
            if r % 10 == 9:
                peak = max(peak, tier.size()[0])
            time.sleep(max(0.0, 0.3 - (time.time() - started)))
        rows = tier.size()[0]
        with tier.engine.connect() as conn:
            live = conn.execute(
                tier.table.select().where(tier.table.c.expires_at > time.time())
            ).rowcount
        print(
            {
                "sets": 1000 * args.rounds,
                "rows": rows,
                "peak_rows_sampled": peak,
                "live": live,
                "rows_per_live": round(rows / max(live, 1), 2),
                "purged": tier.purged,
            }
        )
    finally:
        cache.close()
        tier.drop()
        tier.close()
