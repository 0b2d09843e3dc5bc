"""The timed suites over single ids: the original table, the hot cache, locks and peers.

Every step builds one Trial (the designs compared on one workload) and measures it with the
harness; a design that cannot run (not installed, or the list design past LIST_MAX_N) gets a
row saying why instead of disappearing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from .cases import (
    LOCK_DESIGNS,
    PEER_DESIGNS,
    TIMED_PHASES,
    Design,
    MutationBatches,
    fresh_copies,
    hot_sequence,
    mutation_phases,
)
from .context import Context, Step
from .harness import (
    KeyCursor,
    Phase,
    PhasedLoop,
    Runner,
    Subject,
    Trial,
    compile_lookup_loop,
    compile_phased_loop,
    lookup_runner,
    measure,
)
from .results import Row, skipped

ORIGINAL_DESIGNS = ("list", "dict", "dict+hot", "py", "c")
HOT_DESIGNS = ("dict", "dict+hot", "py", "c")
LOCK_SUITE_DESIGNS = ("dict", *LOCK_DESIGNS, "py", "c")
PEER_SUITE_DESIGNS = ("dict", "py", "c", *PEER_DESIGNS)
ID_KINDS = ("same", "fresh")
# delete/create are timed as a pair (delete a batch, create it again), so are delitem/setitem
MUTATION_PAIRS = (("delete", "create"), ("delitem", "setitem"))


def _lookup_step(
    ctx: Context,
    suite: str,
    op: str,
    n: int,
    ids: str,
    designs: Sequence[Design],
    pool: Callable[[], Sequence[object]],
    fields: dict[str, Any] | None = None,
    references: dict[str, str] | None = None,
) -> Step:
    label = f"{suite}: {op} n={n:,} ids={ids}" + "".join(f" {k}={v}" for k, v in (fields or {}).items())

    def run() -> list[Row]:
        keys = pool()
        rows: list[Row] = []
        chosen = []
        for design in designs:
            if op not in design.statements:
                continue  # not an operation of that design (a list has no [] by id)
            names, reason = ctx.prepare(design, n)
            if reason:
                row = skipped(suite, op, n, ids, design.impl, reason)
                for name, value in (fields or {}).items():
                    setattr(row, name, value)
                rows.append(row)
            else:
                chosen.append((design, names))
        subjects = []
        for i, (design, names) in enumerate(chosen):
            loop = compile_lookup_loop(design.statements[op], names)
            # each subject its own walk through the pool: none runs on keys another just warmed
            cursor = KeyCursor(keys, seed=ctx.selection.seed * 1_000 + i)
            runner = lookup_runner(loop, cursor)
            subjects.append(
                Subject(design.impl, design.impl, runner, references or {"ratio_to_dict": "dict"})
            )
        if subjects:
            overhead = lookup_runner(compile_lookup_loop("pass", {}), KeyCursor(keys))
            trial = Trial(suite, (op,), n, ids, subjects, overhead, fields=fields or {})
            rows += measure(trial, ctx.profile.settings)
        return rows

    return Step(label, run)


def _phased_runner(loop: PhasedLoop, batches: MutationBatches) -> Runner:
    def run(amount: int) -> list[Phase]:
        totals = loop(batches.take(amount))[:TIMED_PHASES]  # the rest puts the structure back
        return [(ns, amount * batches.size) for ns in totals]

    return run


def _mutation_step(
    ctx: Context, suite: str, pair: tuple[str, str], n: int, ids: str, designs: Sequence[Design]
) -> Step:
    """Time deleting a batch of stored ids, then creating as many new ids (untimed, the structure
    is restored after every pass; at large n each pass takes other ids, so both phases meet cold
    memory)."""
    delete_op, create_op = pair
    # the create is the same whatever ids were used to delete: report it once
    report = {delete_op, create_op} if ids == "same" else {delete_op}
    report = {op for op in report if ctx.wants_op(op)}
    label = f"{suite}: {'/'.join(sorted(report))} n={n:,} ids={ids}"

    def run() -> list[Row]:
        rows: list[Row] = []
        chosen = []
        for design in designs:
            if delete_op not in design.statements or create_op not in design.statements:
                continue
            names, reason = ctx.prepare(design, n)
            if reason:
                rows += [skipped(suite, op, n, ids, design.impl, reason) for op in sorted(report)]
            else:
                chosen.append((design, names))
        subjects = []
        for design, names in chosen:
            phases = mutation_phases(design.statements[delete_op], design.statements[create_op])
            loop = compile_phased_loop(phases, names)
            batches = ctx.mutation_batches(n, ids)  # each subject its own random ids
            subjects.append(Subject(design.impl, design.impl, _phased_runner(loop, batches)))
        if subjects:
            empty = compile_phased_loop(mutation_phases("pass", "pass"), {})
            # the empty loop walks batches drawn as the subjects' are: the same memory traffic
            overhead = _phased_runner(empty, ctx.mutation_batches(n, ids))
            trial = Trial(suite, pair, n, ids, subjects, overhead, report_ops=frozenset(report))
            rows += measure(trial, ctx.profile.settings)
        return rows

    return Step(label, run)


def original_steps(ctx: Context) -> list[Step]:
    """The analysis' table (switch/delete/create) for list, dict, dict+hot, flowreg py and c,
    plus get ([] on the structure) and dict-style setitem/delitem, ids "same" and "fresh"."""
    designs = ctx.designs(ORIGINAL_DESIGNS)
    steps = []
    for n in ctx.selection.sizes:
        for op in ("switch", "get"):
            if ctx.wants_op(op):
                steps += [
                    _lookup_step(ctx, "original", op, n, ids, designs, partial(ctx.pool, n, ids))
                    for ids in ID_KINDS
                ]
        for pair in MUTATION_PAIRS:
            for ids in ID_KINDS:
                wanted = [op for op in pair if ctx.wants_op(op) and (ids == "same" or op == pair[0])]
                if wanted:
                    steps.append(_mutation_step(ctx, "original", pair, n, ids, designs))
    return steps


def hot_cache_steps(ctx: Context) -> list[Step]:
    """switch cost vs. the fraction of lookups that repeat the previous id (fresh id objects)."""
    if not ctx.wants_op("switch"):
        return []
    designs = ctx.designs(HOT_DESIGNS)
    steps = []
    for n in ctx.selection.sizes:
        for ratio in ctx.profile.hit_ratios:

            def pool(n: int = n, ratio: float = ratio) -> list[int]:
                population = ctx.population(n)
                sequence = hot_sequence(population.ids, ctx.profile.pool_size(n), ratio, population.rng)
                return fresh_copies(sequence)

            steps.append(
                _lookup_step(ctx, "hot-cache", "switch", n, "fresh", designs, pool, {"hit_ratio": ratio})
            )
    return steps


def lock_size(sizes: Sequence[int]) -> int:
    """Locks cost the same at any size: measure them at the size nearest to 1,000."""
    return min(sizes, key=lambda n: abs(n - 1000))


def lock_steps(ctx: Context) -> list[Step]:
    """Uncontended read cost of the thread-safe options (fresh ids)."""
    n = lock_size(ctx.selection.sizes)
    designs = ctx.designs(LOCK_SUITE_DESIGNS)
    references = {"ratio_to_dict": "dict", "ratio_to_lock": "dict+lock"}
    return [
        _lookup_step(
            ctx, "locks", op, n, "fresh", designs, lambda: ctx.pool(n, "fresh"), references=references
        )
        for op in ("switch", "get")
        if ctx.wants_op(op)
    ]


def peer_steps(ctx: Context) -> list[Step]:
    """x[k] on other int-keyed maps, when installed (fresh ids)."""
    if not ctx.wants_op("get"):
        return []
    designs = ctx.designs(PEER_SUITE_DESIGNS)
    steps = []
    for n in ctx.selection.sizes:
        peers = [d for d in designs if d.impl in PEER_DESIGNS]
        reasons = [ctx.skip_reason(d, n) for d in peers]
        if all(reasons):  # dict and flowreg alone: the original suite has those rows
            rows = [
                skipped("peers", "get", n, "fresh", d.impl, str(r))
                for d, r in zip(peers, reasons, strict=True)
            ]
            steps.append(Step(f"peers: get n={n:,} (none to measure)", partial(list, rows)))
        else:
            steps.append(
                _lookup_step(ctx, "peers", "get", n, "fresh", designs, partial(ctx.pool, n, "fresh"))
            )
    return steps
