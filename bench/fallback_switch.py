"""Why the pure-Python fallback's ``switch_flow`` costs more than the hand-written dict class:
the work the fallback must share with the native core, added to that class one piece at a
time, timed the way ``flowreg bench`` times (flowreg.benchmark.harness: calibrated runs,
designs interleaved in each run, the empty loop subtracted, median of same-run ratios).

- dict: the analysis' class (cases.DictFlowRegistry), a dict lookup in try/except;
- +type: rejects ids that are not ints (``1.0`` is not an id in flowreg, it is in a dict);
- +hits: and counts hits (``stats()``);
- +hot: and keeps the hot slot and its counter: the least the fallback does;
- closure: the same as +hot, its state in closure cells instead of attributes;
- lru: no check, hits counted in C by ``functools.lru_cache`` around the dict;
- py, c: flowreg's fallback and native core.

    python bench/fallback_switch.py [--runs 15] [--sizes 21,1000,1000000]
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import same_run

import flowreg
from flowreg import FlowNotFound
from flowreg.benchmark.cases import DictFlowRegistry, Flow, fresh_copies, make_ids
from flowreg.benchmark.harness import Trial
from flowreg.benchmark.profiles import PROFILES


# Each class spells its switch_flow out in full: calling the previous class's would add a
# call to what is measured.
class TypeChecked(DictFlowRegistry):
    def switch_flow(self, flow_id: Any) -> Flow:
        if type(flow_id) is not int:
            raise FlowNotFound(flow_id)
        try:
            return self.flows[flow_id]
        except KeyError:
            raise FlowNotFound(flow_id) from None


class Counted(DictFlowRegistry):
    def __init__(self, flows: dict[int, Flow]) -> None:
        super().__init__(flows)
        self.hits = 0

    def switch_flow(self, flow_id: Any) -> Flow:
        if type(flow_id) is not int:
            raise FlowNotFound(flow_id)
        try:
            flow = self.flows[flow_id]
        except KeyError:
            raise FlowNotFound(flow_id) from None
        self.hits += 1
        return flow


class HotCounted(Counted):
    def __init__(self, flows: dict[int, Flow]) -> None:
        super().__init__(flows)
        self.hot: int | None = None
        self.hot_hits = 0

    def switch_flow(self, flow_id: Any) -> Flow:
        if type(flow_id) is not int:
            raise FlowNotFound(flow_id)
        try:
            flow = self.flows[flow_id]
        except KeyError:
            raise FlowNotFound(flow_id) from None
        self.hits += 1
        if flow_id == self.hot:
            self.hot_hits += 1
        else:
            self.hot = flow_id
        return flow


def closure_switch(flows: dict[int, Flow]) -> Callable[[Any], Flow]:
    hits = hot_hits = 0
    hot = None

    def switch_flow(flow_id: Any) -> Flow:
        nonlocal hits, hot_hits, hot
        if type(flow_id) is not int:
            raise FlowNotFound(flow_id)
        try:
            flow = flows[flow_id]
        except KeyError:
            raise FlowNotFound(flow_id) from None
        hits += 1
        if flow_id == hot:
            hot_hits += 1
        else:
            hot = flow_id
        return flow

    return switch_flow


def trial(n: int, ids: str) -> Trial:
    stored = make_ids(n, random.Random(n))
    flows = {k: Flow(k) for k in stored}
    keys = random.Random(n + 1).choices(stored, k=PROFILES["default"].pool_size(n))  # as flowreg bench
    pool = fresh_copies(keys) if ids == "fresh" else keys
    designs: dict[str, Any] = {  # each called as s.switch_flow(k), as flowreg bench calls them
        "dict": DictFlowRegistry(flows),
        "+type": TypeChecked(flows),
        "+hits": Counted(flows),
        "+hot": HotCounted(flows),
        "closure": SimpleNamespace(switch_flow=closure_switch(flows)),
        "lru": SimpleNamespace(switch_flow=functools.lru_cache(maxsize=None)(flows.__getitem__)),
    }
    for impl, ns in flowreg.implementations().items():
        designs[impl] = ns.FlowRegistry(flows, capacity=n)
    return same_run.lookup_trial("fallback switch", "switch", "s.switch_flow(k)", n, ids, designs, pool)


if __name__ == "__main__":
    same_run.main(__doc__, trial, ("fresh", "same"), "call")
