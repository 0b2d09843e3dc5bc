"""Memory as tracemalloc sees it (recorded in extra_info; the timed part is building).

- bytes per entry, values excluded: dict with its int key objects vs. flowreg (core target: at
  most 26 bytes per entry at 1M entries, where a dict takes ~77);
- bytes per Flow object with 4 fields: plain class, __slots__, dataclass(slots=True),
  NamedTuple, tuple (the analysis' __slots__ advice).
"""

from __future__ import annotations

from array import array

import pytest

from flowreg.benchmark.cases import ALL_DESIGNS
from flowreg.benchmark.memory import (
    FLOW_VARIANTS,
    STRUCTURE_DESIGNS,
    flow_object_bytes,
    structure_builder,
    traced_bytes,
)

FLOW_OBJECTS = 100_000


@pytest.mark.parametrize("impl", STRUCTURE_DESIGNS)
def test_structure(benchmark, context, impl, n):
    reason = context.skip_reason(ALL_DESIGNS[impl], n)
    if reason:
        pytest.skip(reason)
    build = structure_builder(impl, array("q", context.population(n).ids))
    used, structure = traced_bytes(build)
    del structure
    benchmark.group = f"memory: build n={n}"
    benchmark.extra_info.update(impl=impl, n=n, bytes_per_entry=round(used / n, 2))
    benchmark.pedantic(build, rounds=3)


@pytest.mark.parametrize("variant", FLOW_VARIANTS)
def test_flow_object(benchmark, variant):
    make = FLOW_VARIANTS[variant]
    benchmark.group = "memory: Flow object"
    benchmark.extra_info.update(variant=variant, bytes=round(flow_object_bytes(make, FLOW_OBJECTS), 2))
    benchmark(make, 12345, 678, None, None)
