"""create_flow / switch_flow / delete_flow, and which objects are ids (reads vs writes)."""

import threading
from collections import namedtuple
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction

import pytest

from flowreg import FlowExists, FlowNotFound, FlowRegistryError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Color(IntEnum):
    RED = 1
    BLUE = 7


class Idx:
    """Not an int, but usable as one through __index__."""

    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return f"Idx({self.value})"


class BadIndex:
    """__index__ fails with an error that is not "this is not an int"."""

    def __index__(self):
        raise ValueError("boom from __index__")


class NotAnIndex:
    """__index__ raising TypeError: treated as "not an id"."""

    def __index__(self):
        raise TypeError("no")


Pair = namedtuple("Pair", "user session")


# Ids that cannot be stored (for int registries): never present on read, refused on write.
WRONG_TYPE = [1.0, 1.5, "1", b"1", None, Decimal(1), Fraction(1), 1j, [1], (1,), NotAnIndex()]
OUT_OF_RANGE = [INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**100)]
PAIR_WRONG_TYPE = [
    (),
    (1,),
    (1, 2, 3),
    [1, 2],
    "12",
    12,
    None,
    (1.0, 2),
    (1, "2"),
    (None, None),
    ((1, 2), 3),
    (1, NotAnIndex()),
]
PAIR_OUT_OF_RANGE = [(INT64_MAX + 1, 0), (0, INT64_MIN - 1), (2**64, 2**64)]


def raises_not_found(call, fid):
    with pytest.raises(FlowNotFound) as info:
        call()
    assert info.value.args[0] is fid
    assert info.value.fid is fid
    return info.value


# --- the verbs


def test_create_flow_returns_the_flow(Registry):
    reg, flow = Registry(), object()
    assert reg.create_flow(5, flow) is flow
    assert reg[5] is flow
    assert list(reg) == [5]


def test_create_flow_existing_raises_flowexists(Registry):
    reg = Registry({5: "old"})
    with pytest.raises(FlowExists) as info:
        reg.create_flow(5, "new")
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, FlowRegistryError)
    assert not isinstance(err, KeyError)
    assert err.args[0] == 5
    assert "5" in str(err)
    assert str(err) == "flow id 5 already exists"
    assert reg[5] == "old"
    assert len(reg) == 1


def test_create_flow_existing_reports_id_as_passed(Registry):
    reg = Registry({7: "old"})
    with pytest.raises(FlowExists) as info:
        reg.create_flow(Color.BLUE, "new")
    assert info.value.args[0] is Color.BLUE


def test_a_missing_id_raises_with_no_exception_behind_it(Registry):
    # as natively, the fallback's FlowNotFound has no __context__ (its own KeyError, before)
    reg = Registry({1: "a"})
    calls = [lambda: reg[2], lambda: reg.switch_flow(2), lambda: reg.delete_flow(2), lambda: reg.pop(2)]
    calls += [lambda: reg.get_many([2]), lambda: reg.switch_flow("x"), lambda: reg.__delitem__(2)]

    def contexts():
        found = []
        for call in calls:
            try:
                call()
            except FlowNotFound as exc:
                found.append(exc.__context__)
        return found

    # (in a new thread: an earlier test's tracer, raising at any opcode, can leave this
    # thread's handled exception set, which CPython's signal handlers cannot)
    result = []
    thread = threading.Thread(target=lambda: result.append(contexts()))
    thread.start()
    thread.join()
    assert result == [[None] * len(calls)]


def test_switch_flow(Registry):
    a, b = object(), object()
    reg = Registry({1: a, 2: b})
    assert reg.switch_flow(1) is a
    assert reg.switch_flow(1) is a
    assert reg.switch_flow(2) is b
    assert reg.switch_flow(1) is a


@pytest.mark.parametrize("fid", [3, Color.BLUE, True, Idx(42), "x", 1.0, INT64_MAX + 1])
def test_switch_flow_missing(Registry, fid):
    reg = Registry({5: "e"})
    err = raises_not_found(lambda: reg.switch_flow(fid), fid)
    assert isinstance(err, KeyError)
    assert isinstance(err, FlowRegistryError)


def test_switch_flow_after_delete(Registry):
    reg = Registry({1: "a", 2: "b"})
    assert reg.switch_flow(1) == "a"
    del reg[1]
    with pytest.raises(FlowNotFound):
        reg.switch_flow(1)
    reg[1] = "A"
    assert reg.switch_flow(1) == "A"


def test_switch_flow_sees_replaced_and_moved_flows(Registry):
    reg = Registry({1: "a", 2: "b", 3: "c"})
    assert reg.switch_flow(3) == "c"
    reg[3] = "C"
    assert reg.switch_flow(3) == "C"
    del reg[1]  # 3 moves into the hole
    assert reg.switch_flow(3) == "C"
    assert reg.switch_flow(2) == "b"
    reg.clear()
    reg[2] = "new"
    assert reg.switch_flow(2) == "new"


def test_delete_flow(Registry):
    flow = object()
    reg = Registry({1: "a", 2: flow})
    assert reg.delete_flow(2) is flow
    assert 2 not in reg
    raises_not_found(lambda: reg.delete_flow(2), 2)
    assert list(reg.items()) == [(1, "a")]


def test_verbs_on_pairs(PairRegistry):
    reg, flow = PairRegistry(), object()
    assert reg.create_flow((1, 2), flow) is flow
    with pytest.raises(FlowExists) as info:
        reg.create_flow((1, 2), "other")
    assert info.value.args[0] == (1, 2)
    assert reg.switch_flow((1, 2)) is flow
    assert reg.switch_flow(Pair(1, 2)) is flow
    assert reg.delete_flow((1, 2)) is flow
    key = (1, 2)
    raises_not_found(lambda: reg.switch_flow(key), key)
    raises_not_found(lambda: reg.delete_flow(key), key)


# --- not-found messages

READS_THAT_RAISE = {
    "getitem": lambda r, fid: r[fid],
    "switch_flow": lambda r, fid: r.switch_flow(fid),
    "delitem": lambda r, fid: r.__delitem__(fid),
    "delete_flow": lambda r, fid: r.delete_flow(fid),
    "pop": lambda r, fid: r.pop(fid),
}


@pytest.mark.parametrize("read", READS_THAT_RAISE.values(), ids=READS_THAT_RAISE.keys())
def test_not_found_messages(Registry, read):
    reg = Registry({1: "a"})
    assert str(raises_not_found(lambda: read(reg, 5), 5)) == "flow id 5 not found"
    fid = "x"
    err = raises_not_found(lambda: read(reg, fid), fid)
    assert str(err) == "flow id 'x' not found: flow ids are int64 integers"
    big = INT64_MAX + 1
    err = raises_not_found(lambda: read(reg, big), big)
    assert str(err) == f"flow id {big} not found: flow ids are int64 integers"
    assert len(reg) == 1


@pytest.mark.parametrize("read", READS_THAT_RAISE.values(), ids=READS_THAT_RAISE.keys())
def test_pair_not_found_messages(PairRegistry, read):
    reg = PairRegistry({(1, 2): "a"})
    key = (2, 1)
    assert str(raises_not_found(lambda: read(reg, key), key)) == "flow id (2, 1) not found"
    key = (1,)
    err = raises_not_found(lambda: read(reg, key), key)
    assert str(err) == "flow id (1,) not found: flow ids are (int64, int64) tuples"
    assert len(reg) == 1


# --- ids equal to an int


EQUIVALENT_IDS = {
    "bool": (True, 1),
    "intenum": (Color.BLUE, 7),
    "index": (Idx(9), 9),
    "negative-index": (Idx(-3), -3),
    "int64-min": (INT64_MIN, INT64_MIN),
    "int64-max": (INT64_MAX, INT64_MAX),
    "index-max": (Idx(INT64_MAX), INT64_MAX),
}


@pytest.mark.parametrize(("fid", "value"), EQUIVALENT_IDS.values(), ids=EQUIVALENT_IDS.keys())
def test_index_ids_write_as_plain_ints(Registry, fid, value):
    reg = Registry()
    reg[fid] = "x"
    (stored,) = list(reg)
    assert stored == value
    assert type(stored) is int
    assert reg[value] == "x"
    assert reg.popitem() == (value, "x")
    for write in (
        lambda: reg.setdefault(fid, "x"),
        lambda: reg.create_flow(fid, "x"),
        lambda: reg.update([(fid, "x")]),
    ):
        write()
        assert list(reg.items()) == [(value, "x")]
        assert type(next(iter(reg))) is int
        reg.clear()
    assert list(Registry({fid: "x"})) == [value]
    assert list(Registry.fromkeys([fid])) == [value]
    assert reg.ids().tolist() == []


@pytest.mark.parametrize(("fid", "value"), EQUIVALENT_IDS.values(), ids=EQUIVALENT_IDS.keys())
def test_index_ids_read_plain_ints(Registry, fid, value):
    reg = Registry({value: "x"})
    assert fid in reg
    assert reg[fid] == "x"
    assert reg.get(fid) == "x"
    assert reg.switch_flow(fid) == "x"
    assert reg.get_many([fid]) == ["x"]
    assert reg.contains_many([fid]) == [True]
    assert reg.pop(fid) == "x"
    reg[value] = "y"
    assert reg.delete_flow(fid) == "y"
    reg[value] = "z"
    del reg[fid]
    assert not reg


NUMPY_INT_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intp"]


@pytest.mark.parametrize("dtype", NUMPY_INT_TYPES)
def test_numpy_integer_ids(Registry, dtype):
    np = pytest.importorskip("numpy")
    fid = np.dtype(dtype).type(100)
    reg = Registry()
    reg[fid] = "x"
    assert list(reg) == [100]
    assert type(next(iter(reg))) is int
    assert fid in reg
    assert reg[fid] == "x"
    assert reg.switch_flow(fid) == "x"
    assert reg.pop(fid) == "x"
    assert reg.create_flow(fid, "y") == "y"
    missing = np.dtype(dtype).type(5)
    raises_not_found(lambda: reg.switch_flow(missing), missing)


def test_numpy_extreme_values(Registry):
    np = pytest.importorskip("numpy")
    reg = Registry()
    reg[np.int64(INT64_MIN)] = "lo"
    reg[np.int64(INT64_MAX)] = "hi"
    assert list(reg.items()) == [(INT64_MIN, "lo"), (INT64_MAX, "hi")]
    too_big = np.uint64(2**63)
    with pytest.raises(OverflowError):
        reg[too_big] = "x"
    assert too_big not in reg
    assert reg.get(too_big) is None
    assert np.uint64(2**64 - 1) not in reg
    with pytest.raises(TypeError):
        reg[np.float64(1.0)] = "x"
    assert np.float64(1.0) not in reg
    assert np.array([1, 2]) not in reg
    assert len(reg) == 2


# --- ids that cannot be stored

WRITES = {
    "setitem": lambda r, fid: r.__setitem__(fid, "v"),
    "setdefault": lambda r, fid: r.setdefault(fid, "v"),
    "create_flow": lambda r, fid: r.create_flow(fid, "v"),
    "update": lambda r, fid: r.update([(fid, "v")]),
    "update-mapping": lambda r, fid: r.update({fid: "v"}) if _hashable(fid) else r.update([(fid, "v")]),
    "ior": lambda r, fid: r.__ior__([(fid, "v")]),
    "get_or_create": lambda r, fid: r.get_or_create(fid, lambda key: "v"),
    "fromkeys": lambda r, fid: type(r).fromkeys([fid]),
    "constructor": lambda r, fid: type(r)([(fid, "v")]),
}


def _hashable(obj):
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def check_absent_on_read(reg, fid):
    """Every read treats fid as absent; the registry is unchanged."""
    before = list(reg.items())
    assert fid not in reg
    assert reg.get(fid) is None
    assert reg.get(fid, "dflt") == "dflt"
    assert reg.pop(fid, "dflt") == "dflt"
    assert reg.get_many([fid], default=0) == [0]
    assert reg.contains_many([fid]) == [False]
    assert reg.delete_many([fid]) == 0
    keys = reg.keys()
    assert fid not in keys
    assert (fid, "a") not in reg.items()
    for read in READS_THAT_RAISE.values():
        err = raises_not_found(lambda read=read: read(reg, fid), fid)
        assert "int64" in str(err)
    raises_not_found(lambda: reg.get_many([fid]), fid)
    assert list(reg.items()) == before


def check_refused_on_write(reg, fid, exc):
    before = list(reg.items())
    for name, write in WRITES.items():
        with pytest.raises(exc):
            write(reg, fid)
        assert list(reg.items()) == before, name


@pytest.mark.parametrize("fid", WRONG_TYPE, ids=repr)
def test_wrong_type_ids(Registry, fid):
    reg = Registry({1: "a"})
    check_absent_on_read(reg, fid)
    check_refused_on_write(reg, fid, TypeError)


@pytest.mark.parametrize("fid", OUT_OF_RANGE, ids=repr)
def test_out_of_range_ids(Registry, fid):
    reg = Registry({1: "a", INT64_MAX: "max", INT64_MIN: "min"})
    check_absent_on_read(reg, fid)
    check_refused_on_write(reg, fid, OverflowError)
    check_refused_on_write(reg, Idx(fid), OverflowError)


def test_float_is_not_an_id_even_when_integral(Registry):
    reg = Registry({1: "a"})
    assert 1.0 not in reg
    assert 1 in reg
    with pytest.raises(FlowNotFound):
        reg[1.0]


def test_write_error_messages(Registry):
    reg = Registry()
    with pytest.raises(TypeError, match=r"^flow ids are ints, not 'str'$"):
        reg["x"] = 1
    with pytest.raises(OverflowError, match=r"^a flow id must fit in int64, got 9223372036854775808$"):
        reg[2**63] = 1
    with pytest.raises(TypeError, match=r"^flow ids are ints, and 'NotAnIndex'.__index__ raised TypeError$"):
        reg[NotAnIndex()] = 1


def test_index_raising_valueerror_propagates(Registry):
    reg = Registry({1: "a"})
    fid = BadIndex()
    operations = [
        *(lambda read=read: read(reg, fid) for read in READS_THAT_RAISE.values()),
        *(lambda write=write: write(reg, fid) for write in WRITES.values()),
        lambda: fid in reg,
        lambda: reg.get(fid),
        lambda: reg.pop(fid, None),
        lambda: reg.get_many([1, fid], default=None),
        lambda: reg.contains_many([fid]),
        lambda: reg.delete_many([1, fid]),
    ]
    for operation in operations:
        with pytest.raises(ValueError, match="boom from __index__"):
            operation()
    assert list(reg.items()) == [(1, "a")]


# --- PairFlowRegistry ids


def test_pair_ids_are_stored_as_plain_tuples_of_ints(PairRegistry):
    reg = PairRegistry()
    reg[Pair(Color.RED, Idx(5))] = "a"
    reg[(True, -1)] = "b"
    keys = list(reg)
    assert keys == [(1, 5), (1, -1)]
    assert all(type(k) is tuple and type(k[0]) is int and type(k[1]) is int for k in keys)
    assert reg[Pair(1, 5)] == "a"
    assert reg[(Color.RED, Idx(-1))] == "b"


def test_pair_namedtuple_reads(PairRegistry):
    reg = PairRegistry({(3, 4): "x"})
    key = Pair(3, 4)
    assert key in reg
    assert reg.get(key) == "x"
    assert reg.switch_flow(key) == "x"
    assert reg.pop(key) == "x"
    missing = Pair(3, 4)
    raises_not_found(lambda: reg[missing], missing)


class OddPair(tuple):
    """A tuple subclass whose Python-level length and items disagree with its storage."""

    __slots__ = ()

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return 10 * tuple.__getitem__(self, i)


def test_pair_tuple_subclass_is_read_as_a_tuple(PairRegistry):
    # like a dict key's hash and ==, the id is the tuple's own two items
    reg = PairRegistry()
    reg[OddPair((1, 2))] = "a"
    assert list(reg) == [(1, 2)]
    assert OddPair((1, 2)) in reg
    assert reg.get_many([OddPair((1, 2))]) == ["a"]
    assert reg.pop(OddPair((1, 2))) == "a"
    with pytest.raises(TypeError):
        reg[OddPair((1, 2, 3))] = "b"
    assert OddPair((1, 2, 3)) not in reg


@pytest.mark.parametrize("part", [INT64_MIN, INT64_MAX, 0])
def test_pair_parts_at_int64_bounds(PairRegistry, part):
    reg = PairRegistry()
    reg[(part, -part - 1)] = "v"
    assert list(reg) == [(part, -part - 1)]
    assert reg[(part, -part - 1)] == "v"


@pytest.mark.parametrize("fid", PAIR_WRONG_TYPE, ids=repr)
def test_pair_wrong_type_ids(PairRegistry, fid):
    reg = PairRegistry({(1, 2): "a"})
    check_absent_on_read(reg, fid)
    check_refused_on_write(reg, fid, TypeError)


@pytest.mark.parametrize("fid", PAIR_OUT_OF_RANGE, ids=repr)
def test_pair_out_of_range_ids(PairRegistry, fid):
    reg = PairRegistry({(1, 2): "a"})
    check_absent_on_read(reg, fid)
    check_refused_on_write(reg, fid, OverflowError)


def test_pair_write_error_messages(PairRegistry):
    reg = PairRegistry()
    with pytest.raises(TypeError, match=r"^pair flow ids are \(int, int\) tuples, not 'list'"):
        reg[[1, 2]] = 1
    with pytest.raises(TypeError, match=r"^pair flow ids are \(int, int\) tuples, and \(1, 'x'\) has a"):
        reg[1, "x"] = 1
    with pytest.raises(TypeError, match=r"tuples, not 3-tuples: \(1, 2, 3\)$"):
        reg.setdefault((1, 2, 3))
    with pytest.raises(TypeError, match=r"and \(1, 2\.0\) has a 'float' part$"):
        reg.create_flow((1, 2.0), 1)
    with pytest.raises(OverflowError, match="int64"):
        reg[(1, 2**63)] = 1


def test_pair_index_raising_valueerror_propagates(PairRegistry):
    reg = PairRegistry({(1, 2): "a"})
    for fid in [(BadIndex(), 1), (1, BadIndex())]:
        with pytest.raises(ValueError, match="boom"):
            reg[fid] = "x"
        with pytest.raises(ValueError, match="boom"):
            reg.get(fid)
        with pytest.raises(ValueError, match="boom"):
            reg.update([((5, 6), "y"), (fid, "x")])
    assert list(reg.items()) == [((1, 2), "a")]
