"""Batch lookups: get_many / contains_many on an int64 buffer vs. Python loops over a dict,
on 1 thread and on N threads at once (--threads).

A row's median_ns is wall-clock time per id looked up; with N threads, N buffers are looked up
in that wall time, so ratio_to_1_thread < 1 means the threads ran in parallel (1/ratio is the
throughput gain; under the GIL, Python-level loops cannot gain).
"""

from __future__ import annotations

import dataclasses
import threading
from array import array
from time import perf_counter_ns

from .cases import Design
from .context import Context, Step
from .harness import LookupLoop, Phase, Runner, Subject, Trial, compile_lookup_loop, measure
from .results import Row, skipped

BATCH_DESIGNS = ("dict", "py", "c")
# Starting, releasing and joining threads, and handing the GIL over, cost tens of microseconds
# on a busy machine: runs this long keep that noise out of the thread rows.
MIN_RUN_NS = 40_000_000
BATCH_OPS = ("get_many", "contains_many")


def _single_runner(loop: LookupLoop, buffer: array[int]) -> Runner:
    one = [buffer]

    def run(amount: int) -> list[Phase]:
        return [(loop(one, amount), amount * len(buffer))]

    return run


def _threaded_runner(loop: LookupLoop, buffer: array[int], threads: int) -> Runner:
    one = [buffer]

    def run(amount: int) -> list[Phase]:
        # threads start before the clock does; the barrier releases them together
        barrier = threading.Barrier(threads + 1)

        def work() -> None:
            barrier.wait()
            loop(one, amount)

        workers = [threading.Thread(target=work, name=f"flowreg-bench-{i}") for i in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = perf_counter_ns()
        for worker in workers:
            worker.join()
        return [(perf_counter_ns() - start, amount * len(buffer) * threads)]

    return run


def _batch_step(ctx: Context, op: str, n: int, designs: list[Design]) -> Step:
    thread_counts = sorted({1, ctx.selection.threads})
    label = f"batch: {op} n={n:,} ids={ctx.profile.batch_ids:,} threads={'/'.join(map(str, thread_counts))}"

    def run() -> list[Row]:
        population = ctx.population(n)
        buffer = array("q", population.rng.choices(population.ids, k=ctx.profile.batch_ids))
        rows: list[Row] = []
        subjects = []
        for design in designs:
            names, reason = ctx.prepare(design, n)
            if reason:
                rows += [
                    _with_threads(skipped("batch", op, n, "buffer", design.impl, reason), t)
                    for t in thread_counts
                ]
                continue
            loop = compile_lookup_loop(design.statements[op], names)
            threaded = ctx.profile.threaded_impls
            for threads in thread_counts:
                if threads > 1 and threaded is not None and design.impl not in threaded:
                    continue
                references = {"ratio_to_dict": f"dict@{threads}"}
                if threads > 1:
                    references["ratio_to_1_thread"] = f"{design.impl}@1"
                runner = (
                    _single_runner(loop, buffer) if threads == 1 else _threaded_runner(loop, buffer, threads)
                )
                subjects.append(
                    Subject(f"{design.impl}@{threads}", design.impl, runner, references, {"threads": threads})
                )
        if subjects:
            settings = ctx.profile.settings
            settings = dataclasses.replace(settings, target_ns=max(settings.target_ns, MIN_RUN_NS))
            rows += measure(Trial("batch", (op,), n, "buffer", subjects), settings)
        return rows

    return Step(label, run)


def _with_threads(row: Row, threads: int) -> Row:
    row.threads = threads
    return row


def batch_steps(ctx: Context) -> list[Step]:
    designs = [d for d in ctx.designs(BATCH_DESIGNS) if all(op in d.statements for op in BATCH_OPS)]
    return [
        _batch_step(ctx, op, n, designs) for n in ctx.selection.sizes for op in BATCH_OPS if ctx.wants_op(op)
    ]
