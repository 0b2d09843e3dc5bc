"""The original table and the core's targets: switch_flow / [] / create / delete / insert / del
for list, dict, dict + hot cache, flowreg py and c, at each --bench-sizes, ids "same" (the stored
int objects) and "fresh" (equal ints parsed anew, as from a request).

Core targets (the core issue, compare within a group): native ``reg[k]`` at most 0.9x ``d[k]``
(0.75x with fresh ids), ``switch_flow`` at most 0.6x the dict class (the pure-Python one at most
1.1x), insert and delete at most 1.0x dict's.
"""

from __future__ import annotations

import pytest

from flowreg.benchmark.suites import MUTATION_PAIRS, ORIGINAL_DESIGNS


@pytest.mark.parametrize("impl", ORIGINAL_DESIGNS)
@pytest.mark.parametrize("op", ["switch", "get"])
def test_lookup(lookup_bench, impl, op, n, ids):
    lookup_bench(impl, op, n, ids)


@pytest.mark.parametrize("impl", ORIGINAL_DESIGNS)
@pytest.mark.parametrize(("pair", "timed"), [(pair, op) for pair in MUTATION_PAIRS for op in pair])
def test_mutation(mutation_bench, impl, pair, timed, n, ids):
    if timed == pair[1] and ids == "fresh":
        pytest.skip("creating stores ids: same/fresh matters to lookups and deletes only")
    mutation_bench(impl, pair, timed, n, ids)
