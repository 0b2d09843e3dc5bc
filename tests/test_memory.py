"""Memory: no leaks, cycles through values are collected, deep nesting does not
crash, native memory is visible to tracemalloc, growth to millions of ids."""

from __future__ import annotations

import contextlib
import gc
import sys
import tracemalloc
import weakref

import pytest

from flowreg import FlowNotFound

# tracemalloc noise (its own bookkeeping, interpreter caches): a fixed allowance,
# far below what one leaked byte per cycle would add up to.
SLACK = 8 * 1024


class Flow:
    pass


@pytest.fixture(params=["flow", "pair"])
def kind(request, impl):
    """(registry class, id maker) for int ids and for (int, int) ids."""
    if request.param == "flow":
        return impl.FlowRegistry, lambda i: 2**40 + i  # not a cached small int
    return impl.PairFlowRegistry, lambda i: (2**40 + i, -i)


CYCLES = {"FlowRegistry": 100_000, "PairFlowRegistry": 30_000}  # pairs: same native paths, fewer


@contextlib.contextmanager
def tracing():
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def traced():
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def cycles(reg, ids, a, b, n):
    """n create/overwrite/delete/pop cycles, with the other writes, reads of many ids,
    failing calls and clear() mixed in; every cycle leaves the registry empty."""
    for i in range(n):
        k0, k1, k2 = ids[i % 61], ids[i % 61 + 1], ids[i % 61 + 2]
        reg.create_flow(k0, a)
        reg[k0] = b
        reg.setdefault(k1, a)
        reg.pop(k1)
        del reg[k0]
        if i % 16:
            continue
        reg.update({k2: a, k0: b})
        reg.get_many([k0, k2])
        reg.popitem()
        reg[k1] = b
        reg.delete_many([k1, k2, k0])
        with contextlib.suppress(TypeError):
            reg.update([(k0, a), ("bad id", b)])  # failure-atomic: stores nothing
        with contextlib.suppress(FlowNotFound):
            reg.get_many([k0])
        if i % 64 == 0:
            reg[k2] = a
            reg.clear()


# tracemalloc's figures are process-wide: other threads' allocations would count as leaks.
@pytest.mark.thread_unsafe(reason="tracemalloc measures the whole process")
def test_no_leak(kind):
    make, fid = kind
    ids = [fid(i) for i in range(64)]
    a, b = Flow(), Flow()
    reg = make()
    with tracing():
        cycles(reg, ids, a, b, 1000)  # warm up caches and free lists
        before = traced()
        refs = [sys.getrefcount(o) for o in (a, b, ids[0], ids[1])]
        cycles(reg, ids, a, b, CYCLES[make.__name__])
        assert len(reg) == 0
        assert traced() - before <= SLACK
    assert [sys.getrefcount(o) for o in (a, b, ids[0], ids[1])] == refs


def _self(reg, fid):
    reg[fid(0)] = reg


def _instance(reg, fid):
    f = Flow()
    f.registry = reg
    reg[fid(0)] = f


def _containers(reg, fid):
    reg[fid(0)] = [reg]
    reg[fid(1)] = (reg,)
    reg[fid(2)] = {"r": reg}


def _two_registries(reg, fid):
    reg[fid(0)] = type(reg)({fid(5): reg})


def _tuple_only(reg, fid):
    reg[fid(0)] = (reg, fid)  # nothing on the way back that gc can clear but the registry


def _subclass_attribute(reg, fid):
    class Holding(type(reg)):
        pass

    held = Holding({fid(0): reg})
    reg[fid(1)] = (held,)
    held.me = held


# gc.disable() is process-wide: another thread's gc.enable() or gc.collect() could take the
# cycle apart before the test looks at it.
@pytest.mark.thread_unsafe(reason="gc.disable() and gc.collect() are process-wide")
@pytest.mark.parametrize(
    "link", [_self, _instance, _containers, _two_registries, _tuple_only, _subclass_attribute]
)
def test_cycle_through_value_is_collected(kind, link):
    make, fid = kind
    sentinel = Flow()  # in the cycle: freed only if gc could break the cycle, not just find it
    refs = sys.getrefcount(sentinel)
    gc.collect()
    gc.disable()
    try:
        reg = make()
        link(reg, fid)
        reg[fid(9)] = sentinel
        alive = weakref.ref(reg)
        del reg
        assert alive() is not None  # only a cycle keeps it
    finally:
        gc.enable()
    gc.collect()
    assert alive() is None  # (gc clears the weak references of what it finds, freed or not)
    assert sys.getrefcount(sentinel) == refs


@pytest.mark.thread_unsafe(reason="gc.get_referrers sees other threads' objects half made")
def test_gc_hands_out_no_list_of_flows(kind):
    # A helper that detaches an object from every list holding it (gc.get_referrers) must not
    # reach a list the registry indexes: the native core's is untracked, and its traverse
    # visits the flows instead (before, that list could be shrunk under it: a crash).
    make, fid = kind
    flow = Flow()
    reg = make({fid(1): "a", fid(2): flow})
    for holder in gc.get_referrers(flow):
        if isinstance(holder, list):
            holder.remove(flow)
    assert not [part for part in gc.get_referents(reg) if isinstance(part, list) and flow in part]
    assert reg[fid(2)] is flow
    assert list(reg.items()) == [(fid(1), "a"), (fid(2), flow)]
    reg.clear()  # a new list: untracked too
    reg[fid(3)] = flow
    assert not [holder for holder in gc.get_referrers(flow) if isinstance(holder, list)]


@pytest.mark.thread_unsafe(reason="gc.collect() returns at once while another thread is collecting")
def test_cycle_with_finalizer_is_collected(kind):
    make, fid = kind
    finalized = []

    class Finalized:
        def __del__(self):
            finalized.append(len(self.registry))  # the registry is intact when this runs

    reg = make()
    f = Finalized()
    f.registry = reg
    reg[fid(0)] = f
    reg[fid(1)] = Flow()
    alive = weakref.ref(reg)
    del reg, f
    gc.collect()
    assert alive() is None
    assert finalized == [2]


@pytest.mark.thread_unsafe(reason="gc.collect() returns at once while another thread is collecting")
@pytest.mark.parametrize("cyclic", [False, True])
def test_deep_nesting(Registry, cyclic):
    innermost = reg = Registry()
    for _ in range(100_000):
        outer = Registry()
        outer[0], reg = reg, outer
    with pytest.raises(RecursionError):
        repr(reg)
    assert len(reg) == 1
    alive = weakref.ref(reg)
    if cyclic:  # the innermost holds the outermost: gc has to take the chain apart
        innermost[0] = reg
    del reg, innermost, outer
    gc.collect()
    assert alive() is None


@pytest.mark.thread_unsafe(reason="tracemalloc measures the whole process")
def test_native_memory_is_traced(kind):
    make, fid = kind
    n = 100_000
    flow = Flow()
    pairs = [(fid(i * 7919), flow) for i in range(n)]  # made before measuring
    refs = sys.getrefcount(flow)
    with tracing():
        before = traced()
        reg = make(pairs)
        grown = traced() - before
        assert grown >= n * 16
        assert grown / 2 <= reg.__sizeof__() <= grown * 2
        assert reg.__sizeof__() >= n * 16
        reg.clear()
        assert traced() - before <= SLACK
        del reg
    assert sys.getrefcount(flow) == refs


def test_growth_to_millions(Registry):
    n = 2_000_000
    flow = Flow()
    refs = sys.getrefcount(flow)
    reg = Registry()
    for k in range(n):
        reg[k] = flow
    stats = reg.stats()
    assert (stats["size"], stats["inserts"]) == (n, n)
    assert stats["capacity"] == 2**21
    assert stats["resizes"] == 18  # capacity 4 -> 2**14 doubling, 2**16 (quarter-full tables end), 2**21
    assert len(reg) == n
    assert sys.getrefcount(flow) == refs + n
    probe = [*range(0, n, 9973), n - 1]
    assert reg.get_many(probe) == [flow] * len(probe)
    assert reg.contains_many([-1, n]) == [False, False]
    assert reg.ids()[-1] == n - 1
    assert reg.__sizeof__() >= n * 12
    reg.clear()
    assert len(reg) == 0
    assert sys.getrefcount(flow) == refs
    assert reg.stats()["capacity"] == 4
    assert reg.__sizeof__() == Registry().__sizeof__()
    reg[n] = flow
    assert list(reg.items()) == [(n, flow)]


def test_reads_hand_out_one_reference_each(kind):
    """[], get, switch_flow (probed and from the hot slot) and the batch reads give the caller
    exactly one new reference to the flow, and take none of the registry's."""
    make, fid = kind
    flow, other = Flow(), Flow()
    reg = make([(fid(1), flow), (fid(2), other)])
    refs = sys.getrefcount(flow), sys.getrefcount(other)
    for _ in range(1000):
        got = [reg[fid(1)], reg.get(fid(1)), reg.switch_flow(fid(1)), reg.switch_flow(fid(1))]
        got += [reg.switch_flow(fid(2)), *reg.get_many([fid(1), fid(2)])]
        assert [g is flow for g in got] == [True, True, True, True, False, True, False]
        assert sys.getrefcount(flow) == refs[0] + 5
        del got
    assert (sys.getrefcount(flow), sys.getrefcount(other)) == refs
