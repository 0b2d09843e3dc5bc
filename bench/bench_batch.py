"""Batch lookups on an int64 buffer of 100,000 ids (the core's targets: get_many at most 0.25x
``[d[x] for x in ids]``, contains_many at most 0.12x ``[x in d for x in ids]``), on one thread
and on two at once (the concurrency issue's target: two threads reach 1.8x one thread's
throughput). Every round looks up the same two buffers of ids, on one thread or one buffer per
thread, so the rounds' times compare directly."""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable
from functools import partial

import pytest

from flowreg.benchmark.cases import ALL_DESIGNS, Population
from flowreg.benchmark.harness import compile_lookup_loop, gc_paused

BATCH_IDS = 100_000
DESIGNS = ("dict", "py", "c")


_BUFFERS: dict[int, list[array[int]]] = {}


def _buffers(population: Population) -> list[array[int]]:
    """The two buffers of every test at population's n: every design looks up the same ids.

    Each thread its own ids (on a shared buffer one finds what the other's misses fetched); one
    thread looks up both, so that its cache footprint is the same."""
    if population.n not in _BUFFERS:
        _BUFFERS[population.n] = [
            array("q", population.rng.choices(population.ids, k=BATCH_IDS)) for _ in range(2)
        ]
    return _BUFFERS[population.n]


class Crew:
    """Threads started once, thread i running works[i] on each call (no thread start timed)."""

    def __init__(self, works: list[Callable[[], object]]) -> None:
        self.go = threading.Barrier(len(works) + 1)
        self.done = threading.Barrier(len(works) + 1)
        self.running = True
        self.threads = [threading.Thread(target=self._loop, args=(work,), daemon=True) for work in works]
        for thread in self.threads:
            thread.start()

    def _loop(self, work: Callable[[], object]) -> None:
        while True:
            self.go.wait()
            if not self.running:
                return
            work()
            self.done.wait()

    def __call__(self) -> None:
        self.go.wait()
        self.done.wait()

    def close(self) -> None:
        self.running = False
        self.go.wait()
        for thread in self.threads:
            thread.join()


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("threads", [1, 2], ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("impl", DESIGNS)
@pytest.mark.parametrize("op", ["get_many", "contains_many"])
def test_batch(benchmark, context, op, impl, threads, n):
    design = ALL_DESIGNS[impl]
    reason = context.skip_reason(design, n)
    if reason:
        pytest.skip(reason)
    population = context.population(n)
    buffers = _buffers(population)
    loop = compile_lookup_loop(design.statements[op], population.names(design))
    benchmark.group = f"{op} n={n} threads={threads}"
    benchmark.extra_info.update(impl=impl, op=op, n=n, threads=threads, ops=BATCH_IDS * len(buffers))
    with gc_paused():
        if threads == 1:
            benchmark(loop, buffers, 1)
            return
        crew = Crew([partial(loop, [buffer], 1) for buffer in buffers])
        try:
            benchmark(crew)
        finally:
            crew.close()
