"""HDR histograms for the load generator: every latency recorded at once from a NumPy array
(vectorised: a Python call per value would cost the generator more than the request), and
histograms from separate processes merged losslessly (their counts added bucket by bucket)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["HIGHEST", "encode", "merge", "new", "record"]

HIGHEST = 3_600 * 10**9  # one hour in ns: the largest value recorded
DIGITS = 3


def new() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST, DIGITS)


def record(hist: HdrHistogram, values: np.ndarray) -> HdrHistogram:
    """Add every value of ``values`` (ns; clipped to 1 … HIGHEST) to ``hist``, as
    ``record_value`` would one by one."""
    v = np.clip(np.asarray(values, dtype=np.int64), 1, HIGHEST)
    if v.size == 0:
        return hist
    # the counts index of hdrh's _counts_index_for, for a whole array
    masked = v | hist.sub_bucket_mask
    pow2ceiling = np.frexp(masked.astype(np.float64))[1].astype(np.int64)  # bit length
    bucket = pow2ceiling - hist.unit_magnitude - (hist.sub_bucket_half_count_magnitude + 1)
    sub = v >> (bucket + hist.unit_magnitude)
    base = (bucket + 1) << hist.sub_bucket_half_count_magnitude
    index = base + sub - hist.sub_bucket_half_count
    found, counts = np.unique(index, return_counts=True)
    for i, n in zip(found.tolist(), counts.tolist(), strict=True):
        hist.counts[i] += n
    hist.total_count += int(v.size)
    hist.min_value = min(hist.min_value, int(v.min())) if hist.min_value else int(v.min())
    hist.max_value = max(hist.max_value, int(v.max()))
    return hist


def encode(values: np.ndarray) -> str:
    """The values (ns) as an encoded histogram (text)."""
    return record(new(), values).encode().decode("ascii")


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every count of the encoded ones (an empty one if none)."""
    out = new()
    for text in encoded:
        out.add(HdrHistogram.decode(text.encode("ascii")))
    return out
