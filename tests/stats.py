"""Comparing two samples of timings: a paired ratio of medians and the Mann–Whitney U test.

Used by the sign-in timing test and by `make bench`, where the same comparison runs at the
production bcrypt cost.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def paired_median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """The median of a[i] / b[i]: for samples taken in adjacent pairs, so that a slow stretch
    of the machine (another process, a busy disk) slows both halves of a pair and cancels out."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann–Whitney U test (normal approximation with tie correction).

    Small p: one sample tends to be larger than the other. Sound for samples of about 20 and
    more each, which is what the callers take.
    """
    n1, n2 = len(a), len(b)
    ranked = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    ranks = [0.0] * len(ranked)
    ties = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1  # the average rank of a run of ties
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    rank_sum = sum(rank for rank, (_, group) in zip(ranks, ranked, strict=True) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance == 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)  # with continuity correction
    return math.erfc(max(z, 0.0) / math.sqrt(2))
