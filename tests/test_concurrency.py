"""Thread safety: a registry shared by many threads without a lock of their own.

Every test is bounded in operations and guarded by a timeout, so a deadlock
fails instead of hanging.  They start threads of their own, so pytest-run-parallel
must not multiply them (thread_unsafe).
"""

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from array import array

import pytest

import flowreg
from flowreg import FlowNotFound

pytestmark = [pytest.mark.thread_unsafe, pytest.mark.timeout(120)]

GIL_FREE_BATCH = 3000  # above the native core's threshold (2048) for probing without the GIL


class Flow:
    __slots__ = ("fid", "owner")

    def __init__(self, fid, owner=None):
        self.fid = fid
        self.owner = owner

    def __repr__(self):
        return f"Flow({self.fid}, {self.owner})"


def run_threads(target, n, timeout=60):
    """Run target(i) in n threads started together; re-raise the first error."""
    barrier = threading.Barrier(n)
    errors = []

    def body(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads still running: deadlock?"
    if errors:
        raise errors[0]


DELETED = object()


def test_stress_mixed_operations_match_a_model(Registry):
    n_threads, steps = 8, 1500
    stable = {fid: Flow(fid) for fid in range(1000)}  # present throughout: never written
    reg = Registry(stable)
    stable_ids = array("q", list(stable) * 3)
    lazy_ids = range(100_000, 100_040)
    factory_calls = {fid: 0 for fid in lazy_ids}
    calls_lock = threading.Lock()
    logs = [dict() for _ in range(n_threads)]  # per thread: id -> its last write (or DELETED)
    lazy_seen = [dict() for _ in range(n_threads)]

    def factory(fid):
        with calls_lock:
            factory_calls[fid] += 1
        time.sleep(0.0005)
        return Flow(fid, "lazy")

    def expect_own(log, fid):
        """What this thread's own id must hold: nobody else writes it."""
        state = log.get(fid, DELETED)
        if state is DELETED:
            assert fid not in reg
            with pytest.raises(FlowNotFound):
                reg[fid]
        else:
            assert reg[fid] is state

    def worker(t):
        rng = random.Random(t)
        log = logs[t]
        own = range(10_000 + 1000 * t, 10_000 + 1000 * t + 50)
        for _ in range(steps):
            op = rng.randrange(12)
            fid = rng.choice(own)
            if op == 0:  # single reads of ids present throughout never miss
                sid = rng.randrange(1000)
                assert reg[sid] is stable[sid]
                assert reg.switch_flow(sid) is stable[sid]
                assert reg.get(sid) is stable[sid]
            elif op == 1:
                log[fid] = reg[fid] = Flow(fid, t)
            elif op == 2:
                removed = reg.pop(fid, DELETED)
                assert removed is log.get(fid, DELETED)
                log[fid] = DELETED
            elif op == 3:
                flow = Flow(fid, t)
                if log.get(fid, DELETED) is DELETED:
                    assert reg.create_flow(fid, flow) is flow
                    log[fid] = flow
                else:
                    assert reg.setdefault(fid, flow) is log[fid]
            elif op == 4:  # batch reads on an int64 buffer, big enough to run without the GIL
                assert all(reg.contains_many(stable_ids))
                got = reg.get_many(stable_ids)
                assert all(flow is stable[flow.fid] for flow in got)
            elif op == 5:
                batch = rng.sample(own, 5)
                removed = reg.delete_many(batch)
                assert removed == sum(log.get(b, DELETED) is not DELETED for b in batch)
                log.update(dict.fromkeys(batch, DELETED))
            elif op == 6:
                batch = {b: Flow(b, t) for b in rng.sample(own, 5)}
                reg.update(batch)
                log.update(batch)
            elif op == 7:
                lid = rng.choice(lazy_ids)
                flow = reg.get_or_create(lid, factory)
                assert lazy_seen[t].setdefault(lid, flow) is flow
            elif op == 8:  # a snapshot is consistent: stable ids intact, own ids as written
                snap = dict(reg.snapshot())
                assert all(snap[sid] is flow for sid, flow in stable.items())
                for oid in own:
                    assert snap.get(oid, DELETED) is log.get(oid, DELETED)
            elif op == 9:
                expect_own(log, fid)
            elif op == 10:  # iteration may be invalidated by others, never torn
                try:
                    for key, flow in reg.items():
                        assert flow is not None
                        assert key == flow.fid
                except RuntimeError as exc:
                    assert "changed during iteration" in str(exc)  # noqa: PT017
            else:  # other threads' ids: anything goes but a crash
                other = 10_000 + 1000 * rng.randrange(n_threads) + rng.randrange(50)
                reg.get(other)
                other in reg  # noqa: B015
                len(reg)

    run_threads(worker, n_threads)

    expected = dict(stable)
    for log in logs:
        expected.update((fid, flow) for fid, flow in log.items() if flow is not DELETED)
    for lid in lazy_ids:
        seen = {id(seen[lid]) for seen in lazy_seen if lid in seen}
        assert len(seen) <= 1, "get_or_create handed out two different flows"
        if seen:
            assert factory_calls[lid] == 1
            expected[lid] = next(s[lid] for s in lazy_seen if lid in s)
    assert dict(reg.items()) == expected
    assert all(reg[fid] is flow for fid, flow in expected.items())
    assert len(reg) == len(list(reg)) == len(expected)


def test_a_writer_gets_in_behind_eight_looping_readers(Registry):
    reg = Registry({i: i for i in range(100_000)})
    ids = array("q", range(100_000))
    stop = threading.Event()
    ready = threading.Barrier(9)

    def reader(_):
        ready.wait()
        while not stop.is_set():
            reg.contains_many(ids)

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(0.05)  # the readers are looping now
    started = time.monotonic()
    reg[-1] = "written"
    waited = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join(30)
    assert reg[-1] == "written"
    assert waited < 1.0, f"the writer waited {waited:.3f} s"


def test_lock_holder_calling_python_does_not_deadlock(Registry):
    reg = Registry({i: Flow(i) for i in range(5000)})
    holding = threading.Event()
    results = []

    def holder():
        def inside():  # Python code (and the GIL) while the write lock is held
            holding.set()
            total = sum(range(200_000))
            time.sleep(0.05)
            reg[-1] = Flow(-1)  # this thread may use the registry it holds
            return total + len(reg)

        results.append(reg._hold_write_lock(inside))

    def others(i):
        holding.wait()
        if i % 2:
            results.append(reg[i].fid)
            results.append(sum(reg.contains_many(array("q", range(GIL_FREE_BATCH)))))
        else:
            reg[10_000 + i] = Flow(i)

    holder_thread = threading.Thread(target=holder, daemon=True)
    holder_thread.start()
    run_threads(others, 6)
    holder_thread.join(30)
    assert not holder_thread.is_alive()
    assert reg[-1].fid == -1
    assert len(reg) == 5000 + 1 + 3


@pytest.mark.parametrize("batch", [10, GIL_FREE_BATCH])
def test_del_reentering_during_a_locked_mutation(Registry, batch):
    reg = Registry()
    log = []

    class Reentrant:
        def __init__(self, fid):
            self.fid = fid

        def __del__(self):
            log.append(reg.get(self.fid, "gone"))
            reg[-self.fid - 1] = "written from __del__"
            reg.contains_many(array("q", range(batch)))

    reg.update((i, Reentrant(i)) for i in range(batch))
    stop = threading.Event()

    def churn():  # another thread keeps using the registry meanwhile
        while not stop.is_set():
            reg.get(0)
            reg[10**9] = None

    other = threading.Thread(target=churn, daemon=True)
    other.start()
    try:
        assert reg.delete_many(array("q", range(batch))) == batch
    finally:
        stop.set()
        other.join(30)
    assert log == ["gone"] * batch
    assert len(reg) == batch + 1
    assert all(reg[-i - 1] == "written from __del__" for i in range(batch))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_holds_the_write_lock(Registry, in_a_fork):
    reg = Registry({i: i for i in range(1000)})
    holding, release = threading.Event(), threading.Event()

    def holder():
        reg._hold_write_lock(lambda: (holding.set(), release.wait(30)))

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert holding.wait(10)

    def child():  # the holder thread does not exist here
        ok = reg[5] == 5 and 5 in reg and reg.get_many([1, 2]) == [1, 2]
        reg[1001] = "child"
        del reg[0]
        ok = ok and reg[1001] == "child" and len(reg) == 1000 and reg.delete_many([1, 2]) == 2
        # batches this large take the native lock itself (single ids need only the GIL)
        many = array("q", range(GIL_FREE_BATCH))
        return ok and sum(reg.contains_many(many)) == 998 and reg.delete_many(many) == 998 and not reg

    try:
        in_a_fork(child, "its lock was not reset")
    finally:
        release.set()
        thread.join(30)
    assert reg[5] == 5 and 1001 not in reg  # the parent is untouched


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_runs_a_factory(Registry, in_a_fork):
    reg = Registry()
    in_factory, release = threading.Event(), threading.Event()

    def slow(fid):
        in_factory.set()
        release.wait(30)
        return "parent"

    thread = threading.Thread(target=lambda: reg.get_or_create(1, slow), daemon=True)
    thread.start()
    assert in_factory.wait(10)
    try:  # in the child the factory's thread does not exist: nobody will finish its call
        in_a_fork(lambda: reg.get_or_create(1, lambda fid: "child") == "child", "it waited for that call")
    finally:
        release.set()
        thread.join(30)
    assert reg[1] == "parent"


def consistent(reg):
    """Whether every way of reading reg agrees: len, iteration, ids(), snapshot(), []."""
    pairs = reg.snapshot()
    ids = [key for key, _ in pairs]
    return (
        len(reg) == len(pairs) == len(set(ids))
        and list(reg) == ids == list(reg.ids())
        and all(reg[key] is flow for key, flow in pairs)
    )


# Fallback writes change _fr_map (what reads use) in one step, the dense order in several: the
# states a writer can leave at fork time, each made by stopping one write halfway.
HALFWAY = {
    "pop: dense order done, _fr_map not": lambda reg: reg._fr_unlink(3),
    "pop: _fr_map done, dense order not": lambda reg: reg._fr_map.pop(3),
    "pop: the last id copied into the hole": lambda reg: (
        reg._fr_map.pop(3),
        reg._fr_keys.__setitem__(reg._fr_pos.pop(3), reg._fr_keys[-1]),
    ),
    "pop: in the swap with the last id": lambda reg: (reg._fr_pos.pop(3), reg._fr_keys.pop()),
    "pop: swapped, position not set": lambda reg: reg._fr_keys.__setitem__(
        reg._fr_pos.pop(3), reg._fr_keys.pop()
    ),
    "insert: stored in _fr_map, nothing else": lambda reg: reg._fr_map.__setitem__(99, "99"),
    "insert: stored and appended, not indexed": lambda reg: (
        reg._fr_map.__setitem__(99, "99"),
        reg._fr_keys.append(99),
    ),
}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("halfway", list(HALFWAY))
def test_fork_while_a_fallback_write_is_halfway(halfway, in_a_fork):
    from flowreg import _registry_py

    reg = _registry_py.FlowRegistry({i: str(i) for i in range(10)})
    holding, release = threading.Event(), threading.Event()

    def write():
        HALFWAY[halfway](reg)
        holding.set()
        release.wait(30)

    thread = threading.Thread(target=reg._hold_write_lock, args=(write,), daemon=True)
    thread.start()
    assert holding.wait(10)

    def child():  # the write happened or not, as _fr_map (what reads use) has it
        stored = sorted(reg._fr_map)
        ok = consistent(reg) and sorted(reg) == stored
        ok = ok and stored in (list(range(10)), [i for i in range(10) if i != 3], [*range(10), 99])
        reg[100] = "child"
        del reg[0], reg[9]
        return ok and consistent(reg) and len(reg) == len(stored) - 1

    try:
        in_a_fork(child, "its lock was not reset")
    finally:
        release.set()
        thread.join(30)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_writes(Registry, in_a_fork):
    reg = Registry({i: i for i in range(200)})
    stop = threading.Event()

    def writer():
        k = 1000
        while not stop.is_set():
            reg[k] = k
            reg.pop(k - 100, None)
            k += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            in_a_fork(lambda: consistent(reg), "its lock was not reset")
    finally:
        stop.set()
        thread.join(30)
    assert consistent(reg)


def test_two_writers_while_the_table_grows_without_the_gil(Registry):
    # Growing a table of 65,536+ ids runs without the GIL, holding the write lock: another
    # thread's writes must wait for it, not change the ids being rehashed.
    for round_ in range(20):
        reg = Registry.fromkeys(range(65_500), "start")

        def writer(i, reg=reg):
            for fid in range(1_000_000 * (i + 1), 1_000_000 * (i + 1) + 2_000):
                reg[fid] = fid

        run_threads(writer, 2)
        expected = set(range(65_500)) | set(range(1_000_000, 1_002_000)) | set(range(2_000_000, 2_002_000))
        assert len(reg) == len(expected), round_
        assert set(reg) == expected, round_
        assert all(reg.contains_many(array("q", sorted(expected)))), round_
        assert reg.get_many(array("q", [0, 1_000_000, 2_001_999])) == ["start", 1_000_000, 2_001_999]


def test_get_many_result_stays_out_of_gc_sight_until_filled(Registry):
    # get_many waits for the lock (or probes) without the GIL after making its result list:
    # gc.get_objects() in another thread must not hand out that list while it holds NULLs.
    import gc

    n = 37
    reg = Registry({i: i for i in range(n)})
    holding, release = threading.Event(), threading.Event()
    results = []

    def holder():
        reg._hold_write_lock(lambda: (holding.set(), release.wait(30)))

    def reader():
        results.append(reg.get_many(range(n)))

    def lists_of_n():  # looks at their lengths only: an unfilled list's items are NULL
        return [o for o in gc.get_objects() if type(o) is list and len(o) == n]

    threads = [threading.Thread(target=holder, daemon=True), threading.Thread(target=reader, daemon=True)]
    threads[0].start()
    assert holding.wait(10)
    threads[1].start()
    seen = []  # held, so that no other list can take the address of one seen
    try:
        for _ in range(20):  # the reader is (soon) blocked inside get_many
            time.sleep(0.05)
            seen.extend(lists_of_n())
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert results == [list(range(n))]
    assert not any(o is results[0] for o in seen), "gc.get_objects() handed out get_many's unfilled list"
    assert gc.is_tracked(results[0])


def test_get_many_names_a_missing_id_as_it_read_it(Registry):
    # The probing of a large buffer runs without the GIL while another thread flips one of
    # its ids between present and absent: FlowNotFound must name the id that was missing
    # when it was read, never one that is present (as a second read of the buffer could).
    ids = array("q", [5]) * (1 << 18)
    reg = Registry({5: "five"})
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            ids[-1] = -1
            ids[-1] = 5

    thread = threading.Thread(target=flip, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    named = []
    try:
        thread.start()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                reg.get_many(ids)
            except FlowNotFound as e:
                named.append(e.args[0])
    finally:
        stop.set()
        thread.join(30)
        sys.setswitchinterval(interval)
    assert set(named) <= {-1}


def test_delete_many_lets_go_of_the_buffer_before_flows_go(Registry):
    # a removed flow's __del__ may resize the very array of ids that removed it
    ids = array("q", [1, 2])
    grew = []

    class Flow:
        def __del__(self):
            ids.append(3)
            grew.append(len(ids))

    reg = Registry({1: Flow(), 2: "x"})
    assert reg.delete_many(ids) == 2
    assert grew == [3]
    assert list(ids) == [1, 2, 3]


def test_get_or_create_calls_the_factory_once(Registry):
    reg = Registry()
    calls = []
    results = []

    def factory(fid):
        calls.append(fid)
        time.sleep(0.05)  # long enough for every thread to arrive
        return Flow(fid)

    run_threads(lambda _: results.append(reg.get_or_create(7, factory)), 16)
    assert calls == [7]
    assert len({id(flow) for flow in results}) == 1
    assert reg[7] is results[0]
    assert reg.get_or_create(7, factory) is results[0] and calls == [7]


def test_get_or_create_with_a_raising_factory(Registry):
    reg = Registry()
    attempts = []
    results = []

    def flaky(fid):
        attempts.append(fid)
        time.sleep(0.02)
        if len(attempts) == 1:
            raise ValueError("first call fails")
        return Flow(fid)

    def caller(_):
        try:
            results.append(reg.get_or_create(1, flaky))
        except ValueError:
            results.append("raised")

    run_threads(caller, 8)
    assert results.count("raised") == 1  # only the caller that ran the failing factory
    assert attempts == [1, 1]  # one waiter retried and succeeded; the rest got its flow
    flows = [r for r in results if r != "raised"]
    assert len({id(f) for f in flows}) == 1 and reg[1] is flows[0]


def test_get_or_create_edge_cases(Registry, PairRegistry):
    reg = Registry()
    with pytest.raises(ValueError, match="boom"):
        reg.get_or_create(3, lambda fid: (_ for _ in ()).throw(ValueError("boom")))
    assert 3 not in reg
    # the factory asking for its own id would wait for itself forever
    with pytest.raises(RuntimeError, match="its own id"):
        reg.get_or_create(4, lambda fid: reg.get_or_create(fid, Flow))
    assert 4 not in reg
    # stored directly while the factory runs: the stored value wins
    assert reg.get_or_create(5, lambda fid: reg.setdefault(fid, "direct") and "factory") == "direct"
    # the factory receives the converted id
    seen = []
    reg.get_or_create(True, lambda fid: seen.append(fid))
    assert seen == [1] and type(seen[0]) is int
    pairs = PairRegistry()
    assert pairs.get_or_create((1, 2), lambda fid: fid) == (1, 2)
    with pytest.raises(TypeError):
        reg.get_or_create("x", Flow)


def test_aget_or_create_single_flight_for_tasks(Registry):
    reg = Registry()
    calls = []

    async def factory(fid):
        calls.append(fid)
        await asyncio.sleep(0.02)
        return Flow(fid)

    async def main():
        return await asyncio.gather(*(reg.aget_or_create(9, factory) for _ in range(16)))

    flows = asyncio.run(main())
    assert calls == [9]
    assert len({id(f) for f in flows}) == 1 and reg[9] is flows[0]


def test_aget_or_create_raising_factory_and_self_wait(Registry):
    reg = Registry()
    attempts = []

    async def flaky(fid):
        attempts.append(fid)
        await asyncio.sleep(0.01)
        if len(attempts) == 1:
            raise ValueError("first")
        return Flow(fid)

    async def self_asking(fid):
        return await reg.aget_or_create(fid, flaky)

    async def main():
        results = await asyncio.gather(
            *(reg.aget_or_create(2, flaky) for _ in range(6)), return_exceptions=True
        )
        with pytest.raises(RuntimeError, match="its own id"):
            await reg.aget_or_create(3, self_asking)
        return results

    results = asyncio.run(main())
    assert sum(isinstance(r, ValueError) for r in results) == 1
    flows = [r for r in results if not isinstance(r, BaseException)]
    assert len(flows) == 5 and len({id(f) for f in flows}) == 1
    assert attempts == [2, 2] and 3 not in reg


def test_aget_or_create_across_threads_and_loops(Registry):
    reg = Registry()
    calls = []

    async def factory(fid):
        calls.append(fid)
        await asyncio.sleep(0.05)
        return Flow(fid)

    async def many():
        return await asyncio.gather(*(reg.aget_or_create(11, factory) for _ in range(4)))

    results = []
    run_threads(lambda _: results.extend(asyncio.run(many())), 4)
    results.append(reg.get_or_create(11, lambda fid: pytest.fail("already there")))
    assert calls == [11]
    assert len({id(f) for f in results}) == 1


def validating(Registry):
    class Validating(Registry):
        def setdefault(self, fid, default=None, /):
            if default is None:
                raise ValueError("no None flows")
            return super().setdefault(fid, default)

    return Validating()


def test_get_or_create_when_storing_the_value_fails(Registry):
    reg = validating(Registry)
    in_factory = threading.Event()
    got = {}

    def returns_none(fid):
        in_factory.set()
        time.sleep(0.1)  # the other caller arrives and waits meanwhile
        return None

    def caller(i):
        if i == 0:
            with pytest.raises(ValueError, match="no None"):
                reg.get_or_create(1, returns_none)
        else:
            assert in_factory.wait(10)
            got[i] = reg.get_or_create(1, lambda fid: "good")  # retries once the leader failed

    run_threads(caller, 2, timeout=20)
    assert got == {1: "good"} and reg[1] == "good"
    run_threads(lambda i: got.setdefault("later", reg.get_or_create(1, Flow)), 1, timeout=10)
    assert got["later"] == "good"


def test_aget_or_create_when_storing_the_value_fails(Registry):
    reg = validating(Registry)

    async def returns_none(fid):
        await asyncio.sleep(0.05)

    async def good(fid):
        return "good"

    async def main():
        leader = asyncio.ensure_future(reg.aget_or_create(1, returns_none))
        await asyncio.sleep(0.01)  # the leader is in its factory
        waiter = asyncio.ensure_future(reg.aget_or_create(1, good))
        with pytest.raises(ValueError, match="no None"):
            await leader
        return await asyncio.wait_for(waiter, 10), await asyncio.wait_for(reg.aget_or_create(1, good), 10)

    assert asyncio.run(main()) == ("good", "good") and reg[1] == "good"


GET_OR_CREATE_FROM_A_FINALIZER = """
import gc


class Garbage:  # a cycle with a finalizer: the collector runs it at any allocation
    def __init__(self, reg, fid):
        self.reg, self.fid, self.me = reg, fid, self

    def __del__(self):
        try:
            self.reg.get_or_create(self.fid, lambda k: "made in __del__")
        except RuntimeError as exc:  # an id not stored yet: it can neither wait nor lead there
            assert "in this thread" in str(exc) or "interrupted this thread's" in str(exc), exc


for fid in (1, 2):  # the id the interrupted call asks for, then another one
    for threshold in range(1, 150):  # so that a collection falls at every point of the call
        reg = mod.FlowRegistry()
        gc.collect()
        Garbage(reg, fid)
        gc.set_threshold(threshold)
        try:
            assert reg.get_or_create(1, lambda k: "one") in ("one", "made in __del__")
        finally:
            gc.set_threshold(700, 10, 10)
        gc.collect()
        assert len(reg) == len(list(reg)) and reg[1] in ("one", "made in __del__")
"""


def test_get_or_create_from_a_finalizer_never_waits_for_itself(Registry, tmp_path):
    # A collection inside get_or_create can run a finalizer that calls get_or_create on the
    # same registry: it waited for ever for the lock its own thread held. Now it returns a
    # stored flow, and raises RuntimeError for an id it would have to wait for or create.
    run_script(Registry, GET_OR_CREATE_FROM_A_FINALIZER, tmp_path, timeout=30)


def test_get_or_create_looks_up_with_the_registry_s_own_peek(Registry):
    class Sessions(Registry):
        def _peek(self, key):  # a name of the subclass's own
            return "not a flow"

    reg, plain = Sessions(), Registry()
    for r in (reg, plain):
        assert r.get_or_create(1, lambda k: f"flow {k}") == "flow 1"
        assert asyncio.run(r.aget_or_create(2, _async_flow)) == "flow 2"
        assert dict(r) == {1: "flow 1", 2: "flow 2"}
    assert reg.stats() == plain.stats()


async def _async_flow(fid):
    return f"flow {fid}"


def test_waiting_for_a_call_that_waits_for_the_caller_raises(Registry):
    reg = Registry()

    async def asks_in_a_child_task(fid):
        return await asyncio.gather(reg.aget_or_create(fid, asks_in_a_child_task))

    async def asks_in_a_thread(fid):
        return await asyncio.to_thread(reg.get_or_create, fid, Flow)

    async def slow(fid):
        await asyncio.sleep(0.05)
        return "slow"

    async def main():
        for factory in (asks_in_a_child_task, asks_in_a_thread):
            with pytest.raises(RuntimeError, match="its own id"):
                await asyncio.wait_for(reg.aget_or_create(1, factory), 10)
        assert 1 not in reg
        leader = asyncio.ensure_future(reg.aget_or_create(2, slow))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="runs in this thread"):
            reg.get_or_create(2, Flow)  # blocking here would stop the loop the leader runs on
        assert await asyncio.wait_for(leader, 10) == "slow"

    asyncio.run(main())


def test_a_task_started_by_a_factory_may_ask_for_the_id_later(Registry):
    reg = Registry()
    started = []

    async def asks_later(fid):
        await asyncio.sleep(0.02)  # the factory has finished by then
        return await reg.aget_or_create(fid, pytest.fail)

    async def factory(fid):
        started.append(asyncio.ensure_future(asks_later(fid)))
        return "made"

    async def main():
        made = await reg.aget_or_create(5, factory)
        return made, await asyncio.wait_for(started[0], 10)

    assert asyncio.run(main()) == ("made", "made")


def test_snapshot_is_consistent_under_concurrent_writes(Registry):
    reg = Registry({i: (i, 0) for i in range(2000)})
    stop = threading.Event()

    def writer():  # keeps every value's generation equal across the registry per update()
        generation = 0
        while not stop.is_set():
            generation += 1
            reg.update({i: (i, generation) for i in range(2000)})

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(50):
            generations = {flow[1] for _, flow in reg.snapshot()}
            assert len(generations) == 1, "a snapshot saw half of an update()"
            got = reg.get_many(array("q", range(2000)))
            assert len({flow[1] for flow in got}) == 1, "get_many saw half of an update()"
    finally:
        stop.set()
        thread.join(30)


def run_script(Registry, code, tmp_path, timeout=60):
    """Run code, which finds Registry's module as `mod`, in a fresh interpreter; its stdout."""
    script = tmp_path / "script.py"
    script.write_text(f"import importlib\nmod = importlib.import_module({Registry.__module__!r})\n{code}")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(flowreg.__file__))}
    try:
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the interpreter did not exit within {timeout} s: a deadlock")
    assert done.returncode == 0, done.stderr
    return done.stdout


DAEMON_READER = """
ids = array("q", range(1_000_000))


def work():  # spends most of its time probing without the GIL, holding the read lock
    reg.contains_many(ids)
"""

DAEMON_WRITER = """
source = mod.FlowRegistry(reg)


def work():  # spends most of its time in clear() and update(), holding the write lock
    reg.clear()
    reg.update(source)
"""

EXIT_WITH_A_BUSY_DAEMON_THREAD = """
import gc, os, threading
from array import array

reg = mod.FlowRegistry.fromkeys(range(200_000))
busy = threading.Event()
{work}

def daemon():
    while True:
        work()
        busy.set()


threading.Thread(target=daemon, daemon=True).start()
busy.wait(30)


class AtExit:
    def __del__(self):
        try:
            {at_exit}
        except RuntimeError as exc:
            os.write(1, f"refused: {{exc}}\\n".encode())
        else:
            os.write(1, b"stored\\n")


garbage = AtExit()
garbage.cycle = garbage
del garbage  # left for the interpreter's last collection, at exit
gc.disable()
"""


@pytest.mark.parametrize("work", [DAEMON_READER, DAEMON_WRITER], ids=["reader", "writer"])
def test_exit_while_a_daemon_thread_holds_the_lock(Registry, tmp_path, work):
    # At exit CPython stops daemon threads for good where they next take the GIL: one
    # probing without the GIL never lets its read lock go, nor one inside a write (the
    # fallback's writes run Python code holding the lock) its write lock, and a write from
    # a __del__ at exit must not wait for either forever.
    script = EXIT_WITH_A_BUSY_DAEMON_THREAD.format(work=work, at_exit="reg[-1] = None")
    for _ in range(3):
        out = run_script(Registry, script, tmp_path)
        assert out == "stored\n" or out.startswith("refused: FlowRegistry: the interpreter is exiting"), out


DAEMON_FACTORY = """
def work():  # leads a get_or_create whose factory never returns
    reg.get_or_create(-7, lambda fid: (busy.set(), threading.Event().wait()))
"""
DAEMON_IN_FLIGHT_LOCK = """
from flowreg import _singleflight


class StuckCall(_singleflight._Call):
    __slots__ = ()

    def __init__(self, is_async):  # made holding the lock of the registry's in-flight calls
        if threading.current_thread().daemon:
            busy.set()
            threading.Event().wait()
        super().__init__(is_async)


_singleflight._Call = StuckCall
reg = mod.FlowRegistry()


def work():
    reg.get_or_create(-7, lambda fid: None)
"""


@pytest.mark.parametrize("work", [DAEMON_FACTORY, DAEMON_IN_FLIGHT_LOCK], ids=["factory", "lock"])
def test_exit_while_a_daemon_thread_runs_get_or_create(Registry, tmp_path, work):
    # The same for a get_or_create of an id whose factory a stopped daemon thread was running,
    # or while such a thread held the lock of the registry's in-flight calls.
    at_exit = "reg.get_or_create(-7, lambda fid: None)"
    script = EXIT_WITH_A_BUSY_DAEMON_THREAD.format(work=work, at_exit=at_exit)
    out = run_script(Registry, script, tmp_path)
    assert out.startswith("refused: get_or_create: the interpreter is exiting and "), out


def test_fallback_lock_once_exit_began_still_waits_for_a_live_holder():
    # From atexit on, the fallback's `with` checks whether a contended lock's holder was
    # stopped: until the interpreter finalizes it is alive, and a write waits for it.
    from flowreg import _registry_py

    reg = _registry_py.FlowRegistry({1: "old"})
    holding, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=reg._hold_write_lock, args=(lambda: (holding.set(), release.wait(30)),), daemon=True
    )
    writer = threading.Thread(target=reg.__setitem__, args=(1, "new"), daemon=True)
    _registry_py._at_exit()  # what atexit runs
    try:
        holder.start()
        assert holding.wait(30)
        writer.start()
        writer.join(0.2)
        assert writer.is_alive() and reg[1] == "old", "the write did not wait for the lock"
        release.set()
        writer.join(30)
        holder.join(30)
        assert reg[1] == "new"
        reg._hold_write_lock(lambda: reg.__setitem__(2, "again"))  # the holder may still re-enter
        assert reg[2] == "again"
    finally:
        release.set()
        del _registry_py._WriteLock.__enter__  # the C RLock's own again


OUT_OF_MEMORY_UNDER_THE_LOCK = """
import gc, sys
import _testcapi

reg = mod.FlowRegistry()
k = 0
while len(reg) < {size} or len(reg) < reg.stats()["capacity"]:  # full: the write must grow it
    reg[k] = None
    k += 1
before = (len(reg), reg.stats()["capacity"])


def check(stored):  # every id still found, and deletes (which move entries) still right
    for i in range(0, stored, 7):
        del reg[i]
    assert all((i in reg) == (i % 7 != 0) for i in range(stored))


class Cycle:
    def __del__(self):
        reg.get(0)  # waits for the lock if the failing write still holds it


gc.collect()
gc.set_threshold(1)  # raising the MemoryError allocates: the collector runs
garbage = Cycle()
garbage.cycle = garbage
del garbage
_testcapi.set_nomemory({n}, {n} + 1)  # allocation number n fails
try:
    {write}
except MemoryError:
    _testcapi.remove_mem_hooks()
    assert (len(reg), reg.stats()["capacity"]) == before and k not in reg
    check(k)
    print("MemoryError")
else:
    _testcapi.remove_mem_hooks()
    assert reg[k] == "v" and len(reg) == before[0] + 1
    check(k + 1)
    print("stored")
"""


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="needs CPython's _testcapi")
@pytest.mark.parametrize(
    "write", ['reg[k] = "v"', 'reg.create_flow(k, "v")', 'reg.setdefault(k, "v")', 'reg.update([(k, "v")])']
)
@pytest.mark.parametrize("size", [1000, 70_000])  # a small table; a big one, grown without the GIL
def test_out_of_memory_while_holding_the_lock(Registry, tmp_path, write, size):
    pytest.importorskip("_testcapi")
    scripts = [OUT_OF_MEMORY_UNDER_THE_LOCK.format(n=n, write=write, size=size) for n in range(4)]
    outcomes = [run_script(Registry, script, tmp_path) for script in scripts]
    assert "MemoryError\n" in outcomes, outcomes  # the failure was met at least once


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython build detail")
def test_free_threaded_build_keeps_the_gil_off():
    if getattr(sys, "_is_gil_enabled", lambda: True)():
        pytest.skip("not a free-threaded interpreter (none can be installed on these machines)")
    import flowreg  # noqa: F401  (the module declares it needs no GIL)

    assert sys._is_gil_enabled() is False
