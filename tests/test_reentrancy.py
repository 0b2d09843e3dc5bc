"""Python code that runs in the middle of an operation and re-enters the registry:
a removed value's __del__, and an id's __index__.  Nothing may crash, the
registry must be consistent whenever that code runs and afterwards, and a
conversion runs (once) before any change.  Also an exception raised in the
middle of a write (as Ctrl-C or a signal handler's would be)."""

from __future__ import annotations

import dis
import gc
import itertools
import sys
import weakref
from array import array
from typing import ClassVar

import pytest

from flowreg import FlowExists, FlowNotFound
from flowreg import _registry_py as registry_py


@pytest.fixture(params=["flow", "pair"])
def kind(request, impl):
    """(registry class, id maker, int64 buffer maker) for int ids and (int, int) ids."""
    if request.param == "flow":
        return impl.FlowRegistry, lambda i: i, lambda ids: array("q", ids)
    return impl.PairFlowRegistry, _pair_id, _pair_buffer


def _pair_id(i):
    return (i, -i)


def _pair_buffer(ids):
    numpy = pytest.importorskip("numpy")  # only the pair buffers need it
    return numpy.array(ids, dtype=numpy.int64).reshape(-1, 2)


def check_consistent(reg):
    items = list(reg.items())
    keys = [k for k, _ in items]
    assert len(reg) == len(items) == len(set(keys))
    assert list(reg) == keys
    assert list(reversed(reg)) == keys[::-1]
    assert all(reg[k] is v for k, v in items)
    assert reg.get_many(keys) == [v for _, v in items]
    assert reg.contains_many(keys) == [True] * len(keys)
    flat = [part for k in keys for part in (k if isinstance(k, tuple) else (k,))]
    assert reg.ids() == array("q", flat)
    assert reg.stats()["size"] == len(items)


# ------------------------------------------------------------- __del__

# What a removed value's __del__ does to the registry it was removed from.
DEL_ACTIONS = {
    "read": lambda reg, me, fid: (len(reg), reg.get(me), me in reg, repr(reg), reg.stats()),
    "write": lambda reg, me, fid: (reg.__setitem__(fid(-100), "w"), reg.setdefault(fid(-101), "w")),
    "delete": lambda reg, me, fid: (reg.pop(fid(0), None), reg.delete_many([fid(3)])),
    "clear": lambda reg, me, fid: reg.clear(),
    "reinsert": lambda reg, me, fid: reg.__setitem__(me, "back"),
}

# Effect on the registry once every __del__ has run (the registry is alive).
DEL_EFFECTS = {
    "read": lambda reg, fid: True,
    "write": lambda reg, fid: reg.get_many([fid(-100), fid(-101)]) == ["w", "w"],
    "delete": lambda reg, fid: fid(0) not in reg and fid(3) not in reg,
    "clear": lambda reg, fid: len(reg) == 0,
    "reinsert": lambda reg, fid: True,  # checked per value below
}


class Reenter:
    """A value whose __del__ runs an action on the registry it belonged to, and then
    appends itself to `log` (a list of the test's own: pytest-run-parallel runs a test
    in several threads at once, so a module-level log would collect every thread's)."""

    live: ClassVar[weakref.WeakSet[Reenter]] = weakref.WeakSet()

    def __init__(self, reg, me, fid, action, strong, log):
        self.reg = reg if strong else weakref.ref(reg)
        self.strong, self.me, self.fid, self.action = strong, me, fid, action
        self.log = log
        self.ran, self.errors, self.saw_registry = 0, [], None
        self.armed = True
        Reenter.live.add(self)

    def __del__(self):
        if not self.armed:
            return
        self.ran += 1
        self.log.append(self)  # keeps it (and its results) alive for the test to inspect
        reg = self.reg if self.strong else self.reg()
        self.saw_registry = reg is not None
        if reg is None:
            return
        try:
            check_consistent(reg)
            DEL_ACTIONS[self.action](reg, self.me, self.fid)
            check_consistent(reg)
        except BaseException as e:  # never raise from __del__: report instead
            self.errors.append(repr(e))


@pytest.fixture(autouse=True)
def _disarm():
    yield
    for value in list(Reenter.live):  # leftovers must not act during later tests
        value.armed = False


N_SMALL, N_LARGE = 8, 10_000  # the large batch is above the native GIL-release threshold (2048)


def _build(make, fid, n, action, strong, log):
    """A registry of n ids; ids 1, 4 and the last hold Reenter values logging to `log`."""
    reg = make()
    targets = [fid(1), fid(4), fid(n - 1)]
    for i in range(n):
        k = fid(i)
        reg[k] = f"plain {i}"
    for k in targets:
        reg[k] = Reenter(reg, k, fid, action, strong, log)
    return reg, targets


# trigger -> (registry size, how many Reenter values it removes, the operation)
TRIGGERS = {
    "del": (N_SMALL, 1, lambda reg, t, fid, buf: reg.__delitem__(t[0])),
    "overwrite": (N_SMALL, 1, lambda reg, t, fid, buf: reg.__setitem__(t[0], "new")),
    "pop": (N_SMALL, 1, lambda reg, t, fid, buf: reg.pop(t[0])),
    "pop_default": (N_SMALL, 1, lambda reg, t, fid, buf: reg.pop(t[0], None)),
    "delete_flow": (N_SMALL, 1, lambda reg, t, fid, buf: reg.delete_flow(t[0])),
    "popitem": (N_SMALL, 1, lambda reg, t, fid, buf: reg.popitem()),
    "clear": (N_SMALL, 3, lambda reg, t, fid, buf: reg.clear()),
    "update": (N_SMALL, 2, lambda reg, t, fid, buf: reg.update({t[0]: "new", fid(200): "added", t[1]: 1})),
    "delete_many_small": (N_SMALL, 3, lambda reg, t, fid, buf: reg.delete_many([*t, t[0], fid(12345)])),
    "delete_many_large": (N_LARGE, 3, lambda reg, t, fid, buf: reg.delete_many(list(reg)[::-1])),
    "delete_many_large_buffer": (N_LARGE, 3, lambda reg, t, fid, buf: reg.delete_many(buf(list(reg)))),
    "delete_many_large_part": (
        N_LARGE,
        3,
        lambda reg, t, fid, buf: reg.delete_many([*list(reg)[1::3], *t]),
    ),
}


@pytest.mark.parametrize("action", DEL_ACTIONS)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_del_reenters(kind, trigger, action):
    make, fid, buf = kind
    n, removed, op = TRIGGERS[trigger]
    log = []
    reg, targets = _build(make, fid, n, action, strong=False, log=log)
    op(reg, targets, fid, buf)
    ran = 3 if action == "clear" else removed  # clearing from __del__ removes the others too
    assert [(v.ran, v.saw_registry, v.errors) for v in log] == [(1, True, [])] * ran
    check_consistent(reg)
    assert DEL_EFFECTS[action](reg, fid)
    if action == "reinsert":
        assert all(reg[v.me] == "back" for v in log)
    elif trigger not in ("overwrite", "update"):
        assert all(v.me not in reg for v in log)  # the removal itself happened


def _run_trigger(module, pair, trigger, action):
    """What a trigger leaves behind in one implementation: the order the values went in,
    the items (a value that went is shown by its id) and the counters."""
    make = module.PairFlowRegistry if pair else module.FlowRegistry
    fid = _pair_id if pair else (lambda i: i)
    buf = _pair_buffer if pair else (lambda ids: array("q", ids))
    n, _, op = TRIGGERS[trigger]
    log = []
    reg, targets = _build(make, fid, n, action, strong=False, log=log)
    op(reg, targets, fid, buf)
    items = [(k, ("value of", v.me) if isinstance(v, Reenter) else v) for k, v in reg.items()]
    return [v.me for v in log], items, reg.stats()


@pytest.mark.parametrize("pair", [False, True], ids=["flow", "pair"])
@pytest.mark.parametrize("action", ["write", "delete", "reinsert"])
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_del_reentry_leaves_both_implementations_alike(both, pair, trigger, action):
    # removed values go in the same order in both (removal order; clear: the last in dense
    # order first), so whatever their __del__ does lands the same way
    native, fallback = (_run_trigger(both[name], pair, trigger, action) for name in ("c", "py"))
    assert native == fallback


def _logged_class(freed, when=None, then=None):
    """A flow class whose instances append their name to `freed` when released; the one named
    `when` then calls then()."""

    class Logged:
        def __init__(self, name):
            self.name = name

        def __del__(self):
            freed.append(self.name)
            if self.name == when:
                then()

    return Logged


def test_update_giving_an_id_twice_releases_alike(both):
    """Each value an update replaces goes in the order replaced, an earlier one of the same
    update too, in both implementations (here the update holds the last references)."""

    def run(module):
        freed = []
        Logged = _logged_class(freed)
        reg = module.FlowRegistry({1: Logged("old 1"), 2: Logged("old 2")})
        ids, names = [1, 2, 3, 1, 3, 1], ["a", "x", "n", "b", "n2", "c"]
        reg.update((k, Logged(name)) for k, name in zip(ids, names, strict=True))
        return list(freed), [v.name for v in reg.values()]

    native, fallback = run(both["c"]), run(both["py"])
    assert native == fallback
    assert native == (["old 1", "old 2", "a", "n", "b"], ["c", "x", "n2"])


def test_update_releases_what_it_replaced_in_that_order_before_anything_else(both):
    """An id given twice, its stored value replaced after: released in the order replaced;
    and a flow a released one's __del__ removes goes at once (natively the update's own
    references held both until it returned)."""

    def run(module):
        log = []
        reg = module.FlowRegistry()

        def pop_3():  # (statements: a tuple of the two would hold the popped flow a while)
            reg.pop(3, None)
            log.append("X popped 3")

        Flow = _logged_class(log, "X", pop_3)
        reg[2] = Flow("X")
        given = [(1, "A"), (1, "C"), (2, "D"), (3, "B")]
        reg.update((k, Flow(name)) for k, name in given)  # the update holds the only references
        return log

    assert run(both["c"]) == run(both["py"]) == ["A", "X", "B", "X popped 3"]


@pytest.mark.parametrize("trigger", ["delete_many", "update"])
def test_a_clear_from_a_removed_flow_releases_the_rest_at_once(both, trigger):
    """A removed flow's __del__ that clears the registry: the flows the clear removes go
    before clear() returns, in both implementations (the fallback's delete_many and update
    held them until they returned)."""

    def run(module):
        log = []
        reg = module.FlowRegistry()

        def clear():
            reg.clear()
            log.append("clear() returned")

        Flow = _logged_class(log, "C", clear)  # C: the flow the trigger removes
        reg.update([(1, Flow("A")), (2, Flow("B")), (3, Flow("C"))])
        if trigger == "delete_many":
            reg.delete_many([3])
        else:
            reg.update({3: "x"})
        return log

    assert run(both["c"]) == run(both["py"]) == ["C", "B", "A", "clear() returned"]


def test_a_freed_registry_drops_its_flows_in_its_documented_order(kind, impl):
    """The one release order the two implementations do not share (README, Thread safety):
    the native core as clear() does, the last in dense order first; the fallback in the order
    the ids were stored (its id -> flow dict's)."""
    make, fid, _ = kind
    freed = []
    Logged = _logged_class(freed)
    reg = make((fid(i), Logged(i)) for i in range(6))
    del reg[fid(1)]  # swap-with-last: 5 moves to where 1 was
    reg[fid(2)] = Logged(22)  # an overwrite keeps the id's place
    reg[fid(7)] = Logged(7)
    del reg[fid(0)]  # 7 moves to the front
    assert list(reg) == [fid(i) for i in (7, 5, 2, 3, 4)]
    freed.clear()
    del reg  # (CPython frees it here: no cycle)
    assert freed == ([4, 3, 22, 5, 7] if impl.name == "c" else [22, 3, 4, 5, 7])


@pytest.mark.thread_unsafe(reason="gc.collect() returns at once while another thread is collecting")
@pytest.mark.parametrize("action", DEL_ACTIONS)
def test_del_reenters_when_registry_is_collected(kind, action):
    """Values holding their registry: gc runs their __del__ while the registry is intact."""
    make, fid, _ = kind
    log = []
    reg, _ = _build(make, fid, N_SMALL, action, strong=True, log=log)
    alive = weakref.ref(reg)
    del reg
    gc.collect()
    gc.collect()
    assert alive() is None
    assert [(v.ran, v.saw_registry, v.errors) for v in log] == [(1, True, [])] * 3


def test_del_when_registry_is_deallocated(kind):
    """Values holding a weak reference: by the time they go, the registry is gone."""
    make, fid, _ = kind
    log = []
    reg, _ = _build(make, fid, N_SMALL, "clear", strong=False, log=log)
    del reg
    assert [(v.ran, v.saw_registry) for v in log] == [(1, False)] * 3


class ReenteringRegistry:
    """Mixin: a registry subclass whose own __del__ writes to and clears itself."""

    def __del__(self):
        self[self.extra] = "during __del__"
        self.clear()
        self[self.extra] = "after clear"


@pytest.mark.thread_unsafe(reason="gc.collect() returns at once while another thread is collecting")
def test_registry_del_reenters_itself(kind):
    make, fid, _ = kind
    cls = type("Sub", (ReenteringRegistry, make), {})
    reg = cls()
    reg.extra = fid(42)
    log = []
    for i in range(5):
        reg[fid(i)] = Reenter(reg, fid(i), fid, "write", strong=False, log=log)
    alive = weakref.ref(reg)
    del reg
    gc.collect()
    assert alive() is None
    assert [(v.ran, v.saw_registry, v.errors) for v in log] == [(1, True, [])] * 5


# ------------------------------------------------------------- __index__


class MutatingIndex:
    """An id whose __index__ changes the registry before returning its value."""

    def __init__(self, value, action):
        self.value, self.action, self.calls = value, action, 0

    def __index__(self):
        self.calls += 1
        self.action()
        return self.value


ME, OTHER = 7, 3

INDEX_ACTIONS = {
    "insert": lambda reg, fid: reg.__setitem__(fid(100 + len(reg)), "by __index__"),
    "delete_me": lambda reg, fid: reg.pop(fid(ME), None),
    "insert_me": lambda reg, fid: reg.__setitem__(fid(ME), "by __index__"),
    "popitem": lambda reg, fid: reg.popitem() if reg else None,
    "clear": lambda reg, fid: reg.clear(),
}

INDEX_OPS = {
    "setitem": lambda reg, k, fid: reg.__setitem__(k, "op"),
    "setdefault": lambda reg, k, fid: reg.setdefault(k, "op"),
    "create_flow": lambda reg, k, fid: reg.create_flow(k, "op"),
    "delitem": lambda reg, k, fid: reg.__delitem__(k),
    "pop": lambda reg, k, fid: reg.pop(k),
    "pop_default": lambda reg, k, fid: reg.pop(k, "default"),
    "delete_flow": lambda reg, k, fid: reg.delete_flow(k),
    "getitem": lambda reg, k, fid: reg[k],
    "switch_flow": lambda reg, k, fid: reg.switch_flow(k),
    "get": lambda reg, k, fid: reg.get(k, "default"),
    "contains": lambda reg, k, fid: k in reg,
    "update_pairs": lambda reg, k, fid: reg.update([(fid(OTHER), "op"), (k, "op"), (fid(50), "op")]),
    "update_dict": lambda reg, k, fid: reg.update({fid(50): "op", k: "op"}),
    "update_bad": lambda reg, k, fid: reg.update([(k, "op"), (fid(50), "op"), ("bad", "op")]),
    "get_many": lambda reg, k, fid: reg.get_many([fid(OTHER), k]),
    "get_many_default": lambda reg, k, fid: reg.get_many([k, fid(OTHER), fid(99)], "default"),
    "contains_many": lambda reg, k, fid: reg.contains_many([k, fid(OTHER)]),
    "delete_many": lambda reg, k, fid: reg.delete_many([fid(OTHER), k, fid(99)]),
    # above the native GIL-release threshold (2048 ids)
    "get_many_large": lambda reg, k, fid: reg.get_many([*map(fid, range(3000, 6000)), k], None),
    "delete_many_large": lambda reg, k, fid: reg.delete_many([fid(OTHER), *map(fid, range(9, 3009)), k]),
}


def _outcome(op, reg, k, fid):
    try:
        return "ok", op(reg, k, fid)
    except (FlowNotFound, FlowExists, KeyError, TypeError) as e:
        return "raise", type(e)


@pytest.mark.parametrize("present", [True, False], ids=["present", "absent"])
@pytest.mark.parametrize("action", INDEX_ACTIONS)
@pytest.mark.parametrize("op", INDEX_OPS)
def test_index_reenters(kind, op, action, present):
    """The id is converted (once) before the operation looks at the registry: the
    result is that of the operation on the registry as __index__ left it."""
    make, fid, _ = kind
    start = [(fid(i), f"v{i}") for i in range(10) if present or i != ME]
    reg = make(start)
    expected = reg.copy()  # what the registry and result must be: action, then operation
    INDEX_ACTIONS[action](expected, fid)
    want = _outcome(INDEX_OPS[op], expected, fid(ME), fid)

    index = MutatingIndex(ME, lambda: INDEX_ACTIONS[action](reg, fid))
    k = index if make.__name__ == "FlowRegistry" else (index, -ME)
    got = _outcome(INDEX_OPS[op], reg, k, fid)
    assert got == want
    assert list(reg.items()) == list(expected.items())
    assert index.calls == 1
    check_consistent(reg)


@pytest.mark.parametrize("op", ["setitem", "update_pairs", "get", "contains", "get_many", "delitem"])
def test_index_raising_leaves_registry_unchanged(kind, op):
    """An __index__ that changes the registry and then raises: the change stays, the
    operation does nothing more, and the exception propagates."""
    make, fid, _ = kind
    reg = make([(fid(i), f"v{i}") for i in range(10)])

    def action():
        reg[fid(100)] = "by __index__"
        raise ZeroDivisionError

    expected = reg.copy()
    expected[fid(100)] = "by __index__"
    index = MutatingIndex(ME, action)
    k = index if make.__name__ == "FlowRegistry" else (index, -ME)
    with pytest.raises(ZeroDivisionError):
        INDEX_OPS[op](reg, k, fid)
    assert list(reg.items()) == list(expected.items())
    check_consistent(reg)


# ------------------------------------------------------------- asynchronous exceptions


class _Interrupt(BaseException):
    """Stands in for KeyboardInterrupt, or an exception a signal handler raises."""


# A write of each kind on a registry holding the ids 0..5 (id 9 and 10 are new).
INTERRUPTED_WRITES = {
    "setitem new": lambda reg, fid: reg.__setitem__(fid(9), "new"),
    "setitem replace": lambda reg, fid: reg.__setitem__(fid(1), "new"),
    "create_flow": lambda reg, fid: reg.create_flow(fid(9), "new"),
    "setdefault": lambda reg, fid: reg.setdefault(fid(9), "new"),
    "get_or_create": lambda reg, fid: reg.get_or_create(fid(9), lambda k: "new"),
    "del": lambda reg, fid: reg.__delitem__(fid(1)),
    "pop": lambda reg, fid: reg.pop(fid(1)),
    "popitem": lambda reg, fid: reg.popitem(),
    "delete_many": lambda reg, fid: reg.delete_many([fid(1), fid(4), fid(9)]),
    "update": lambda reg, fid: reg.update({fid(1): "x", fid(9): "y", fid(10): "z"}),
    "update repeating an id": lambda reg, fid: reg.update((fid(k), "x") for k in (9, 1, 9, 10)),
    "|=": lambda reg, fid: reg.__ior__({fid(2): "x", fid(9): "y"}),
    "clear": lambda reg, fid: reg.clear(),
}


def _interrupt_at(n, write, reg, fid, error):
    """Run write(reg, fid), raising error() at the n-th bytecode flowreg's Python code runs (more
    places than CPython delivers such exceptions at); returns whether it was raised, after
    checking that it came out of the write as it was raised: never caught, never replaced."""
    raised = None
    count = 0

    def tracer(frame, event, arg):
        nonlocal raised, count
        if "flowreg" not in frame.f_code.co_filename:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode" and raised is None:
            count += 1
            if count == n:
                raised = error()
                raise raised
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    came_out = None
    try:
        write(reg, fid)
    except BaseException as out:  # (checked just below)
        came_out = out
    finally:
        sys.settrace(previous)
    assert came_out is raised, (n, came_out, raised)
    return raised is not None


# What a signal handler may raise in the middle of a write: an exception for Ctrl-C, or a
# KeyError, as its own registry call's FlowNotFound would be.
INTERRUPTIONS = {"interrupt": _Interrupt, "KeyError": lambda: FlowNotFound(99)}


@pytest.mark.parametrize("error", INTERRUPTIONS)
@pytest.mark.parametrize("write", INTERRUPTED_WRITES)
def test_a_write_interrupted_anywhere_leaves_the_registry_whole(kind, write, error):
    """The native core's writes run no bytecode; the fallback's, stopped at any of theirs,
    leave a registry whose reads, iteration and later writes agree (the write happened or not),
    and the exception goes on as it was raised."""
    make, fid, _ = kind
    n = 1
    while True:
        reg = make((fid(i), f"v{i}") for i in range(6))
        fired = _interrupt_at(n, INTERRUPTED_WRITES[write], reg, fid, INTERRUPTIONS[error])
        check_consistent(reg)
        reg[fid(20)] = "later"
        reg.pop(fid(3), None)
        check_consistent(reg)
        assert reg[fid(20)] == "later"
        if not fired:
            break
        n += 1


# ------------------------------------------------------------- finalizers run mid-call

# What a finalizer the collector runs (or a signal handler) does to the registry whose call its
# thread is in the middle of. (Ids 0..5 are stored, or none; 9, 10, 30 and 31 are new.)
REENTRANT_ACTIONS = {
    "pop": lambda reg, fid: reg.pop(fid(2), None),
    "insert": lambda reg, fid: reg.__setitem__(fid(30), "inner"),
    "delete_many": lambda reg, fid: reg.delete_many([fid(0), fid(5)]),
    "clear": lambda reg, fid: reg.clear(),
    "popitem": lambda reg, fid: reg.popitem(),
    "replace": lambda reg, fid: reg.__setitem__(fid(4), "inner"),
    "update": lambda reg, fid: reg.update({fid(1): "inner", fid(31): "inner"}),
    "setdefault": lambda reg, fid: reg.setdefault(fid(9), "inner"),
    "delete_many new": lambda reg, fid: reg.delete_many([fid(9), fid(10), fid(1)]),
    "pop new": lambda reg, fid: reg.pop(fid(9), None),
    "create_flow": lambda reg, fid: reg.create_flow(fid(10), "inner"),
}

# The calls interrupted: every write, and the reads that walk the dense order under the lock.
INTERRUPTED_CALLS = {
    **INTERRUPTED_WRITES,
    "snapshot": lambda reg, fid: reg.snapshot(),
    "ids": lambda reg, fid: reg.ids(),
    "copy": lambda reg, fid: reg.copy(),
}


# Where a finalizer the collector runs (or a signal handler) can get in, besides a function's
# start. With the GIL up to 3.11: at an allocation of an object the collector tracks, and where
# the interpreter checks for pending work (calls, loops; 3.10 names them differently). Never
# between the load and the store of `x.a += 1`.
GIL_POINTS = frozenset(
    [
        "CALL",
        "CALL_KW",
        "CALL_FUNCTION",
        "CALL_FUNCTION_KW",
        "CALL_FUNCTION_EX",
        "CALL_METHOD",
        "PRECALL",
        "GET_ITER",
        "FOR_ITER",
        "JUMP_BACKWARD",
        "JUMP_ABSOLUTE",
        "BUILD_LIST",
        "BUILD_TUPLE",
        "BUILD_MAP",
        "BUILD_SET",
        "LIST_APPEND",
        "MAP_ADD",
        "SET_ADD",
    ]
)
# From 3.12 on (with the GIL or without) the collector, and signal handlers, run only where the
# interpreter checks for pending work: after a call returns, and at a loop's jump back.
CALLS = frozenset(["CALL", "CALL_KW", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX", "CALL_METHOD"])
JUMPS_BACK = frozenset(["JUMP_BACKWARD", "JUMP_ABSOLUTE"])


def _gil_points(code, _cache={}):  # noqa: B006 (a cache)
    if code not in _cache:
        _cache[code] = {i.offset for i in dis.get_instructions(code) if i.opname in GIL_POINTS}
    return _cache[code]


def _pending_work_points(code, _cache={}):  # noqa: B006 (a cache)
    if code not in _cache:
        pairs = list(itertools.pairwise(dis.get_instructions(code)))
        _cache[code] = {after.offset for before, after in pairs if before.opname in CALLS} | {
            before.offset for before, _ in pairs if before.opname in JUMPS_BACK
        }
    return _cache[code]


def _run(step, reg, fid):
    """step's result ("itself" for reg, as |= returns it), or the type of the exception raised."""
    try:
        result = step(reg, fid)
        return "itself" if result is reg else result
    except Exception as error:  # (compared with what the same step does in order)
        return type(error)


def _plain(result):
    """A result two registries' runs can compare: a copy, snapshot or ids() as a set."""
    if isinstance(result, (array, list)):
        return frozenset(result)
    if hasattr(result, "items"):
        return frozenset(result.items())
    return result


def _reenter_at(n, action, call, reg, fid, points):
    """Run call(reg, fid), running action(reg, fid) at the n-th place in flowreg's Python code
    where a finalizer or signal handler can run (a function's start, or the offsets `points`
    gives for a code object); returns (call's result, action's result or NOT_RUN)."""
    done = NOT_RUN
    count = 0

    def tracer(frame, event, arg):
        nonlocal done, count
        if done is not NOT_RUN or "flowreg" not in frame.f_code.co_filename:
            return None
        frame.f_trace_opcodes = True
        if event == "call" or (event == "opcode" and frame.f_lasti in points(frame.f_code)):
            count += 1
            if count == n:
                done = _plain(_run(action, reg, fid))
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = _run(call, reg, fid)
    finally:
        sys.settrace(previous)
    return _plain(result), done


NOT_RUN = object()


def _outcomes(make, fid, call, action, size):
    """(items, call's result, action's result) after call alone, after call then action, and after
    action then call."""
    outcomes = []
    for steps in ((call,), (call, action), (action, call)):
        reg = make((fid(i), f"v{i}") for i in range(size))
        results = {step: _plain(_run(step, reg, fid)) for step in steps}
        outcomes.append((dict(reg.items()), results[call], results.get(action, NOT_RUN)))
    return outcomes


def _check_reentered_anywhere(kind, call, action, size, points=_gil_points):
    make, fid, _ = kind
    alone, *either = _outcomes(make, fid, INTERRUPTED_CALLS[call], REENTRANT_ACTIONS[action], size)
    n = 1
    while True:
        reg = make((fid(i), f"v{i}") for i in range(size))
        result, done = _reenter_at(n, REENTRANT_ACTIONS[action], INTERRUPTED_CALLS[call], reg, fid, points)
        check_consistent(reg)
        # both happened, one before the other: what the registry holds, what each returned
        assert (dict(reg.items()), result, done) in (either if done is not NOT_RUN else [alone]), n
        reg[fid(20)] = "later"
        reg.pop(fid(3), None)
        check_consistent(reg)
        if done is NOT_RUN:
            break
        n += 1


@pytest.mark.parametrize("size", [6, 0])
@pytest.mark.parametrize("action", REENTRANT_ACTIONS)
@pytest.mark.parametrize("call", INTERRUPTED_CALLS)
def test_a_call_reentered_anywhere_leaves_the_registry_whole(kind, call, action, size):
    """A finalizer that writes to the registry its thread is in the middle of (the collector
    runs one at an allocation): the native core's calls run no bytecode there; the fallback's,
    re-entered at any of theirs, leave a whole registry that holds both writes, one after the
    other, and each call returns what it would have in that order. (The dense order may then
    differ from that order's: the fallback rebuilds it from its id map.)"""
    _check_reentered_anywhere(kind, call, action, size)


@pytest.mark.parametrize("impl", ["py"], indirect=True)
@pytest.mark.parametrize("build", ["3.12+", "free-threaded"])
@pytest.mark.parametrize("size", [6, 0])
@pytest.mark.parametrize("action", REENTRANT_ACTIONS)
@pytest.mark.parametrize("call", INTERRUPTED_CALLS)
def test_a_call_reentered_where_newer_pythons_run_finalizers(monkeypatch, kind, call, action, size, build):
    """The same where 3.12 and later run finalizers, with the GIL, and without it, where the
    fallback changes its id map by copy-and-swap: a finalizer's write to the map being copied
    is not lost."""
    monkeypatch.setattr(registry_py, "_FREE_THREADED", build == "free-threaded")
    _check_reentered_anywhere(kind, call, action, size, _pending_work_points)
