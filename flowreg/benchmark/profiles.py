"""How much measuring each mode does: --tiny (tests), --quick (the newcomer's command), default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .cases import PEER_DESIGNS
from .harness import Settings

MS = 1_000_000


@dataclass(frozen=True)
class Profile:
    name: str
    settings: Settings
    sizes: tuple[int, ...]  # default --sizes
    pool: int  # lookups in a key pool at large n (a run at 1M walks a fresh slice of it)
    mutation_batch: int  # most ids deleted and created again in one timed pass
    batch_ids: int  # ids in the int64 buffer of get_many / contains_many
    memory_sizes: tuple[int, ...]  # registry sizes whose bytes per entry are traced
    flow_objects: int  # instances traced per Flow class variant
    hit_ratios: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99)
    threaded_impls: tuple[str, ...] | None = None  # batch designs also run on N threads (None: all)
    max_n: Mapping[str, int] = field(default_factory=dict)  # impl -> largest n timed in this mode
    skipped_ops: tuple[str, ...] = ()  # ops left out unless --ops names them

    def pool_size(self, n: int) -> int:
        # small n: a few thousand random lookups (all cache resident anyway); large n: enough
        # that successive runs of successive subjects touch different entries
        return min(self.pool, max(4096, 4 * n))


PROFILES = {
    p.name: p
    for p in (
        Profile(
            name="tiny",
            settings=Settings(runs=3, target_ns=MS // 2),
            sizes=(21, 1000),
            pool=4096,
            mutation_batch=64,
            batch_ids=10_000,
            memory_sizes=(1000,),
            flow_objects=5000,  # more than a free list holds (see memory.flow_object_bytes)
        ),
        Profile(
            name="quick",
            settings=Settings(runs=5, target_ns=10 * MS),
            sizes=(21, 1000, 1_000_000),
            pool=1 << 18,
            mutation_batch=1024,
            batch_ids=100_000,
            # tracing a million allocations takes seconds per structure: --quick stops at 100k
            memory_sizes=(1000, 100_000),
            flow_objects=10_000,
            # Python loops cannot run in parallel under the GIL: on N threads, time only flowreg's
            threaded_impls=("c",),
            # what takes seconds to build at 1M: the pure-Python registry, the peers (cachetools
            # is pure Python); reported as skipped at larger sizes
            max_n={"py": 100_000, **dict.fromkeys(PEER_DESIGNS, 1000)},
            # dict-style insert/delete (flowreg's own targets, not the original table)
            skipped_ops=("setitem", "delitem"),
        ),
        Profile(
            name="default",
            settings=Settings(runs=15, target_ns=60 * MS, warmups=1),
            sizes=(21, 1000, 1_000_000),
            pool=1 << 20,
            mutation_batch=1024,
            batch_ids=100_000,
            memory_sizes=(1000, 1_000_000),
            flow_objects=100_000,
        ),
    )
}
