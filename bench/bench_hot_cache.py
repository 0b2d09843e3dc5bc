"""switch_flow vs. the share of lookups that repeat the previous id (fresh ids), for the dict
class, the dict class with the analysis' last-used hot cache, and flowreg (whose switch_flow
has a hot slot). The analysis claims latency halves above a 50% hit ratio: compare dict+hot
with dict in each group."""

from __future__ import annotations

import pytest

from flowreg.benchmark.cases import fresh_copies, hot_sequence
from flowreg.benchmark.suites import HOT_DESIGNS

HIT_RATIOS = (0.0, 0.5, 0.9, 0.99)
_sequences: dict[tuple[int, float], list[int]] = {}


@pytest.mark.parametrize("impl", HOT_DESIGNS)
@pytest.mark.parametrize("hit_ratio", HIT_RATIOS, ids=lambda r: f"hit={r:.0%}")
def test_switch(lookup_bench, context, impl, hit_ratio, n):
    if (n, hit_ratio) not in _sequences:
        population = context.population(n)
        sequence = hot_sequence(population.ids, context.profile.pool_size(n), hit_ratio, population.rng)
        _sequences[n, hit_ratio] = fresh_copies(sequence)
    keys = _sequences[n, hit_ratio]
    lookup_bench(impl, "switch", n, "fresh", keys=keys, group=f"switch n={n} hit={hit_ratio:.0%}")
