"""Thread-safety cost (the concurrency issue's targets): reads through the dict class behind
threading.Lock / RLock / readerwriterlock / fasteners read locks vs. flowreg's own locked reads
(target: native switch_flow at most 0.15x the Lock wrapper), uncontended, at the size nearest
1,000 among --bench-sizes; and how long a writer waits behind 8 readers."""

from __future__ import annotations

import threading
import time
from array import array

import pytest

import flowreg
from flowreg.benchmark.suites import LOCK_SUITE_DESIGNS, lock_size

READERS = 8


@pytest.fixture(scope="module")
def lock_n(context):
    return lock_size(context.selection.sizes)


@pytest.mark.parametrize("impl", LOCK_SUITE_DESIGNS)
@pytest.mark.parametrize("op", ["switch", "get"])
def test_uncontended(lookup_bench, impl, op, lock_n):
    lookup_bench(impl, op, lock_n, "fresh", group=f"locks {op} n={lock_n} ids=fresh")


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("impl", ["py", "c"])
def test_writer_behind_readers(benchmark, context, impl, lock_n):
    """The time of one insert while 8 threads loop over contains_many (held under the read lock);
    the median is the typical wait of a writer behind a stream of readers."""
    if impl not in flowreg.implementations():
        pytest.skip(f"{impl} not importable here")
    population = context.population(lock_n)
    reg = flowreg.implementations()[impl].FlowRegistry(population.flows)
    buffer = array("q", population.rng.choices(population.ids, k=100_000))
    stop = threading.Event()
    started = threading.Barrier(READERS + 1)

    def read() -> None:
        started.wait()
        while not stop.is_set():
            reg.contains_many(buffer)

    readers = [threading.Thread(target=read, daemon=True) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    started.wait()
    new_id = max(population.ids) + 1
    benchmark.group = f"writer behind {READERS} readers n={lock_n}"
    benchmark.extra_info.update(impl=impl, readers=READERS)

    def setup() -> None:
        reg.pop(new_id, None)
        # let go of the GIL a moment, so that readers are inside contains_many (under the read
        # lock, without the GIL) when the timed insert asks for the write lock
        time.sleep(0.001)

    try:
        benchmark.pedantic(reg.__setitem__, args=(new_id, None), setup=setup, rounds=30)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
