"""The designs compared and the operations timed, shared by ``flowreg bench`` and ``bench/``.

A design is a structure built from a Population (n flows under random 63-bit ids) plus one
statement per operation it supports. Statements use ``s`` (the structure), ``k`` (an id) and
``f`` (a flow), and whatever other names the design's ``build`` returns (e.g. ``d``, the plain
dict behind the hand-written classes, for ``get`` = ``d[k]``).

Designs:
- ``list``: the original system, a list of Flow objects searched by attribute.
- ``dict``: the hand-written fix of the analysis, a class whose switch_flow wraps a dict lookup
  in try/except; its ``get`` is ``d[k]`` on the plain dict. Every ratio is to this design.
- ``dict+hot``: the same plus the analysis' last-used (id, flow) hot cache.
- ``py`` / ``c``: flowreg's pure-Python and native FlowRegistry.
- thread-safety: the dict class behind ``threading.Lock``/``RLock``, and behind the read locks
  of ``readerwriterlock`` and ``fasteners`` (when installed).
- peers (when installed): cachetools, lru-dict, cachebox, preshed, cykhash.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import flowreg
from flowreg import FlowExists, FlowNotFound

from .harness import gc_paused

#: The list design's scan gets too slow to time beyond this many flows (a scan of 10,000
#: flows is ~0.1-0.2 ms per lookup): larger sizes are reported as skipped, not dropped.
LIST_MAX_N = 10_000
#: How to get the optional packages (shown where one is missing).
BENCH_EXTRA_HINT = "pip install 'flowreg[bench]'"

LOOKUP_OPS = ("switch", "get")
MUTATION_OPS = ("delete", "create", "delitem", "setitem")


class Flow:
    """A flow as the system keeps it; only flow_id matters to the registry."""

    __slots__ = ("flow_id", "name")

    def __init__(self, flow_id: int, name: str = "") -> None:
        self.flow_id = flow_id
        self.name = name


# --- the hand-written designs -----------------------------------------------------------------


class ListFlowRegistry:
    """The original design: flows in a list, found by a linear scan."""

    def __init__(self, flows: Iterable[Flow]) -> None:
        self.flows = list(flows)

    def switch_flow(self, flow_id: int) -> Flow:
        for flow in self.flows:
            if flow.flow_id == flow_id:
                return flow
        raise FlowNotFound(flow_id)

    def create_flow(self, flow_id: int, flow: Flow) -> Flow:
        # the original appends; checking for a duplicate would be one more scan
        self.flows.append(flow)
        return flow

    def delete_flow(self, flow_id: int) -> Flow:
        for i, flow in enumerate(self.flows):
            if flow.flow_id == flow_id:
                return self.flows.pop(i)
        raise FlowNotFound(flow_id)


class DictFlowRegistry:
    """The analysis' first fix: a class around a dict, switch_flow = lookup in try/except."""

    def __init__(self, flows: dict[int, Flow]) -> None:
        self.flows = flows

    def switch_flow(self, flow_id: int) -> Flow:
        try:
            return self.flows[flow_id]
        except KeyError:
            raise FlowNotFound(flow_id) from None

    def create_flow(self, flow_id: int, flow: Flow) -> Flow:
        if flow_id in self.flows:
            raise FlowExists(flow_id)
        self.flows[flow_id] = flow
        return flow

    def delete_flow(self, flow_id: int) -> Flow:
        try:
            return self.flows.pop(flow_id)
        except KeyError:
            raise FlowNotFound(flow_id) from None


class HotDictFlowRegistry(DictFlowRegistry):
    """The analysis' second step: remember the last (flow_id, flow); a repeat is a "0-step hit"."""

    def __init__(self, flows: dict[int, Flow]) -> None:
        super().__init__(flows)
        self.last_id: int | None = None
        self.last_flow: Flow | None = None

    def switch_flow(self, flow_id: int) -> Flow:
        if flow_id == self.last_id:
            return self.last_flow  # type: ignore[return-value]  # set together with last_id
        try:
            flow = self.flows[flow_id]
        except KeyError:
            raise FlowNotFound(flow_id) from None
        self.last_id = flow_id
        self.last_flow = flow
        return flow

    def delete_flow(self, flow_id: int) -> Flow:
        try:
            flow = self.flows.pop(flow_id)
        except KeyError:
            raise FlowNotFound(flow_id) from None
        if flow_id == self.last_id:
            self.last_id = self.last_flow = None
        return flow


class LockedDictFlowRegistry(DictFlowRegistry):
    """The analysis' concurrency remedy: the dict class with a lock held around every access."""

    def __init__(self, flows: dict[int, Flow], lock: Any) -> None:
        super().__init__(flows)
        self.lock = lock

    def switch_flow(self, flow_id: int) -> Flow:
        with self.lock:
            try:
                return self.flows[flow_id]
            except KeyError:
                raise FlowNotFound(flow_id) from None


class ReadLockedDictFlowRegistry(DictFlowRegistry):
    """The dict class behind a reader-writer lock's read side (``read_lock()`` per access)."""

    def __init__(self, flows: dict[int, Flow], read_lock: Callable[[], Any]) -> None:
        super().__init__(flows)
        self.read_lock = read_lock

    def switch_flow(self, flow_id: int) -> Flow:
        with self.read_lock():
            try:
                return self.flows[flow_id]
            except KeyError:
                raise FlowNotFound(flow_id) from None


# --- ids and populations ----------------------------------------------------------------------


def make_ids(n: int, rng: random.Random) -> list[int]:
    """n distinct random 63-bit ids (never 0 or 1, which preshed reserves)."""
    while True:
        raw = array("Q")
        raw.frombytes(rng.randbytes(8 * n))
        ids = [x >> 1 for x in raw]
        if len(set(ids)) == n and min(ids, default=2) > 1:
            return ids


def fresh_copies(keys: Iterable[int]) -> list[int]:
    """Equal int objects that are not the stored ones: ids as parsed from a request."""
    return [int(str(k)) for k in keys]


def hot_sequence(ids: Sequence[int], length: int, hit_ratio: float, rng: random.Random) -> list[int]:
    """Lookups of which exactly round(hit_ratio * (length - 1)) repeat the previous id; the
    others are random ids different from the previous one."""
    repeats = set(rng.sample(range(1, length), round(hit_ratio * (length - 1))))
    sequence = rng.choices(ids, k=length)
    for i in range(1, length):
        if i in repeats:
            sequence[i] = sequence[i - 1]
        else:
            while sequence[i] == sequence[i - 1] and len(ids) > 1:
                sequence[i] = rng.choice(ids)
    return sequence


#: One pass of a delete/create timing, a list per phase: the stored ids to delete, the (id, flow)
#: pairs to create (new ids), then, untimed, the new ids to delete and the stored pairs to put back.
Batch = tuple[list[int], list[tuple[int, Any]], list[int], list[tuple[int, Any]]]


def mutation_phases(delete: str, create: str) -> list[tuple[str, str]]:
    """The phases of a MutationBatches pass: the delete and the create timed, then two that put
    the structure back (their times are dropped: the first TIMED_PHASES count)."""
    return [("k", delete), ("k, f", create), ("k", delete), ("k, f", create)]


TIMED_PHASES = 2


class MutationBatches:
    """Batches of ``size`` distinct stored ids to delete, and as many new ids to create, without end.

    No batch is deleted while its ids still sit where they were created together: deleting such
    a batch would let a dict, which keeps its entries in creation order, read them one after
    another, a locality random deletes do not have (and that swap-with-last does not keep).
    Few ids: a ring of RING batches cut from successive random permutations, two or more, so
    between two turns of a batch its ids are created again in other batches. Many ids: every
    batch a new random draw (at that size drawing costs about what the timed pass does).

    A batch is cut by position from ``pairs`` (stored id, flow), never looked up in a structure
    (that would warm its entries for the timed pass). ``fresh`` ids, equal int objects made anew
    as parsed from a request, are read from ``words`` (the ids as int64), so nothing touches the
    stored int objects a dict must compare them with before the timed delete.

    The create stores ids that are not in the structure, read from ``spares`` (int64 ids that
    never are) at the batch's positions: their slots are as cold as a new flow's, where creating
    the ids just deleted would find the slots the delete has just read. Their int objects and
    flows are made when the batch is cut, as a new flow's id and object are at hand when it is
    created. The untimed phases delete them and create the batch again.
    """

    RING = 64

    def __init__(
        self,
        pairs: Sequence[tuple[int, Any]],
        words: Sequence[int],
        spares: Sequence[int],
        size: int,
        seed: int,
        fresh: bool = False,
    ) -> None:
        if not len(words) == len(spares) == len(pairs):
            raise ValueError(f"{len(pairs)} pairs but {len(words)} words and {len(spares)} spares")
        if not 0 < size <= len(pairs):
            raise ValueError(f"a batch of {size} ids out of {len(pairs)}")
        self.pairs = pairs
        self.words = words
        self.spares = spares
        self.size = size
        self.fresh = fresh
        self.rng = random.Random(seed)
        self.ring: list[Batch] = []
        if 2 * (len(pairs) // size) <= self.RING:  # the ring holds two permutations or more
            while len(self.ring) < self.RING:
                order = self.rng.sample(range(len(pairs)), len(pairs))
                cuts = range(0, len(order) - size + 1, size)
                self.ring += [self._batch(order[i : i + size]) for i in cuts]
            del self.ring[self.RING :]
        self.turn = 0

    def take(self, passes: int) -> list[Batch]:
        if not self.ring:
            everywhere = range(len(self.pairs))
            return [self._batch(self.rng.sample(everywhere, self.size)) for _ in range(passes)]
        out = [self.ring[(self.turn + i) % self.RING] for i in range(passes)]
        self.turn = (self.turn + passes) % self.RING
        return out

    def _batch(self, places: list[int]) -> Batch:
        back = [self.pairs[i] for i in places]
        gone = [self.words[i] for i in places] if self.fresh else [k for k, _ in back]
        new_ids = [self.spares[i] for i in places]  # int objects made now
        return gone, [(k, Flow(k)) for k in new_ids], new_ids, back


class Population:
    """n flows under random ids, and the structures of every design built from them (cached).

    The dict behind ``dict``, ``dict+hot``, the lock wrappers and ``get`` is one shared object:
    operations that change it (delete, create) restore it before they return.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed * 1_000_003 + n)
        with gc_paused():  # a million new objects would trigger full collections all along
            ids = make_ids(2 * n, self.rng)
            self.ids = ids[:n]
            self.flows = {k: Flow(k) for k in self.ids}
            self.pairs = list(self.flows.items())  # (ids[i], its flow)
            self.words = array("q", self.ids)
            self.spares = array("q", ids[n:])  # ids never stored: what creates store
        self._built: dict[str, dict[str, object]] = {}

    def names(self, design: Design) -> dict[str, object]:
        """The names design's statements use, built on first use."""
        if design.impl not in self._built:
            with gc_paused():
                self._built[design.impl] = design.build(self)
        return self._built[design.impl]

    def pool(self, size: int) -> list[int]:
        """size lookups of stored ids (the very stored objects), in random order."""
        return self.rng.choices(self.ids, k=size)


# --- designs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    impl: str
    statements: Mapping[str, str]  # op -> statement (names: s, k, f, and those build returns)
    build: Callable[[Population], dict[str, object]]
    needs: str | None = None  # module that must import (an optional package)
    pip_name: str | None = None
    max_n: int | None = None  # beyond this: skipped, with skip_reason
    skip_reason: str = ""
    notes: Mapping[str, str] = field(default_factory=dict)

    def unavailable(self) -> str | None:
        """Why this design cannot run here, or None."""
        if self.impl in ("c", "py") and self.impl not in flowreg.implementations():
            return "native core not importable here" if self.impl == "c" else "not importable"
        if self.needs is not None and not module_available(self.needs):
            return f"{self.pip_name or self.needs} not installed ({BENCH_EXTRA_HINT})"
        return None

    def skip(self, n: int) -> str | None:
        """Why this design is not measured at size n, or None."""
        return self.unavailable() or (self.skip_reason if self.max_n is not None and n > self.max_n else None)


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def registry_class(impl: str) -> Any:
    return flowreg.implementations()[impl].FlowRegistry


_REGISTRY_STATEMENTS = {
    "switch": "s.switch_flow(k)",
    "get": "s[k]",
    "create": "s.create_flow(k, f)",
    "delete": "s.delete_flow(k)",
    "setitem": "s[k] = f",
    "delitem": "del s[k]",
    "get_many": "s.get_many(k)",
    "contains_many": "s.contains_many(k)",
}


def _registry(impl: str) -> Callable[[Population], dict[str, object]]:
    def build(pop: Population) -> dict[str, object]:
        return {"s": registry_class(impl)(pop.flows, capacity=pop.n)}

    return build


def _shared_dict(cls: Callable[[dict[int, Flow]], object]) -> Callable[[Population], dict[str, object]]:
    def build(pop: Population) -> dict[str, object]:
        return {"s": cls(pop.flows), "d": pop.flows}

    return build


DESIGNS: dict[str, Design] = {
    d.impl: d
    for d in (
        Design(
            "list",
            {"switch": "s.switch_flow(k)", "create": "s.create_flow(k, f)", "delete": "s.delete_flow(k)"},
            lambda pop: {"s": ListFlowRegistry(pop.flows.values())},
            max_n=LIST_MAX_N,
            skip_reason="skipped: O(n) scan",
        ),
        Design(
            "dict",
            {
                "switch": "s.switch_flow(k)",
                "get": "d[k]",
                "create": "s.create_flow(k, f)",
                "delete": "s.delete_flow(k)",
                "setitem": "d[k] = f",
                "delitem": "del d[k]",
                "get_many": "[d[x] for x in k]",
                "contains_many": "[x in d for x in k]",
            },
            _shared_dict(DictFlowRegistry),
        ),
        Design(
            "dict+hot",
            {"switch": "s.switch_flow(k)", "create": "s.create_flow(k, f)", "delete": "s.delete_flow(k)"},
            _shared_dict(HotDictFlowRegistry),
        ),
        Design("py", _REGISTRY_STATEMENTS, _registry("py")),
        Design("c", _REGISTRY_STATEMENTS, _registry("c")),
    )
}


def _locked(lock_factory: Callable[[], Any]) -> Callable[[Population], dict[str, object]]:
    def build(pop: Population) -> dict[str, object]:
        lock = lock_factory()
        return {"s": LockedDictFlowRegistry(pop.flows, lock), "d": pop.flows, "lock": lock}

    return build


def _read_locked(
    make_read_lock: Callable[[], Callable[[], Any]],
) -> Callable[[Population], dict[str, object]]:
    def build(pop: Population) -> dict[str, object]:
        read_lock = make_read_lock()
        return {"s": ReadLockedDictFlowRegistry(pop.flows, read_lock), "d": pop.flows, "read_lock": read_lock}

    return build


def _readerwriterlock() -> Callable[[], Any]:
    rwlock = importlib.import_module("readerwriterlock.rwlock")
    # reader-preferring: the "fast reader path" the analysis asks for
    return rwlock.RWLockRead().gen_rlock  # type: ignore[no-any-return]


def _fasteners() -> Callable[[], Any]:
    return importlib.import_module("fasteners").ReaderWriterLock().read_lock  # type: ignore[no-any-return]


_LOCKED = {"switch": "s.switch_flow(k)", "get": "with lock:\n    d[k]"}
_READ_LOCKED = {"switch": "s.switch_flow(k)", "get": "with read_lock():\n    d[k]"}

LOCK_DESIGNS: dict[str, Design] = {
    d.impl: d
    for d in (
        Design("dict+lock", _LOCKED, _locked(threading.Lock)),
        Design("dict+rlock", _LOCKED, _locked(threading.RLock)),
        Design(
            "dict+readerwriterlock",
            _READ_LOCKED,
            _read_locked(_readerwriterlock),
            needs="readerwriterlock",
            pip_name="readerwriterlock",
        ),
        Design(
            "dict+fasteners", _READ_LOCKED, _read_locked(_fasteners), needs="fasteners", pip_name="fasteners"
        ),
    )
}


def _fill(cache: Any, pop: Population) -> dict[str, object]:
    for k, flow in pop.flows.items():
        cache[k] = flow
    return {"s": cache}


def _preshed(pop: Population) -> dict[str, object]:
    # preshed maps uint64 -> uint64: the value is an index into a list of the flows
    table = importlib.import_module("preshed.maps").PreshMap(initial_size=pop.n)
    flows = list(pop.flows.values())
    for i, k in enumerate(pop.ids):
        table[k] = i
    return {"s": table, "flows": flows}


PEER_DESIGNS: dict[str, Design] = {
    d.impl: d
    for d in (
        Design(
            "cachetools",
            {"get": "s[k]"},
            lambda pop: _fill(importlib.import_module("cachetools").LRUCache(maxsize=pop.n), pop),
            needs="cachetools",
            notes={"get": "cachetools.LRUCache"},
        ),
        Design(
            "lru-dict",
            {"get": "s[k]"},
            lambda pop: _fill(importlib.import_module("lru").LRU(pop.n), pop),
            needs="lru",
            pip_name="lru-dict",
            notes={"get": "lru.LRU"},
        ),
        Design(
            "cachebox",
            {"get": "s[k]"},
            lambda pop: _fill(importlib.import_module("cachebox").Cache(0), pop),
            needs="cachebox",
            notes={"get": "cachebox.Cache (unbounded)"},
        ),
        Design(
            "preshed",
            {"get": "flows[s[k]]"},
            _preshed,
            needs="preshed",
            notes={"get": "preshed.maps.PreshMap id -> index into a list of flows"},
        ),
        Design(
            "cykhash",
            {"get": "s[k]"},
            lambda pop: _fill(importlib.import_module("cykhash").PyObjectMap(), pop),
            needs="cykhash",
            notes={"get": "cykhash.PyObjectMap"},
        ),
    )
}

ALL_DESIGNS: dict[str, Design] = {**DESIGNS, **LOCK_DESIGNS, **PEER_DESIGNS}
