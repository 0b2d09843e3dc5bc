"""What bench/pairs_same_run.py and bench/fallback_switch.py share: a lookup trial timed the
way ``flowreg bench`` times (flowreg.benchmark.harness: calibrated runs, designs interleaved in
each run, the empty loop subtracted, median of same-run ratios to the design named "dict"), and
their command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence

from flowreg.benchmark.harness import (
    KeyCursor,
    Settings,
    Subject,
    Trial,
    compile_lookup_loop,
    lookup_runner,
    measure,
)


def lookup_trial(
    suite: str,
    op: str,
    statement: str,
    n: int,
    ids: str,
    stores: Mapping[str, object],
    pool: Sequence[object],
) -> Trial:
    """Each store (named s in statement, keys k from pool) as a subject of one trial."""
    subjects = [  # each its own walk through the pool: none runs on keys another just read
        Subject(name, name, lookup_runner(compile_lookup_loop(statement, {"s": store}), KeyCursor(pool, i)))
        for i, (name, store) in enumerate(stores.items())
    ]
    empty = lookup_runner(compile_lookup_loop("pass", {}), KeyCursor(pool))
    return Trial(suite, (op,), n, ids, subjects, overhead=empty)


def main(doc: str, trial: Callable[[int, str], Trial], ids_kinds: Sequence[str], unit: str) -> None:
    """Parse --runs and --sizes, time trial(n, ids) for each, print a row per design."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="21,1000,1000000")
    args = parser.parse_args()
    settings = Settings(runs=args.runs, target_ns=60_000_000, warmups=1)
    print(f"{'n':>9}  {'ids':5}  {'design':7}  {'ns/' + unit:>9}  {'spread':>6}  ratio to dict")
    for n in (int(s) for s in args.sizes.split(",")):
        for ids in ids_kinds:
            for row in measure(trial(n, ids), settings):
                print(
                    f"{n:>9,}  {ids:5}  {row.impl:7}  {row.median_ns:>9.1f}  {row.spread_pct:>5.0f}%"
                    f"  {row.ratio_to_dict:.2f}x"
                )
