"""Batch lookups: get_many / contains_many on an int64 buffer vs. Python loops over a dict,
on 1 thread and on N threads at once (--threads).

A row's median_ns is wall-clock time per id looked up; N threads, each with a buffer of its
own, share N times the calls of one thread, so ratio_to_1_thread < 1 means the threads ran in
parallel (1/ratio is the throughput gain; under the GIL, Python-level loops cannot gain).
"""

from __future__ import annotations

import dataclasses
import hashlib
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
#: References for N threads, timed in the same runs as contains_many: hashing the same buffers,
#: C code that runs without the GIL and shares nothing. A shared VM's vCPUs do not always run
#: at the same speed, and two of them may at times be two hyperthreads of one core. sha256 (the
#: CPU's SHA instructions: a chain of dependent steps) loses little when they are; blake2b (many
#: independent integer operations per cycle) loses about as much as a contains_many whose
#: table sits in cache. Their scales show what kind of moments the runs had.
REFERENCES = {"sha256": hashlib.sha256, "blake2b": hashlib.blake2b}


def _single_runner(loop: LookupLoop, buffers: list[array[int]]) -> Runner:
    """One thread over every thread's buffer in turn: the same ids, so the same cache footprint,
    as N threads (at 1M ids a buffer's lines fit in L3, N buffers' may not)."""

    def run(amount: int) -> list[Phase]:
        return [(loop(buffers, amount), amount * len(buffers) * len(buffers[0]))]

    return run


def _threaded_runner(loop: LookupLoop, buffers: list[array[int]]) -> Runner:
    """Thread i looks up buffers[i]: ids of its own, as threads serving their own requests would
    (on one shared buffer, each thread would find what the others' cache misses brought in)."""
    threads = len(buffers)

    def run(amount: int) -> list[Phase]:
        # The threads share threads * amount calls, each taking the next until none is left: a
        # thread on a faster (v)CPU does more of them, so the wall time gives the threads'
        # combined throughput rather than the slowest thread's time for an equal share.
        tickets = iter(range(amount * threads))
        lock = threading.Lock()
        # threads start before the clock does; the barrier releases them together
        barrier = threading.Barrier(threads + 1)

        failures: list[BaseException] = []

        def work(buffer: array[int]) -> None:
            one = [buffer]
            barrier.wait()
            try:
                while True:
                    with lock:
                        if next(tickets, None) is None:
                            return
                    loop(one, 1)
            except BaseException as exc:  # the caller raises it: a failed design, not a fast one
                failures.append(exc)

        workers = [
            threading.Thread(target=work, args=(buffer,), name=f"flowreg-bench-{i}")
            for i, buffer in enumerate(buffers)
        ]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = perf_counter_ns()
        for worker in workers:
            worker.join()
        elapsed = perf_counter_ns() - start
        if failures:
            raise failures[0]
        return [(elapsed, amount * threads * len(buffers[0]))]

    return run


def _runner(loop: LookupLoop, buffers: list[array[int]], threads: int) -> Runner:
    return _single_runner(loop, buffers) if threads == 1 else _threaded_runner(loop, buffers[:threads])


def _batch_step(ctx: Context, op: str, n: int, designs: list[Design]) -> Step:
    thread_counts = sorted({1, ctx.selection.threads})
    label = f"batch: {op} n={n:,} ids={ctx.profile.batch_ids:,} threads={'/'.join(map(str, thread_counts))}"

    def run() -> list[Row]:
        population = ctx.population(n)
        buffers = [
            array("q", population.rng.choices(population.ids, k=ctx.profile.batch_ids))
            for _ in range(thread_counts[-1])
        ]
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
                runner = _runner(loop, buffers, threads)
                subjects.append(
                    Subject(f"{design.impl}@{threads}", design.impl, runner, references, {"threads": threads})
                )
        if subjects and op == "contains_many" and len(thread_counts) > 1:
            subjects += _reference_subjects(buffers, thread_counts)
        if subjects:
            settings = ctx.profile.settings
            settings = dataclasses.replace(settings, target_ns=max(settings.target_ns, MIN_RUN_NS))
            rows += measure(Trial("batch", (op,), n, "buffer", subjects), settings)
        return rows

    return Step(label, run)


def _reference_subjects(buffers: list[array[int]], thread_counts: list[int]) -> list[Subject]:
    subjects = []
    for name, hash_function in REFERENCES.items():
        loop = compile_lookup_loop("hash_function(k)", {"hash_function": hash_function})
        for threads in thread_counts:
            references = {"ratio_to_1_thread": f"{name}@1"} if threads > 1 else {}
            runner = _runner(loop, buffers, threads)
            subjects.append(Subject(f"{name}@{threads}", name, runner, references, {"threads": threads}))
    return subjects


def _with_threads(row: Row, threads: int) -> Row:
    row.threads = threads
    return row


def batch_steps(ctx: Context) -> list[Step]:
    designs = [d for d in ctx.designs(BATCH_DESIGNS) if all(op in d.statements for op in BATCH_OPS)]
    return [
        _batch_step(ctx, op, n, designs) for n in ctx.selection.sizes for op in BATCH_OPS if ctx.wants_op(op)
    ]
