"""PairFlowRegistry, ids (user_id, session_id), vs. a dict keyed by the same tuples (core target:
lookups at most 0.8x the dict's), ids "same" (the stored tuples) and "fresh" (new tuples of new
ints, as parsed from a request)."""

from __future__ import annotations

import random

import pytest

import flowreg
from flowreg.benchmark.cases import DictFlowRegistry, Flow, make_ids
from flowreg.benchmark.harness import compile_lookup_loop, gc_paused

DESIGNS = ("dict", "py", "c")
STATEMENTS = {
    "get": {"dict": "d[k]", "py": "s[k]", "c": "s[k]"},
    "switch": {"dict": "s.switch_flow(k)", "py": "s.switch_flow(k)", "c": "s.switch_flow(k)"},
    "contains": {"dict": "k in d", "py": "k in s", "c": "k in s"},
}
_pairs: dict[int, tuple[dict[tuple[int, int], Flow], dict[str, list[tuple[int, int]]]]] = {}


def pairs(n: int) -> tuple[dict[tuple[int, int], Flow], dict[str, list[tuple[int, int]]]]:
    """n flows under random (user_id, session_id) ids, and lookups of them, same and fresh."""
    if n not in _pairs:
        rng = random.Random(n)
        keys = list(zip(make_ids(n, rng), make_ids(n, rng), strict=True))
        flows = {k: Flow(k[0]) for k in keys}
        same = rng.choices(keys, k=min(1 << 18, max(4096, 4 * n)))
        fresh = [(int(str(a)), int(str(b))) for a, b in same]
        _pairs[n] = flows, {"same": same, "fresh": fresh}
    return _pairs[n]


@pytest.mark.parametrize("impl", DESIGNS)
@pytest.mark.parametrize("op", list(STATEMENTS))
def test_pair_lookup(benchmark, impl, op, n, ids):
    flows, lookups = pairs(n)
    if impl == "dict":
        names = {"s": DictFlowRegistry(flows), "d": flows}
    elif impl in flowreg.implementations():
        names = {"s": flowreg.implementations()[impl].PairFlowRegistry(flows, capacity=n)}
    else:
        pytest.skip(f"{impl} not importable here")
    loop = compile_lookup_loop(STATEMENTS[op][impl], names)
    keys = lookups[ids]
    benchmark.group = f"pairs {op} n={n} ids={ids}"
    benchmark.extra_info.update(impl=impl, op=op, n=n, ids=ids, ops=len(keys))
    with gc_paused():
        benchmark(loop, keys, 1)
