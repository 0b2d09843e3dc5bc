"""Differential tests: the native core, the pure-Python fallback and a plain model
(a dict for the values, a list for the dense order) go through the same random
operations and must agree on every result, exception, item order and counter."""

from __future__ import annotations

import contextlib
import enum
import operator
import pickle
import random
from array import array
from collections import namedtuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from flowreg import FlowExists, FlowNotFound

try:  # only the (n, 2) pair buffers need it: without it, the rest still runs
    import numpy
except ImportError:
    numpy = None


INT64 = range(-(2**63), 2**63)
MISSING = object()


class Color(enum.IntEnum):
    RED = 1
    BLUE = -7


Pair = namedtuple("Pair", "a b")


class Index:
    """An id that is not an int but has __index__, which may fail."""

    def __init__(self, value, error=None):
        self.value, self.error = value, error

    def __index__(self):
        if self.error:
            raise self.error(f"Index({self.value}) refuses")
        return self.value

    def __repr__(self):
        return f"Index({self.value}, {self.error and self.error.__name__})"


NUMPY_IDS = [] if numpy is None else [numpy.int64(2), numpy.uint8(3)]


# ----------------------------------------------------------------- the model


def _int(o):
    if not isinstance(o, int) and not hasattr(type(o), "__index__"):
        raise TypeError(o)
    i = operator.index(o)
    if i not in INT64:
        raise OverflowError(o)
    return i


class Model:
    """What a registry must do: a dict plus the dense order, deletes swap-with-last."""

    pair = False

    def __init__(self, items=()):
        self.d = {}
        self.order = []
        self.pos = {}  # id -> index in order
        self.version = 0  # bumped whenever the set of ids changes
        self.update(items)

    @classmethod
    def convert(cls, fid):
        """The stored id, or the exception a write raises."""
        if not cls.pair:
            return _int(fid)
        if not isinstance(fid, tuple) or len(fid) != 2:
            raise TypeError(fid)
        return (_int(fid[0]), _int(fid[1]))

    def key(self, fid):
        """The stored id, or None for an id that cannot be stored (reads)."""
        try:
            return self.convert(fid)
        except (TypeError, OverflowError):
            return None

    def _insert(self, k, v):
        self.d[k] = v
        self.pos[k] = len(self.order)
        self.order.append(k)
        self.version += 1

    def _remove(self, k):
        i = self.pos.pop(k)
        last = self.order.pop()
        if last != k:
            self.order[i] = last
            self.pos[last] = i
        self.version += 1
        return self.d.pop(k)

    def __len__(self):
        return len(self.d)

    def __setitem__(self, fid, v):
        k = self.convert(fid)
        if k in self.d:
            self.d[k] = v
        else:
            self._insert(k, v)

    def __getitem__(self, fid):
        k = self.key(fid)
        if k not in self.d:
            raise FlowNotFound(fid)
        return self.d[k]

    switch_flow = __getitem__

    def __contains__(self, fid):
        return self.key(fid) in self.d

    def get(self, fid, default=None):
        return self.d.get(self.key(fid), default)

    def pop(self, fid, default=MISSING):
        k = self.key(fid)
        if k in self.d:
            return self._remove(k)
        if default is MISSING:
            raise FlowNotFound(fid)
        return default

    def delete_flow(self, fid):
        return self.pop(fid)

    def __delitem__(self, fid):
        self.pop(fid)

    def popitem(self):
        if not self.order:
            raise KeyError("empty")
        k = self.order[-1]
        return k, self._remove(k)

    def setdefault(self, fid, default=None):
        k = self.convert(fid)
        if k not in self.d:
            self._insert(k, default)
        return self.d[k]

    def create_flow(self, fid, flow):
        k = self.convert(fid)
        if k in self.d:
            raise FlowExists(fid)
        self._insert(k, flow)
        return flow

    def get_or_create(self, fid, factory):
        k = self.convert(fid)
        if k not in self.d:
            self.setdefault(k, factory(k))  # the factory gets the stored id
        return self.d[k]

    @classmethod
    def fromkeys(cls, iterable, value=None):
        return cls([(fid, value) for fid in iterable])

    def __or__(self, other):
        new = self.copy()
        new.update(other)
        return new

    def __ror__(self, other):
        new = type(self)(other)
        new.update(self)
        return new

    def __ior__(self, other):
        self.update(other)
        return self

    def __eq__(self, other):
        """As dict compares: as many items, and each of ours found in other with an equal value."""
        return len(other) == len(self.d) and all(other.get(k, MISSING) == v for k, v in self.d.items())

    def reset_stats(self):
        pass  # the registries' counters are compared with each other, not with the model

    def update(self, other=(), **kwargs):
        if hasattr(other, "keys"):
            pairs = [(k, other[k]) for k in other.keys()]  # noqa: SIM118
        else:
            pairs = []
            for item in other:
                if len(item) != 2:
                    raise ValueError(item)
                pairs.append(tuple(item))
        pairs += kwargs.items()
        converted = [(self.convert(k), v) for k, v in pairs]  # all or nothing
        for k, v in converted:
            self[k] = v

    def clear(self):
        if self.d:  # clearing nothing leaves the ids, and iterators, as they were
            self.version += 1
        self.d.clear()
        self.order.clear()
        self.pos.clear()

    def copy(self):
        return type(self)(self.items())

    def _batch(self, fids):
        """(ids as given, stored ids or None, whether fids is an int64 buffer)."""
        try:
            view = memoryview(fids)
        except TypeError:
            view = None
        if (
            view is not None
            and view.itemsize == 8
            and view.format.lstrip("@=<") in ("q", "l")
            and view.ndim == (2 if self.pair else 1)
            and view.c_contiguous  # a strided buffer is iterated id by id
        ):
            given = [tuple(x) for x in view.tolist()] if self.pair else view.tolist()
            return given, given, True
        if self.pair and view is not None and view.ndim == 2 and view.shape[1] == 2:
            try:  # any other (n, 2) int buffer: its rows, of ints
                given = [tuple(x) for x in view.tolist()]
            except NotImplementedError:  # another byte order: numpy's rows
                given = [tuple(int(x) for x in row) for row in fids]
        else:
            given = list(fids)
        return given, [self.key(g) for g in given], False

    def get_many(self, fids, default=MISSING):
        given, keys, _ = self._batch(fids)
        out = []
        for g, k in zip(given, keys, strict=True):
            if k in self.d:
                out.append(self.d[k])
            elif default is MISSING:
                raise FlowNotFound(g)
            else:
                out.append(default)
        return out

    def contains_many(self, fids):
        _, keys, is_buffer = self._batch(fids)
        found = [k in self.d for k in keys]
        return bytearray(found) if is_buffer else found

    def delete_many(self, fids):
        _, keys, _ = self._batch(fids)
        present = [k for k in dict.fromkeys(keys) if k in self.d]
        present.sort(key=self.pos.__getitem__, reverse=True)
        for k in present:
            self._remove(k)
        return len(present)

    def ids(self):
        if self.pair:
            return array("q", [part for k in self.order for part in k])
        return array("q", self.order)

    def _iter(self, kind, reverse=False):
        return _ModelIter(self, kind, reverse)

    def __iter__(self):
        return self._iter(0)

    def __reversed__(self):
        return self._iter(0, True)

    def keys(self):
        return _View(self, 0)

    def values(self):
        return _View(self, 1)

    def items(self):
        return _View(self, 2)


class PairModel(Model):
    pair = True


class _ModelIter:
    """Like dict's iterators: once the id set changed, every next() raises RuntimeError."""

    def __init__(self, model, kind, reverse):
        self.model, self.kind, self.reverse = model, kind, reverse
        self.version = model.version
        self.i = len(model.order) - 1 if reverse else 0
        self.done = False

    def __next__(self):
        m = self.model
        if self.done:
            raise StopIteration
        if m.version != self.version:
            raise RuntimeError("ids changed during iteration")
        if not 0 <= self.i < len(m.order):
            self.done = True
            raise StopIteration
        k = m.order[self.i]
        self.i += -1 if self.reverse else 1
        return (k, m.d[k], (k, m.d[k]))[self.kind]

    def __iter__(self):
        return self


class _View:
    def __init__(self, model, kind):
        self.model, self.kind = model, kind

    def __iter__(self):
        return self.model._iter(self.kind)

    def __reversed__(self):
        return self.model._iter(self.kind, True)


# ------------------------------------------------------------ the ids drawn

KINDS = {
    "FlowRegistry": dict(
        model=Model,
        good=[0, 1, 2, 3, -1, 2**63 - 1, -(2**63), True, Color.RED, Color.BLUE, Index(3), *NUMPY_IDS],
        bad=[0.5, 1.0, "1", None, (1, 2), 2**63, -(2**63) - 1, 2**64, Index(2**63), Index(0, TypeError)],
        # raised by reads too: only an id that converts cleanly to something unstorable is a miss
        failing=[Index(1, ValueError)],
        buffer_ids=[0, 1, 2, 3, -1, -7, 2**63 - 1, -(2**63), 5, 100],
        wide=lambda x: x,
    ),
    "PairFlowRegistry": dict(
        model=PairModel,
        good=[
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (2**63 - 1, -(2**63)),
            (True, Color.BLUE),
            Pair(0, 1),
            (Index(1), 0),
        ],
        bad=[
            (1,),
            (0, 1, 2),
            [0, 1],
            0,
            "ab",
            None,
            (0.5, 1),
            (2**64, 0),
            (0, 2**63),
            (1.0, 2**64),
            (2**64, 1.0),
            (Index(0, TypeError), 0),
            (0, Index(2**64)),
        ],
        failing=[(0, Index(1, ValueError))],
        buffer_ids=[(0, 0), (0, 1), (1, 0), (1, 1), (1, -7), (2**63 - 1, -(2**63)), (5, 5)],
        wide=lambda x: (x, -x),
    ),
}

values = st.integers(0, 10**6)
defaults = st.sampled_from([None, -1, "default"])


def _outcome(fn, target):
    try:
        return "ok", fn(target)
    except Exception as e:
        return "raise", e


def _items(r, result):
    """What an operation returning a registry gave: whether its type is r's, and its items."""
    return type(result) is type(r), list(result.items())


def _step(fn, target):
    """Run a multi-part step, recording each part's result or exception type."""
    kind, value = _outcome(fn, target)
    return repr(value) if kind == "ok" else type(value).__name__


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self, modules, kind):
        super().__init__()
        spec = KINDS[kind]
        self.c = getattr(modules["c"], kind)()
        self.py = getattr(modules["py"], kind)()
        self.model = spec["model"]()
        self.spec = spec

    # --- comparing the three

    def check(self, fn):
        c, py, model = (_outcome(fn, t) for t in (self.c, self.py, self.model))
        assert c[0] == py[0] == model[0], (c, py, model)
        if c[0] == "ok":
            # repr catches list vs bytearray, True vs 1, order and values at once
            assert repr(c[1]) == repr(py[1]) == repr(model[1]), (c, py, model)
        else:
            assert type(c[1]) is type(py[1]) is type(model[1]), (c, py, model)
            assert str(c[1]) == str(py[1]), (c, py)
            assert repr(c[1].args) == repr(py[1].args), (c, py)
            if isinstance(model[1], (FlowNotFound, FlowExists)):
                assert repr(c[1].args) == repr(model[1].args), (c, model)
        return c

    @invariant()
    def same_state(self):
        items = [repr(list(t.items())) for t in (self.c, self.py, self.model)]
        assert items[0] == items[1] == items[2]
        assert len(self.c) == len(self.py) == len(self.model)
        assert self.c.stats() == self.py.stats()
        assert self.c.stats()["size"] == len(self.model)
        for r in (self.c, self.py):  # every id is found by a lookup (stats: the same in both)
            assert [r[k] for k in list(r)] == list(r.values())
        # each compares by looking up the other's ids: both ways, so their stats stay alike
        assert self.c == self.py and self.py == self.c
        assert not (self.c != self.py) and not (self.py != self.c)  # noqa: SIM202 (__ne__ is tested)

    # --- drawing ids

    def ids(self):
        return st.one_of(
            st.sampled_from(self.spec["good"]),
            st.sampled_from(self.spec["good"]),
            st.sampled_from(self.spec["good"]),
            st.sampled_from(self.spec["bad"] + self.spec["failing"]),
        )

    # --- rules (strategies are drawn through `data` so each machine uses its own pool)

    @rule(data=st.data(), v=values)
    def setitem(self, data, v):
        k = data.draw(self.ids())
        self.check(lambda r: r.__setitem__(k, v))

    @rule(data=st.data(), how=st.sampled_from(["del", "pop", "pop_default", "delete_flow"]), default=defaults)
    def remove_one(self, data, how, default):
        k = data.draw(self.ids())
        ops = {
            "del": lambda r: r.__delitem__(k),
            "pop": lambda r: r.pop(k),
            "pop_default": lambda r: r.pop(k, default),
            "delete_flow": lambda r: r.delete_flow(k),
        }
        self.check(ops[how])

    @rule()
    def popitem(self):
        self.check(lambda r: r.popitem())

    @rule(data=st.data(), v=values, with_default=st.booleans())
    def setdefault(self, data, v, with_default):
        k = data.draw(self.ids())
        self.check(lambda r: r.setdefault(k, v) if with_default else r.setdefault(k))

    @rule(data=st.data(), v=values)
    def create_flow(self, data, v):
        k = data.draw(self.ids())
        self.check(lambda r: r.create_flow(k, v))

    @rule(data=st.data(), times=st.integers(1, 3))
    def switch_flow(self, data, times):
        k = data.draw(self.ids())
        for _ in range(times):  # repeats are hot hits
            self.check(lambda r: r.switch_flow(k))

    @rule(data=st.data(), how=st.sampled_from(["get", "get_default", "in", "getitem"]), default=defaults)
    def read_one(self, data, how, default):
        k = data.draw(self.ids())
        ops = {
            "get": lambda r: r.get(k),
            "get_default": lambda r: r.get(k, default),
            "in": lambda r: k in r,
            "getitem": lambda r: r[k],
        }
        self.check(ops[how])

    @rule(data=st.data(), as_buffer=st.booleans(), default=st.one_of(st.just(MISSING), defaults))
    def get_many(self, data, as_buffer, default):
        fids = self.batch(data, as_buffer)
        if default is MISSING:
            self.check(lambda r: r.get_many(fids))
        else:
            self.check(lambda r: r.get_many(fids, default))

    @rule(data=st.data(), as_buffer=st.booleans())
    def contains_many(self, data, as_buffer):
        fids = self.batch(data, as_buffer)
        self.check(lambda r: r.contains_many(fids))

    @rule(data=st.data(), as_buffer=st.booleans())
    def delete_many(self, data, as_buffer):
        fids = self.batch(data, as_buffer)
        self.check(lambda r: r.delete_many(fids))

    def batch(self, data, as_buffer):
        """A list of ids (some bad, some repeated), or an int64 buffer."""
        if not as_buffer:
            return data.draw(st.lists(self.ids(), max_size=8))
        return self.buffer(data, data.draw(st.lists(st.sampled_from(self.spec["buffer_ids"]), max_size=8)))

    def buffer(self, data, ids):
        """The ids in one of the buffer kinds; those that are not C-contiguous int64 are iterated."""
        if self.model.pair:
            if numpy is None or data.draw(st.booleans()):  # a 1-D buffer is not a pair buffer: all absent
                return array("q", [part for pair in ids for part in pair])
            rows = numpy.array(ids, dtype=numpy.int64).reshape(-1, 2)
            kind = data.draw(st.sampled_from(["rows", "fortran", "strided", "big-endian"]))
            if kind == "fortran":
                return numpy.asfortranarray(rows)
            if kind == "strided":
                return numpy.repeat(rows, 2, axis=0)[::2]
            return rows.astype(">i8") if kind == "big-endian" else rows
        kinds = ["q", "l", "memoryview", "readonly", "int32"]
        kinds += ["numpy", "strided", "big-endian", "uint64"] if numpy is not None else []
        kind = data.draw(st.sampled_from(kinds))
        if kind in ("q", "l"):
            return array(kind, ids)
        if kind == "memoryview":
            return memoryview(array("q", ids))
        if kind == "readonly":
            return memoryview(array("q", ids).tobytes()).cast("q")
        if kind == "int32":
            return array("i", [x for x in ids if -(2**31) <= x < 2**31])
        if kind == "strided":
            return numpy.array([x for i in ids for x in (i, 99)], dtype=numpy.int64)[::2]
        if kind == "uint64":
            return numpy.array([x for x in ids if x >= 0], dtype=numpy.uint64)
        return numpy.array(ids, dtype=">i8" if kind == "big-endian" else numpy.int64)

    @rule(data=st.data(), form=st.sampled_from(["dict", "pairs", "registry", "kwargs", "bad_element"]))
    def update(self, data, form):
        pairs = data.draw(st.lists(st.tuples(self.ids(), values), max_size=6))
        if form == "dict":
            arg = {}
            for k, v in pairs:
                with contextlib.suppress(TypeError):  # unhashable ids
                    arg[k] = v
            self.check(lambda r: r.update(arg))
        elif form == "pairs":
            self.check(lambda r: r.update(pairs))
        elif form == "registry":
            good = [(k, v) for k, v in pairs if _outcome(self.model.convert, k)[0] == "ok"]
            self.check(lambda r: r.update(type(r)(good)))
        elif form == "kwargs":
            self.check(lambda r: r.update(pairs, flow=1))
        else:
            bad = [*pairs, (self.spec["good"][0],)]
            self.check(lambda r: r.update(bad))

    # Many ids at once: table growth, long probe runs, backward-shift deletion.
    wide = st.tuples(st.integers(-300, 300), st.integers(1, 150), st.sampled_from([1, 3, 1024, 2**40]))

    @rule(span=wide, v=values)
    def bulk_insert(self, span, v):
        start, n, stride = span
        ids = [self.spec["wide"](start + i * stride) for i in range(n)]
        self.check(lambda r: r.update([(k, v + i) for i, k in enumerate(ids)]))

    @rule(span=wide, how=st.sampled_from(["delete_many", "pop", "del"]))
    def bulk_delete(self, span, how):
        start, n, stride = span
        ids = [self.spec["wide"](start + i * stride) for i in range(n)]
        if how == "delete_many":
            self.check(lambda r: r.delete_many(ids))
        elif how == "pop":
            self.check(lambda r: [r.pop(k, None) for k in ids])
        else:
            self.check(lambda r: [_step(lambda r, k=k: r.__delitem__(k), r) for k in ids])

    @rule(data=st.data(), v=values, fails=st.booleans())
    def get_or_create(self, data, v, fails):
        k = data.draw(self.ids())

        def fn(r):
            calls = []

            def factory(key):
                calls.append(key)
                if fails:
                    raise LookupError(f"no flow for {key!r}")
                return v

            return _step(lambda r: r.get_or_create(k, factory), r), calls

        self.check(fn)

    @rule(data=st.data(), v=st.one_of(st.just(MISSING), values))
    def fromkeys(self, data, v):
        fids = data.draw(st.lists(self.ids(), max_size=6))
        if v is MISSING:
            self.check(lambda r: _items(r, type(r).fromkeys(fids)))
        else:
            self.check(lambda r: _items(r, type(r).fromkeys(fids, v)))

    @rule(data=st.data(), form=st.sampled_from(["or", "ror", "ior", "ior_pairs"]))
    def union(self, data, form):
        pairs = data.draw(st.lists(st.tuples(self.ids(), values), max_size=6))
        other = {}
        for k, v in pairs:
            with contextlib.suppress(TypeError):  # unhashable ids
                other[k] = v
        ops = {
            "or": lambda r: _items(r, r | other),
            "ror": lambda r: _items(r, other | r),
            "ior": lambda r: operator.ior(r, other) is r,
            "ior_pairs": lambda r: operator.ior(r, pairs) is r,
        }
        self.check(ops[form])

    @rule(data=st.data(), change=st.sampled_from(["same", "drop", "value", "add"]), v=values)
    def compare(self, data, change, v):
        other = dict(self.model.d)
        if change == "drop" and other:
            del other[next(iter(other))]
        elif change == "value" and other:
            other[next(iter(other))] = -1  # stored values are >= 0
        elif change == "add":
            with contextlib.suppress(TypeError):  # unhashable ids
                other[data.draw(self.ids())] = v
        self.check(lambda r: (r == other, r != other, other == r, other != r))

    @rule(protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
    def pickle_round_trip(self, protocol):
        blobs = [pickle.dumps(r, protocol) for r in (self.c, self.py)]
        assert blobs[0] == blobs[1]  # neither names its implementation
        back = pickle.loads(blobs[1])
        assert type(back).__name__ == type(self.c).__name__
        assert list(back.items()) == list(self.model.items())

    @rule(cap=st.sampled_from([0, 1, 7, 8, 100, 3000, True, Index(5), -1, 2**31, 2**63, 1.5, "8", None]))
    def rebuild_with_capacity(self, cap):
        c, py = (_outcome(lambda r: type(r)(r, capacity=cap), t) for t in (self.c, self.py))
        assert c[0] == py[0], (c, py)
        if c[0] == "ok":
            self.c, self.py, self.model = c[1], py[1], self.model.copy()
        else:
            assert (type(c[1]), str(c[1])) == (type(py[1]), str(py[1]))

    @rule()
    def reset_stats(self):
        self.check(lambda r: r.reset_stats())

    @rule()
    def clear(self):
        self.check(lambda r: r.clear())

    @rule()
    def copy(self):
        self.check(lambda r: (type(r.copy()) is type(r), list(r.copy().items())))

    @rule()
    def replace_with_copies(self):
        self.c, self.py, self.model = self.c.copy(), self.py.copy(), self.model.copy()

    @rule()
    def iterate(self):
        self.check(
            lambda r: (
                list(r),
                list(reversed(r)),
                list(r.keys()),
                list(reversed(r.keys())),
                list(r.values()),
                list(reversed(r.values())),
                list(r.items()),
                list(reversed(r.items())),
            )
        )

    @rule()
    def ids_array(self):
        self.check(lambda r: r.ids())

    @rule(
        data=st.data(),
        v=values,
        view=st.sampled_from(["keys", "values", "items", "reversed"]),
        mutation=st.sampled_from(["set", "pop", "popitem", "clear"]),
    )
    def mutate_while_iterating(self, data, v, view, mutation):
        k = data.draw(self.ids())

        def fn(r):
            it = reversed(r) if view == "reversed" else iter(getattr(r, view)())
            first = _step(lambda r: next(it), r)
            mutate = {
                "set": lambda r: r.__setitem__(k, v),
                "pop": lambda r: r.pop(k, None),
                "popitem": lambda r: r.popitem(),
                "clear": lambda r: r.clear(),
            }[mutation]
            return first, _step(mutate, r), _step(lambda r: next(it), r), _step(lambda r: next(it), r)

        self.check(fn)


def big_batch(machine, data, op, mix, as_buffer):
    """One batch call of 2,048+ ids (the native core probes those without the GIL)."""
    stored = list(machine.model.order)
    n = data.draw(st.integers(2048, 2600))
    start = data.draw(st.integers(-2500, 300))
    ids = [machine.spec["wide"](start + i) for i in range(n)]
    if mix == "stored only" and stored:  # every id found: get_many never stops early
        ids = (stored * (n // len(stored) + 1))[:n]
    elif mix == "stored and absent":
        ids = stored + ids[: max(0, n - len(stored))]
    random.Random(data.draw(st.integers(0, 2**32))).shuffle(ids)  # one draw, not one per id
    fids = machine.buffer(data, ids) if as_buffer else ids
    ops = {
        "get_many": lambda r: r.get_many(fids),
        "get_many_default": lambda r: r.get_many(fids, None),
        "contains_many": lambda r: r.contains_many(fids),
        "delete_many": lambda r: r.delete_many(fids),
    }
    machine.check(ops[op])


# Big batches on tables of up to 3,000 ids, apart from the state machine: steps this big
# would make shrinking the machine's failures take many minutes.
@pytest.mark.thread_unsafe(reason="Hypothesis")
@pytest.mark.parametrize("kind", ["FlowRegistry", "PairFlowRegistry"])
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    # `both` only imports the two modules: nothing to reset between examples
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    stored=st.tuples(st.integers(-2500, 300), st.integers(0, 3000), st.sampled_from([1, 3, 2**40])),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["get_many", "get_many_default", "contains_many", "delete_many"]),
            st.sampled_from(["range", "stored and absent", "stored only"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_big_batches(both, kind, data, stored, ops):
    machine = RegistryMachine(both, kind)
    start, n, stride = stored
    ids = [machine.spec["wide"](start + i * stride) for i in range(n)]
    machine.check(lambda r: r.update([(k, i) for i, k in enumerate(ids)]))
    for op, mix, as_buffer in ops:
        big_batch(machine, data, op, mix, as_buffer)
        machine.same_state()


# A Hypothesis state machine: Hypothesis runs one test in several threads at once only from
# 6.136.9 on (the test extra allows older), and pytest-run-parallel's version check sees @given
# tests only, not run_state_machine_as_test.  Every thread would also just repeat the same
# independent machines (registries of their own), 16x slower for nothing shared.
@pytest.mark.thread_unsafe(reason="a Hypothesis state machine")
@pytest.mark.parametrize(("kind", "examples"), [("FlowRegistry", 75), ("PairFlowRegistry", 50)])
def test_differential(both, kind, examples):
    run_state_machine_as_test(
        lambda: RegistryMachine(both, kind),
        settings=settings(
            max_examples=examples,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# The native core keeps two kinds of table: up to 2**16 slots (16,384 ids) a delete finds
# every slot it changes from the slots themselves; above, from the ids.  Drive both
# implementations across the switch and back (clear() starts a small table again).
@pytest.mark.parametrize("kind", ["FlowRegistry", "PairFlowRegistry"])
def test_deletes_across_the_table_switch(both, kind):
    c, py = (getattr(both[name], kind)() for name in ("c", "py"))
    spec = RegistryMachine(both, kind).spec
    rng = random.Random(2024)
    pool = [spec["wide"](rng.getrandbits(62) - 2**61) for _ in range(40_000)]
    stored: list = []  # the ids stored, in no order: a random one is taken in O(1)

    def same():
        assert list(c.items()) == list(py.items())
        assert len(c) == len(stored) and all(c[k] == py[k] for k in stored)
        assert sorted(c) == sorted(stored)

    def take(k):
        i = stored.index(k) if stored[-1] != k else len(stored) - 1
        stored[i] = stored[-1]
        stored.pop()

    def grow_and_shrink(up, down):
        for target in (up, down):
            while len(stored) != target:
                if len(stored) < target and rng.random() < 0.8:
                    k = pool[rng.randrange(len(pool))]
                    if k not in c:
                        c[k] = py[k] = len(stored)
                        stored.append(k)
                    continue
                if not stored:
                    continue
                i = rng.randrange(len(stored))
                k = stored[i]
                how = rng.randrange(4)
                if how == 0:
                    del c[k], py[k]
                elif how == 1:
                    assert c.pop(k) == py.pop(k)
                elif how == 2:
                    k = c.popitem()[0]
                    assert py.popitem()[0] == k
                else:
                    assert c.delete_many([k, k]) == py.delete_many([k, k]) == 1
                if how == 2:
                    take(k)
                else:
                    stored[i] = stored[-1]
                    stored.pop()
            same()

    grow_and_shrink(16_000, 15_000)  # 2**16 slots
    grow_and_shrink(17_000, 1_000)  # 2**17 slots from 16,385 ids on, and back down
    c.clear()
    py.clear()
    stored.clear()
    grow_and_shrink(3_000, 0)
