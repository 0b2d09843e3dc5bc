"""Memory, as tracemalloc sees it.

- Bytes per entry of the structure, values excluded (every value is None): a dict with its int
  key objects vs. flowreg's registries, each grown by inserting one id at a time from an int64
  buffer (the ints made on the way count only if the structure keeps them).
- Bytes per Flow object (4 fields, shared field values, so only the instance counts) for the
  analysis' advice: plain class, __slots__, dataclass(slots=True), NamedTuple, tuple.
"""

from __future__ import annotations

import tracemalloc
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NamedTuple

from .cases import Design, registry_class
from .context import Context, Step
from .harness import gc_paused
from .results import Row, skipped

STRUCTURE_DESIGNS = ("dict", "py", "c")


def traced_bytes(build: Callable[[], Any]) -> tuple[int, Any]:
    """(bytes still allocated after build() returned, its result), per tracemalloc."""
    # Only blocks allocated while tracing count, so earlier garbage needs no collection (a full
    # collection costs seconds once the timed suites hold millions of objects); the builds make
    # no cycles, and pausing gc keeps a collection from running inside the traced region.
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        with gc_paused():
            before = tracemalloc.get_traced_memory()[0]
            result = build()
            return tracemalloc.get_traced_memory()[0] - before, result
    finally:
        if not was_tracing:
            tracemalloc.stop()


def structure_builder(impl: str, ids: array[int]) -> Callable[[], Any]:
    if impl == "dict":
        return lambda: dict.fromkeys(ids)
    cls = registry_class(impl)
    return lambda: cls(zip(ids, repeat(None)))


def _structure_step(ctx: Context, n: int, designs: list[Design]) -> Step:
    def run() -> list[Row]:
        ids = array("q", ctx.population(n).ids)
        rows: list[Row] = []
        for design in designs:
            reason = ctx.skip_reason(design, n)
            if reason:
                rows.append(skipped("memory", "structure", n, None, design.impl, reason))
                continue
            used, structure = traced_bytes(structure_builder(design.impl, ids))
            del structure
            rows.append(Row("memory", "structure", n, None, design.impl, runs=1, bytes_per_entry=used / n))
        dict_bytes = next((r.bytes_per_entry for r in rows if r.impl == "dict"), None)
        for row in rows:
            if dict_bytes and row.bytes_per_entry is not None:
                row.ratio_to_dict = row.bytes_per_entry / dict_bytes
        return rows

    return Step(f"memory: bytes per entry n={n:,}", run)


# --- Flow object variants (4 fields each) ----------------------------------------------------


class PlainFlow:
    def __init__(self, flow_id: int, user_id: int, state: Any, payload: Any) -> None:
        self.flow_id = flow_id
        self.user_id = user_id
        self.state = state
        self.payload = payload


class SlotsFlow:
    __slots__ = ("flow_id", "payload", "state", "user_id")

    def __init__(self, flow_id: int, user_id: int, state: Any, payload: Any) -> None:
        self.flow_id = flow_id
        self.user_id = user_id
        self.state = state
        self.payload = payload


@dataclass(slots=True)
class DataclassSlotsFlow:
    flow_id: int
    user_id: int
    state: Any
    payload: Any


class NamedTupleFlow(NamedTuple):
    flow_id: int
    user_id: int
    state: Any
    payload: Any


def _plain_with_dict(*fields: Any) -> PlainFlow:
    flow = PlainFlow(*fields)
    flow.__dict__  # noqa: B018  # code that touches vars(flow) or __dict__ materialises it
    return flow


FLOW_VARIANTS: dict[str, Callable[..., object]] = {
    "plain class": PlainFlow,
    "plain class, __dict__ used": _plain_with_dict,
    "__slots__": SlotsFlow,
    "dataclass(slots=True)": DataclassSlotsFlow,
    "NamedTuple": NamedTupleFlow,
    "tuple": lambda *fields: fields,
}


def flow_object_bytes(make: Callable[..., object], count: int) -> float:
    """Bytes per instance: the holding list is allocated before tracing, fields are shared.

    Measured as the difference between making 2 * count and count instances, each time with
    the free lists full (an untraced round first fills them), so that what does not grow with
    the count cancels out: a class's first-use caches, and the instances that come from a free
    list (tuples: up to 2,000 of them, which tracemalloc never sees).
    """
    fields = (12345, 678, None, None)

    def traced(how_many: int) -> int:
        holder: list[object] = [None] * how_many  # allocated before tracing starts

        def fill() -> None:
            for i in range(how_many):
                holder[i] = make(*fields)

        return traced_bytes(fill)[0]  # the instances go when holder does: free lists refill

    warm_up = [make(*fields) for _ in range(2 * count)]
    del warm_up
    one = traced(count)
    two = traced(2 * count)
    return (two - one) / count


def _flow_object_step(ctx: Context) -> Step:
    count = ctx.profile.flow_objects

    def run() -> list[Row]:
        rows = []
        for name, make in FLOW_VARIANTS.items():
            rows.append(
                Row(
                    "memory",
                    "flow object",
                    count,
                    None,
                    name,
                    runs=1,
                    bytes_per_entry=flow_object_bytes(make, count),
                )
            )
        return rows

    return Step(f"memory: bytes per Flow object ({count:,} of each)", run)


def memory_steps(ctx: Context) -> list[Step]:
    designs = ctx.designs(STRUCTURE_DESIGNS)
    sizes = ctx.selection.memory_sizes or ctx.profile.memory_sizes
    return [*(_structure_step(ctx, n, designs) for n in sizes), _flow_object_step(ctx)]
