"""Deleting flows at random places vs. oldest first (flows that expire in the order they were
created), dict against flowreg's native core, timed the way ``flowreg bench`` times
(flowreg.benchmark.harness: calibrated runs, designs interleaved in each run, the empty loop
subtracted, median of same-run ratios). Each pass deletes a batch; the untimed phases put it back.

A dict keeps its entries in creation order, so deleting oldest first reads them one after
another; flowreg's swap-with-last keeps no creation order, so it does not gain from it.

    python bench/delete_order.py [--runs 15] [--n 1000000]
"""

from __future__ import annotations

import argparse
import random
from array import array
from collections import deque
from collections.abc import Sequence
from typing import Any

import flowreg
from flowreg.benchmark.cases import TIMED_PHASES, Batch, Flow, MutationBatches, make_ids, mutation_phases
from flowreg.benchmark.harness import (
    Phase,
    PhasedLoop,
    Runner,
    Settings,
    Subject,
    Trial,
    compile_phased_loop,
    measure,
)


class OldestFirst:
    """Batches of the oldest ids of one structure, each created again as the newest."""

    def __init__(self, ids: Sequence[int], flows: dict[int, Any], size: int) -> None:
        self.queue = deque(ids)  # creation order
        self.flows = flows
        self.size = size

    def take(self, passes: int) -> list[Batch]:
        out = []
        for _ in range(passes):
            gone = [self.queue.popleft() for _ in range(self.size)]
            self.queue.extend(gone)
            out.append((gone, [], [], [(k, self.flows[k]) for k in gone]))  # created again last
        return out


def runner(loop: PhasedLoop, batches: MutationBatches | OldestFirst) -> Runner:
    def run(amount: int) -> list[Phase]:
        totals = loop(batches.take(amount))[:TIMED_PHASES]
        return [(ns, amount * batches.size) for ns in totals]

    return run


def trial(n: int, order: str, size: int) -> Trial:
    ids = make_ids(2 * n, random.Random(n))
    ids, spares = ids[:n], array("q", ids[n:])
    flows = {k: Flow(k) for k in ids}  # not a store: looking flows up here warms no store
    pairs, words = list(flows.items()), array("q", ids)
    stores = {"dict": dict(flows), "c": flowreg.implementations()["c"].FlowRegistry(flows, capacity=n)}

    def batches(seed: int) -> MutationBatches | OldestFirst:
        if order == "oldest":
            return OldestFirst(ids, flows, size)
        return MutationBatches(pairs, words, spares, size, seed)

    subjects = []
    for seed, (impl, store) in enumerate(stores.items()):
        loop = compile_phased_loop(mutation_phases("del s[k]", "s[k] = f"), {"s": store})
        subjects.append(Subject(impl, impl, runner(loop, batches(seed))))
    # the empty loop walks batches of the same kind: oldest-first ones cost less to walk
    overhead = runner(compile_phased_loop(mutation_phases("pass", "pass"), {}), batches(len(stores)))

    # only deletes are reported here (the create phase times new ids: flowreg bench reports it)
    ops = ("delitem", "setitem")
    return Trial("delete order", ops, n, order, subjects, overhead, report_ops=frozenset({"delitem"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1024, help="ids deleted and created again per pass")
    args = parser.parse_args()
    if "c" not in flowreg.implementations():
        parser.error("the native core is not importable here")
    settings = Settings(runs=args.runs, target_ns=60_000_000, warmups=1)
    print(f"{'n':>9}  {'order':6}  {'impl':4}  {'ns/delete':>9}  {'spread':>6}  ratio to dict")
    size = max(1, min(args.batch, args.n // 2))
    for order in ("random", "oldest"):
        for row in measure(trial(args.n, order, size), settings):
            print(
                f"{args.n:>9,}  {order:6}  {row.impl:4}  {row.median_ns:>9.1f}"
                f"  {row.spread_pct:>5.0f}%  {row.ratio_to_dict:.2f}x"
            )


if __name__ == "__main__":
    main()
