"""PairFlowRegistry lookups vs. a dict keyed by the same (int, int) tuples, timed the way
``flowreg bench`` times (flowreg.benchmark.harness: calibrated runs, designs interleaved in each
run, the empty loop subtracted, median of same-run ratios). pytest-benchmark's bench_pairs.py
times each design on its own, and on a noisy machine its ratios scatter far more.

    python bench/pairs_same_run.py [--runs 15] [--sizes 21,1000,1000000]
"""

from __future__ import annotations

import argparse

from bench_pairs import pairs  # the workload of bench_pairs.py: same flows, same lookups

import flowreg
from flowreg.benchmark.harness import (
    KeyCursor,
    Settings,
    Subject,
    Trial,
    compile_lookup_loop,
    lookup_runner,
    measure,
)


def trial(n: int, ids: str) -> Trial:
    flows, lookups = pairs(n)
    pool = lookups[ids]
    stores = {"dict": flows} | {
        impl: ns.PairFlowRegistry(flows, capacity=n) for impl, ns in flowreg.implementations().items()
    }
    subjects = [  # each its own walk through the pool: none runs on keys another just read
        Subject(impl, impl, lookup_runner(compile_lookup_loop("s[k]", {"s": store}), KeyCursor(pool, i)))
        for i, (impl, store) in enumerate(stores.items())
    ]
    empty = lookup_runner(compile_lookup_loop("pass", {}), KeyCursor(pool))
    return Trial("pairs", ("get",), n, ids, subjects, overhead=empty)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="21,1000,1000000")
    args = parser.parse_args()
    settings = Settings(runs=args.runs, target_ns=60_000_000, warmups=1)
    print(f"{'n':>9}  {'ids':5}  {'impl':4}  {'ns/lookup':>9}  {'spread':>6}  ratio to dict")
    for n in (int(s) for s in args.sizes.split(",")):
        for ids in ("same", "fresh"):
            for row in measure(trial(n, ids), settings):
                print(
                    f"{n:>9,}  {ids:5}  {row.impl:4}  {row.median_ns:>9.1f}  {row.spread_pct:>5.0f}%"
                    f"  {row.ratio_to_dict:.2f}x"
                )


if __name__ == "__main__":
    main()
