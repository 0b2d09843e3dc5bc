"""PairFlowRegistry lookups vs. a dict keyed by the same (int, int) tuples, timed the way
``flowreg bench`` times (flowreg.benchmark.harness: calibrated runs, designs interleaved in each
run, the empty loop subtracted, median of same-run ratios). pytest-benchmark's bench_pairs.py
times each design on its own, and on a noisy machine its ratios scatter far more.

    python bench/pairs_same_run.py [--runs 15] [--sizes 21,1000,1000000]
"""

from __future__ import annotations

import same_run
from bench_pairs import pairs  # the workload of bench_pairs.py: same flows, same lookups

import flowreg
from flowreg.benchmark.harness import Trial


def trial(n: int, ids: str) -> Trial:
    flows, lookups = pairs(n)
    stores = {"dict": flows} | {
        impl: ns.PairFlowRegistry(flows, capacity=n) for impl, ns in flowreg.implementations().items()
    }
    return same_run.lookup_trial("pairs", "get", "s[k]", n, ids, stores, lookups[ids])


if __name__ == "__main__":
    same_run.main(__doc__, trial, ("same", "fresh"), "lookup")
