"""stats() counters, pickling, copying, repr and __sizeof__."""

import asyncio
import copy
import copyreg
import pickle
import random
import sys
import threading
from array import array
from types import SimpleNamespace

import pytest

import flowreg
from flowreg import FlowExists, FlowNotFound

COUNTERS = ("lookups", "hits", "misses", "hot_hits", "inserts", "deletes", "resizes")
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def expected_capacity(n):
    """Ids the smallest table holding n ids can take: 16 slots or more, at most 1/4 full
    up to 2**16 slots and 1/2 full above (so capacities jump from 2**14 to 2**16)."""
    bits = 4
    while (2**bits // 4 if bits <= 16 else 2**bits // 2) < n:
        bits += 1
    return 2**bits // 4 if bits <= 16 else 2**bits // 2


def test_expected_capacity_has_the_policy_jump():
    # literal figures, so that a wrong threshold in the helper and the code cannot agree
    sizes = (0, 4, 5, 1000, 16384, 16385, 65536, 65537)
    assert [expected_capacity(n) for n in sizes] == [4, 4, 8, 1024, 16384, 65536, 65536, 131072]


def counts(reg, *names):
    stats = reg.stats()
    return tuple(stats[name] for name in names)


@pytest.fixture(params=["int", "pair"])
def flavor(request, Registry, PairRegistry):
    if request.param == "int":
        return SimpleNamespace(cls=Registry, k=lambda i: i)
    return SimpleNamespace(cls=PairRegistry, k=lambda i: (i, -i))


# Unpickling builds whatever flowreg.FlowRegistry is: these tests set it (monkeypatch) for the
# whole process, so threads running them at once would load each other's implementation.
MONKEYPATCHES = pytest.mark.thread_unsafe(reason="monkeypatches flowreg.FlowRegistry for the process")


@pytest.fixture
def selected(impl, monkeypatch):
    """Make the implementation under test the one flowreg exports (what unpickling builds)."""
    monkeypatch.setattr(flowreg, "FlowRegistry", impl.FlowRegistry)
    monkeypatch.setattr(flowreg, "PairFlowRegistry", impl.PairFlowRegistry)
    return impl


# --- stats()


def test_fresh_stats(flavor):
    assert flavor.cls().stats() == {
        "size": 0,
        "capacity": 4,
        "lookups": 0,
        "hits": 0,
        "misses": 0,
        "hot_hits": 0,
        "inserts": 0,
        "deletes": 0,
        "resizes": 0,
        "resets": 0,
    }


def test_lookup_counting(Registry):
    reg = Registry({1: "a", 2: "b"})
    reg[1] = "A"  # a replacement: not an insert, not a lookup
    assert reg[1] == "A"  # hit
    with pytest.raises(FlowNotFound):
        reg[3]  # miss
    reg.get(2)  # hit
    reg.get(3)  # miss
    reg.get("x")  # miss
    assert 1 in reg  # hit
    assert "x" not in reg  # miss
    reg.switch_flow(1)  # hit
    reg.switch_flow(1)  # hit, hot
    with pytest.raises(FlowNotFound):
        reg.switch_flow(9)  # miss
    assert counts(reg, "lookups", "hits", "misses", "hot_hits") == (10, 5, 5, 1)
    reg.get_many([1, 2, 3], default=None)  # 2 hits, 1 miss
    with pytest.raises(FlowNotFound):
        reg.get_many([1, 3, 2, 4])  # counted up to the first miss: 1 hit, 1 miss
    reg.contains_many([1, 3, 2])  # 2 hits, 1 miss
    reg.contains_many(array("q", [1, 5]))  # 1 hit, 1 miss
    assert counts(reg, "lookups", "hits", "misses") == (20, 11, 9)
    reg.get_or_create(1, str)  # hit
    reg.get_or_create(7, str)  # miss (and an insert)

    async def make(fid):
        return f"async {fid}"

    asyncio.run(reg.aget_or_create(1, make))  # hit
    asyncio.run(reg.aget_or_create(8, make))  # miss (and an insert)
    assert reg.stats() == {
        "size": 4,
        "capacity": 4,
        "lookups": 24,
        "hits": 13,
        "misses": 11,
        "hot_hits": 1,
        "inserts": 4,
        "deletes": 0,
        "resizes": 0,
        "resets": 0,
    }


def test_get_many_without_default_counts_every_id_when_all_present(Registry):
    reg = Registry.fromkeys(range(10))
    reg.get_many(array("q", range(10)))
    reg.get_many(list(range(5)))
    assert counts(reg, "lookups", "hits", "misses") == (15, 15, 0)
    with pytest.raises(FlowNotFound):
        reg.get_many(array("q", [50, 1, 2]))
    assert counts(reg, "lookups", "hits", "misses") == (16, 15, 1)


def test_operations_that_are_not_lookups(flavor):
    k = flavor.k
    reg = flavor.cls({k(1): "a", k(2): "b", k(3): "c"})
    other = flavor.cls({k(1): "a"})
    reg.setdefault(k(1))
    reg.setdefault(k(4))
    reg.update({k(5): "e"})
    reg.create_flow(k(6), "f")
    with pytest.raises(FlowExists):
        reg.create_flow(k(6), "f")
    reg.pop(k(6))
    reg.pop(k(6), None)
    del reg[k(5)]
    reg.delete_flow(k(4))
    reg.delete_many([k(3), k(9)])
    reg.popitem()
    reg[k(7)] = "g"
    list(reg), list(reg.keys()), list(reg.values()), list(reg.items()), list(reversed(reg))
    len(reg), repr(reg), reg.ids(), reg.snapshot(), reg.copy(), pickle.dumps(reg)
    assert reg != other
    assert counts(reg, "lookups", "hits", "misses", "hot_hits") == (0, 0, 0, 0)


def test_insert_and_delete_counting(flavor):
    k = flavor.k
    reg = flavor.cls()
    reg[k(1)] = "a"
    reg[k(1)] = "b"  # replacement
    reg.setdefault(k(2))
    reg.setdefault(k(2))  # present
    reg.create_flow(k(3), "c")
    with pytest.raises(FlowExists):
        reg.create_flow(k(3), "c")
    reg.update({k(3): "C", k(4): "d", k(5): "e"})  # 2 new
    reg.update([(k(6), 1), (k(6), 2)])  # 1 new
    reg |= {k(7): "g"}
    with pytest.raises(TypeError):
        reg.update([(k(8), "h"), ("bad", "i")])  # atomic: nothing counted
    reg.get_or_create(k(8), lambda fid: "h")
    assert counts(reg, "size", "inserts", "deletes") == (8, 8, 0)
    del reg[k(1)]
    reg.pop(k(2))
    reg.pop(k(2), None)  # absent
    reg.popitem()
    reg.delete_flow(k(3))
    with pytest.raises(FlowNotFound):
        reg.delete_flow(k(3))
    assert reg.delete_many([k(4), k(4), k(99), "x"]) == 1
    assert counts(reg, "size", "inserts", "deletes") == (3, 8, 5)
    reg.clear()  # counts every id it removed
    assert counts(reg, "size", "inserts", "deletes") == (0, 8, 8)
    reg.clear()
    assert counts(reg, "deletes") == (8,)


def test_constructors_count_inserts(flavor):
    k = flavor.k
    assert flavor.cls.fromkeys([k(1), k(2), k(2), k(3)]).stats()["inserts"] == 3
    assert flavor.cls([(k(1), 1), (k(1), 2)]).stats()["inserts"] == 1
    reg = flavor.cls({k(1): 1, k(2): 2})
    reg.get(k(1))
    dup = reg.copy()
    assert counts(dup, "inserts", "lookups", "size") == (2, 0, 2)


# --- hot_hits


def test_hot_hits_repeat_of_last_switch(flavor):
    k = flavor.k
    reg = flavor.cls.fromkeys([k(1), k(2), k(3)], "v")
    s = reg.switch_flow
    s(k(1))
    s(k(1))
    assert counts(reg, "hot_hits", "hits") == (1, 2)
    s(k(2))
    s(k(2))
    s(k(1))
    assert counts(reg, "hot_hits") == (2,)
    reg[k(2)], reg.get(k(2)), k(2) in reg, reg.get_many([k(2)]), reg.contains_many([k(3)])
    s(k(1))  # other kinds of lookup do not change the hot id
    assert counts(reg, "hot_hits") == (3,)
    with pytest.raises(FlowNotFound):
        s(k(99))  # a miss does not change it either
    with pytest.raises(FlowNotFound):
        s("x")
    s(k(1))
    assert counts(reg, "hot_hits") == (4,)
    reg[k(1)] = "new value"  # a replacement is not a delete
    assert s(k(1)) == "new value"
    assert counts(reg, "lookups", "hits", "misses", "hot_hits") == (15, 13, 2, 5)


def test_hot_id_survives_being_moved(flavor):
    k = flavor.k
    reg = flavor.cls.fromkeys([k(1), k(2), k(3), k(4)], "v")
    reg.switch_flow(k(4))
    del reg[k(1)]  # 4 moves into the hole at the front
    assert next(iter(reg)) == k(4)
    reg.switch_flow(k(4))
    assert counts(reg, "hot_hits") == (1,)
    reg[k(5)] = "v"
    reg.delete_many([k(2), k(3)])
    reg.popitem()
    assert reg.switch_flow(k(4)) == "v"
    assert counts(reg, "hot_hits") == (2,)


REMOVALS = {
    "del": lambda r, key: r.__delitem__(key),
    "pop": lambda r, key: r.pop(key),
    "delete_flow": lambda r, key: r.delete_flow(key),
    "delete_many": lambda r, key: r.delete_many([key]),
    "popitem": lambda r, key: r.popitem(),
    "clear": lambda r, key: r.clear(),
}


@pytest.mark.parametrize("remove", REMOVALS.values(), ids=REMOVALS.keys())
def test_hot_id_forgotten_after_delete(flavor, remove):
    k = flavor.k
    reg = flavor.cls.fromkeys([k(2), k(1)], "v")  # k(1) is last: what popitem takes
    reg.switch_flow(k(1))
    remove(reg, k(1))
    assert k(1) not in reg
    reg[k(1)] = "again"
    assert reg.switch_flow(k(1)) == "again"
    assert counts(reg, "hot_hits") == (0,)
    reg.switch_flow(k(1))
    assert counts(reg, "hot_hits") == (1,)


# --- capacity and resizes


def test_growth_one_insert_at_a_time(flavor):
    reg, resizes, capacity = flavor.cls(), 0, 4
    for i in range(1, 301):
        reg[flavor.k(i)] = i
        if expected_capacity(i) != capacity:
            capacity, resizes = expected_capacity(i), resizes + 1
        assert counts(reg, "size", "capacity", "resizes") == (i, capacity, resizes)
    assert counts(reg, "capacity", "resizes") == (512, 7)
    reg.delete_many([flavor.k(i) for i in range(1, 291)])
    assert counts(reg, "size", "capacity") == (10, 512)  # deleting never shrinks
    reg.clear()
    assert counts(reg, "size", "capacity", "resizes") == (0, 4, 7)
    for i in range(5):
        reg[flavor.k(i)] = i
    assert counts(reg, "capacity", "resizes") == (8, 8)


@pytest.mark.parametrize("n", [0, 1, 4, 5, 100, 1000, 5000, 16384, 16385, 65536, 65537])
def test_capacity_presizes(flavor, n):
    reg = flavor.cls(capacity=n)
    assert counts(reg, "size", "capacity") == (0, expected_capacity(n))
    resizes = reg.stats()["resizes"]
    for i in range(n):
        reg[flavor.k(i)] = i
    assert counts(reg, "size", "capacity", "resizes") == (n, expected_capacity(n), resizes)
    reg[flavor.k(-1)] = "one more"
    grew = expected_capacity(n + 1) != expected_capacity(n)
    assert counts(reg, "capacity", "resizes") == (expected_capacity(n + 1), resizes + grew)


def test_bulk_update_grows_to_fit(flavor):
    reg = flavor.cls()
    reg.update((flavor.k(i), i) for i in range(100))
    assert counts(reg, "size", "capacity") == (100, 128)
    assert 1 <= reg.stats()["resizes"] <= 5
    big = flavor.cls((flavor.k(i), i) for i in range(1000))
    assert counts(big, "size", "capacity") == (1000, 1024)


def test_reset_stats(flavor):
    k = flavor.k
    reg = flavor.cls()
    for i in range(20):
        reg[k(i)] = i
    reg.switch_flow(k(1))
    reg.switch_flow(k(1))
    reg.get(k(99))
    del reg[k(3)]
    before = reg.stats()
    assert all(before[name] for name in COUNTERS)
    reg.reset_stats()
    after = reg.stats()
    assert {name: after[name] for name in COUNTERS} == dict.fromkeys(COUNTERS, 0)
    assert (after["size"], after["capacity"]) == (before["size"], before["capacity"]) == (19, 32)
    assert (before["resets"], after["resets"]) == (0, 1)  # counts the resets: never zeroed
    reg.get(k(1))
    assert counts(reg, "lookups", "hits") == (1, 1)
    reg.reset_stats()
    reg.reset_stats()
    assert counts(reg, "lookups", "hits", "resets") == (0, 0, 3)


@pytest.mark.parametrize("pair", [False, True], ids=["int", "pair"])
def test_both_implementations_count_identically(both, pair):
    name = "PairFlowRegistry" if pair else "FlowRegistry"
    regs = [getattr(both[impl], name)() for impl in ("c", "py")]
    rng = random.Random(99)
    k = (lambda i: (i, i % 3)) if pair else (lambda i: i)

    def step(reg, op, key, keys, coin):
        if op == 0:
            reg[key] = op
        elif op == 1:
            return reg.get(key)
        elif op == 2:
            return reg.pop(key, None)
        elif op == 3:
            try:
                return reg.switch_flow(key)
            except FlowNotFound as err:
                return ("missing", err.args[0])
        elif op == 4:
            return reg.contains_many(keys)
        elif op == 5:
            return reg.delete_many(keys)
        elif op == 6:
            try:
                return reg.get_many(keys)
            except FlowNotFound as err:
                return ("missing", err.args[0])
        elif op == 7:
            reg.update((other, op) for other in keys)
        elif op == 8:
            return reg.setdefault(key, "d")
        elif op == 9 and len(reg):
            return reg.popitem()
        elif op == 10:
            return key in reg
        elif op == 11 and coin < 0.05:
            reg.clear()
        return None

    for _ in range(3000):
        op, key = rng.randrange(12), k(rng.randrange(80))
        keys = [k(rng.randrange(80)) for _ in range(rng.randrange(6))]
        coin = rng.random()
        results = [step(reg, op, key, keys, coin) for reg in regs]
        assert results[0] == results[1]
        assert regs[0].stats() == regs[1].stats()
        assert list(regs[0].items()) == list(regs[1].items())
    assert regs[0].stats()["lookups"] > 0
    assert regs[0].stats()["hot_hits"] > 0


# --- pickle


def shuffled(flavor):
    """A registry whose dense order is not its insertion or sorted order."""
    reg = flavor.cls.fromkeys([flavor.k(i) for i in range(10)])
    for i in (2, 7, 0):
        del reg[flavor.k(i)]
    for i, key in enumerate(reg):
        reg[key] = [i]
    return reg


@MONKEYPATCHES
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pickle_round_trip(selected, flavor, protocol):
    reg = shuffled(flavor)
    loaded = pickle.loads(pickle.dumps(reg, protocol))
    assert type(loaded) is flavor.cls
    assert list(loaded.items()) == list(reg.items())
    assert loaded.stats()["size"] == len(reg)
    empty = pickle.loads(pickle.dumps(flavor.cls(), protocol))
    assert type(empty) is flavor.cls
    assert len(empty) == 0


@MONKEYPATCHES
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pickle_shared_and_self_references(selected, Registry, protocol):
    shared = ["shared"]
    reg = Registry({1: shared, 2: shared})
    reg[3] = reg
    loaded = pickle.loads(pickle.dumps(reg, protocol))
    assert loaded[1] is loaded[2]
    assert loaded[1] == ["shared"]
    assert loaded[3] is loaded
    assert list(loaded) == [1, 2, 3]


@MONKEYPATCHES
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize(("made_by", "loaded_by"), [("c", "py"), ("py", "c"), ("c", "c"), ("py", "py")])
@pytest.mark.parametrize("name", ["FlowRegistry", "PairFlowRegistry"])
def test_pickle_loads_under_the_other_implementation(both, monkeypatch, name, made_by, loaded_by, protocol):
    k = (lambda i: (i, 2 * i)) if name == "PairFlowRegistry" else (lambda i: i)
    reg = getattr(both[made_by], name).fromkeys([k(i) for i in range(6)], "v")
    del reg[k(1)]
    reg[k(3)] = {"state": 3}
    data = pickle.dumps(reg, protocol)
    assert b"_registry_py" not in data
    assert b"flowreg._registry" not in data
    target = getattr(both[loaded_by], name)
    monkeypatch.setattr(flowreg, name, target)
    loaded = pickle.loads(data)
    assert type(loaded) is target
    assert list(loaded.items()) == list(reg.items())
    assert list(loaded) == [k(0), k(5), k(2), k(3), k(4)]


_SUBCLASS_LOCK = threading.Lock()


def make_subclass(base, kind="Sub", **body):
    """A subclass pickle can find: a global of this module, named after kind and base.

    Made once under a lock: threads running a test at once (pytest-run-parallel) must all get
    the class pickle finds, not each a class of their own that replaces the others'."""
    name = f"{kind}{base.__name__}_{base.__module__.replace('.', '_')}"
    with _SUBCLASS_LOCK:
        if name not in globals():
            globals()[name] = type(name, (base,), {"__module__": __name__, "__qualname__": name, **body})
        return globals()[name]


def duplicates(reg):
    """reg pickled with every protocol, copy.copy(reg) and copy.deepcopy(reg)."""
    yield from (pickle.loads(pickle.dumps(reg, protocol)) for protocol in PROTOCOLS)
    yield copy.copy(reg)
    yield copy.deepcopy(reg)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subclass_pickle_keeps_class_and_dict(flavor, protocol):
    Sub = make_subclass(flavor.cls)
    reg = Sub(shuffled(flavor))
    reg.label = "mine"
    reg.extra = {"n": 1}
    loaded = pickle.loads(pickle.dumps(reg, protocol))
    assert type(loaded) is Sub
    assert loaded.label == "mine"
    assert loaded.extra == {"n": 1}
    assert list(loaded.items()) == list(reg.items())


def test_subclass_slots_are_kept(flavor):
    # its own slots (mangled names too), as for a dict subclass; never the fallback's internal ones
    Slotted = make_subclass(flavor.cls, "Slotted", __slots__=("tag", "__secret", "unset", "__dict__"))
    secret = f"_{Slotted.__name__}__secret"
    reg = Slotted(shuffled(flavor))
    reg.tag = "T"
    setattr(reg, secret, "S")
    reg.label = "L"
    state = ({"label": "L"}, {"tag": "T", secret: "S"})
    assert reg.__reduce_ex__(2)[2] == state
    if sys.version_info >= (3, 11):  # what an override's super().__getstate__() gets
        assert object.__getstate__(reg) == state
    for dup in duplicates(reg):
        assert type(dup) is Slotted
        assert (dup.tag, getattr(dup, secret), dup.label) == ("T", "S", "L")
        assert not hasattr(dup, "unset")
        assert list(dup.items()) == list(reg.items())


def _state_without_lock(self):
    return {name: value for name, value in vars(self).items() if name != "lock"}


def _state_with_new_lock(self, state):
    vars(self).update(state, lock=threading.Lock())


def test_subclass_getstate_and_setstate_are_used(flavor):
    Locked = make_subclass(
        flavor.cls, "Locked", __getstate__=_state_without_lock, __setstate__=_state_with_new_lock
    )
    Trimmed = make_subclass(flavor.cls, "Trimmed", __getstate__=_state_without_lock)
    for cls in (Locked, Trimmed):
        reg = cls(shuffled(flavor))
        reg.lock = threading.Lock()  # cannot be pickled or copied
        reg.label = "L"
        for dup in duplicates(reg):
            assert type(dup) is cls
            assert dup.label == "L"
            assert list(dup.items()) == list(reg.items())
            if cls is Locked:
                assert type(dup.lock) is type(reg.lock) and dup.lock is not reg.lock
            else:
                assert not hasattr(dup, "lock")


def test_subclass_copies_do_not_call_init(flavor):
    # as for a dict subclass: the class's __new__, then its state and items; copy() alone
    # is type(self)(self)
    k, base = flavor.k, flavor.cls

    def named_init(self, name, items=()):
        base.__init__(self, items)
        self.name = name

    def seeded_init(self, *args):
        base.__init__(self, *args)
        self.setdefault(k(0), "seed")

    named = make_subclass(base, "Named", __init__=named_init)("n", {k(1): "a"})
    for dup in duplicates(named):
        assert (type(dup), dup.name, list(dup.items())) == (type(named), "n", [(k(1), "a")])
    seeded = make_subclass(base, "Seeded", __init__=seeded_init)({k(1): "a"})
    del seeded[k(0)]
    for dup in duplicates(seeded):
        assert list(dup.items()) == [(k(1), "a")]
    assert list(seeded.copy().items()) == [(k(1), "a"), (k(0), "seed")]


# --- copy


def test_copy_copy(flavor):
    reg = shuffled(flavor)
    dup = copy.copy(reg)
    assert type(dup) is flavor.cls
    assert dup is not reg
    assert list(dup.items()) == list(reg.items())
    assert all(dup[key] is value for key, value in reg.items())
    dup.popitem()
    assert len(reg) == len(dup) + 1


def test_copy_deepcopy(flavor):
    reg = shuffled(flavor)
    dup = copy.deepcopy(reg)
    assert type(dup) is flavor.cls
    assert list(dup.items()) == list(reg.items())
    assert all(dup[key] is not value for key, value in reg.items())  # the lists were copied


def test_deepcopy_self_reference(Registry):
    reg = Registry({1: "a"})
    reg[2] = reg
    reg[3] = [reg]
    dup = copy.deepcopy(reg)
    assert dup is not reg
    assert dup[2] is dup
    assert dup[3][0] is dup
    assert list(dup) == [1, 2, 3]
    holder = copy.deepcopy([reg, reg])
    assert holder[0] is holder[1]


def test_subclass_copy_and_deepcopy(flavor):
    Sub = make_subclass(flavor.cls)
    reg = Sub({flavor.k(1): ["a"]})
    reg.label = "mine"
    shallow = copy.copy(reg)
    assert type(shallow) is Sub
    assert shallow.label == "mine"  # as copy.copy of a dict subclass's instance
    assert shallow[flavor.k(1)] is reg[flavor.k(1)]
    deep = copy.deepcopy(reg)
    assert type(deep) is Sub
    assert deep.label == "mine"
    assert deep[flavor.k(1)] == ["a"]


class _ReduceMixin:
    """Its __reduce__ (and __reduce_ex__ below) come before the registry's in a subclass's MRO."""

    def __reduce__(self):
        return _reduced(self, "mixin __reduce__")


def _reduced(obj, how, *args):
    """What the overrides below return: obj rebuilt with a mark, its items and one item more."""
    obj.calls.append((how, args))
    items = list(dict.items(obj)) if isinstance(obj, dict) else obj.snapshot()
    return (type(obj), (), {"via": how, "shared": obj.shared}, None, iter([*items, (obj.extra, ["added"])]))


def _reduce_ex(self, protocol):
    return _reduced(self, "__reduce_ex__", protocol)


def _reduce(self):
    return _reduced(self, "__reduce__")


def _reduce_to_a_name(self):
    self.calls.append(("global name", ()))
    return "a_global"  # copy and deepcopy return the object itself


REDUCE_OVERRIDES = {
    "__reduce_ex__": lambda bases: type("Sub", bases, {"__reduce_ex__": _reduce_ex}),
    "__reduce__": lambda bases: type("Sub", bases, {"__reduce__": _reduce}),
    "both": lambda bases: type("Sub", bases, {"__reduce__": _reduce, "__reduce_ex__": _reduce_ex}),
    "mixin": lambda bases: type("Sub", (_ReduceMixin, *bases), {}),
    "global name": lambda bases: type("Sub", bases, {"__reduce__": _reduce_to_a_name}),
    "copyreg": lambda bases: type("Sub", bases, {}),  # copyreg.pickle(Sub, ...) below
}


def _copies_of(cls, k, monkeypatch, how):
    if how == "copyreg":
        monkeypatch.setitem(copyreg.dispatch_table, cls, lambda obj: _reduced(obj, "copyreg"))
    obj = cls({k(1): ["a"]})
    obj.calls, obj.shared, obj.extra = [], ["shared"], k(9)
    outcome = []
    for copier in (copy.copy, copy.deepcopy):
        dup = copier(obj)
        outcome.append(
            (
                type(dup) is cls,
                dup is obj,
                list(dup.items()),
                {name: value for name, value in vars(dup).items() if name != "calls"},
                dup[k(1)] is obj[k(1)],
                getattr(dup, "shared", None) is obj.shared,
                obj.calls,
            )
        )
        obj.calls = []
    return outcome


@pytest.mark.parametrize("how", REDUCE_OVERRIDES.keys())
def test_subclass_copies_use_its_own_reduce(flavor, monkeypatch, how):
    # copy.copy and copy.deepcopy of a dict subclass's instance use its __reduce_ex__ (object's
    # calls an overridden __reduce__) or a copyreg entry for its class: a registry subclass's too
    k = flavor.k
    expected = _copies_of(REDUCE_OVERRIDES[how]((dict,)), k, monkeypatch, how)
    got = _copies_of(REDUCE_OVERRIDES[how]((flavor.cls,)), k, monkeypatch, how)
    assert got == expected


NEW_ARGS = {
    "__getnewargs__": lambda self: (self.name,),
    "__getnewargs_ex__": lambda self: ((self.name,), {"size": 3}),
    "bad __getnewargs__": lambda self: [self.name],
    "bad __getnewargs_ex__": lambda self: ((self.name,), [("size", 3)]),
}


@pytest.mark.parametrize("how", NEW_ARGS)
def test_subclass_new_gets_its_getnewargs(flavor, how):
    # copy and pickle (protocol 4 on, which keeps keyword arguments) pass what a dict
    # subclass's __getnewargs(_ex)__ returns to its __new__: a registry subclass's too
    k = flavor.k

    def __new__(cls, name, *args, size=0, **kwargs):
        cls.calls.append((name, size))
        return super(cls, cls).__new__(cls)

    def __init__(self, name, items=(), *, size=0):
        super(type(self), self).__init__(items)
        self.name = name

    def copies(base):
        kind = "NewArgs" + how.replace(" ", "_").strip("_")
        body = {"__new__": __new__, "__init__": __init__, "calls": [], how.split()[-1]: NEW_ARGS[how]}
        Sub = make_subclass(base, kind, **body)
        reg = Sub("n", {k(1): "a"})
        Sub.calls = []
        dups = [copy.copy(reg), copy.deepcopy(reg), *(pickle.loads(pickle.dumps(reg, p)) for p in (4, 5))]
        return [(type(dup) is Sub, dup.name, list(dup.items())) for dup in dups], Sub.calls, reg

    if how.startswith("bad"):
        for base in (dict, flavor.cls):
            with pytest.raises(TypeError):
                copies(base)
        return
    got, calls, reg = copies(flavor.cls)
    assert (got, calls) == copies(dict)[:2]
    assert calls == [("n", 3 if how.endswith("_ex__") else 0)] * 4
    # pickle saves keyword arguments at protocols 2 and 3 as a partial of cls.__new__, for a
    # dict subclass too: here a local function, which cannot be pickled
    protocols = [p for p in PROTOCOLS if p not in (2, 3)] if how.endswith("_ex__") else PROTOCOLS
    for protocol in protocols:
        dup = pickle.loads(pickle.dumps(reg, protocol))
        assert (type(dup), dup.name, list(dup.items())) == (type(reg), "n", [(k(1), "a")])


def test_subclass_copies_and_pickles_read_its_own_items(flavor):
    # a dict subclass's copies and pickles (from protocol 2 on: 0 and 1 copy the dict itself)
    # take its items through its own items()
    k = flavor.k

    def items(self):
        return [(key, value) for key, value in super(type(self), self).items() if key != k(2)]

    def copies(base):
        Sub = make_subclass(base, f"OwnItems{flavor.cls.__name__}", items=items)  # k differs
        reg = Sub({k(1): "a", k(2): "b", k(3): "c"})
        dups = [copy.copy(reg), copy.deepcopy(reg)]
        dups += [pickle.loads(pickle.dumps(reg, protocol)) for protocol in PROTOCOLS if protocol >= 2]
        return [sorted(dict.items(dup) if base is dict else dup.snapshot()) for dup in dups]

    assert copies(flavor.cls) == copies(dict) == [[(k(1), "a"), (k(3), "c")]] * (len(PROTOCOLS) - 2 + 2)


def test_copies_store_items_as_pickle_does(flavor):
    # pickle, copy.copy and copy.deepcopy all store a subclass's items through its __setitem__,
    # as they do a dict subclass's
    def __setitem__(self, key, value):
        flavor.cls.__setitem__(self, key, value.upper())

    Upper = make_subclass(flavor.cls, "Upper", __setitem__=__setitem__)
    reg = Upper()
    flavor.cls.__setitem__(reg, flavor.k(1), "a")  # stored as is
    assert [dict(dup) for dup in duplicates(reg)] == [{flavor.k(1): "A"}] * (len(PROTOCOLS) + 2)


# --- repr


def test_repr(Registry, PairRegistry):
    assert repr(Registry()) == "FlowRegistry({})"
    assert repr(PairRegistry()) == "PairFlowRegistry({})"
    assert repr(Registry({1: "a", -2: None, 2**63 - 1: 1.5})) == (
        "FlowRegistry({1: 'a', -2: None, 9223372036854775807: 1.5})"
    )
    assert repr(PairRegistry({(1, 2): "a", (-3, 4): [5]})) == "PairFlowRegistry({(1, 2): 'a', (-3, 4): [5]})"


def test_repr_follows_dense_order(Registry):
    reg = Registry.fromkeys([1, 2, 3], 0)
    del reg[1]
    assert repr(reg) == "FlowRegistry({3: 0, 2: 0})"


def test_repr_nested_and_recursive(Registry, PairRegistry):
    inner = PairRegistry({(1, 2): "x"})
    outer = Registry({1: inner, 2: Registry()})
    assert repr(outer) == "FlowRegistry({1: PairFlowRegistry({(1, 2): 'x'}), 2: FlowRegistry({})})"
    reg = Registry({1: "a"})
    reg[2] = reg
    assert repr(reg) == "FlowRegistry({1: 'a', 2: FlowRegistry({...})})"
    a, b = Registry(), Registry()
    a[1], b[1] = b, a
    assert repr(a) == "FlowRegistry({1: FlowRegistry({1: FlowRegistry({...})})})"
    inner[(0, 0)] = [inner, outer]
    assert repr(inner) == (
        "PairFlowRegistry({(1, 2): 'x', (0, 0): [PairFlowRegistry({...}), "
        "FlowRegistry({1: PairFlowRegistry({...}), 2: FlowRegistry({})})]})"
    )


def test_repr_of_subclass_uses_its_name(flavor):
    class Custom(flavor.cls):
        pass

    assert repr(Custom({flavor.k(1): 1})) == f"Custom({{{flavor.k(1)!r}: 1}})"


# --- __sizeof__


def test_sizeof_grows_with_size(flavor):
    reg = flavor.cls()
    sizes = [sys.getsizeof(reg)]
    for n in (10, 1000, 20000):
        reg.update((flavor.k(i), None) for i in range(n))
        sizes.append(sys.getsizeof(reg))
    assert sizes == sorted(sizes)
    assert sizes[0] < sizes[2] < sizes[3]
    assert sizes[3] - sizes[0] >= 20000 * 8  # at least an id's worth of bytes per entry
    assert reg.__sizeof__() > 0
