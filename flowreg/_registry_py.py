"""flowreg's pure-Python implementation: the native core's API and behaviour, in Python.

Layout mirrors the native core so both give the same order after any sequence
of operations: ids kept densely in `_fr_keys` (swap-with-last on delete) with
`_fr_pos` mapping an id to its dense index.  Reads go through `_fr_map`, a plain
dict from id to flow, so a single read is one dict operation: it never sees a
half-finished change and is as fast as the dict it replaces.  The state and
the helpers are named `_fr_*`, so that a subclass's own attributes and methods
(a `self._lock` of its own, say) cannot meet them: the native core's are out of
Python's sight.

Thread safety: writers hold `_fr_lock`; readers take no lock.  A change of
several ids is applied to `_fr_map` by one C-level call (GIL builds) or by
swapping in an updated copy (free-threaded builds), so readers see none or
all of it.  Writers bump `_fr_version` before touching `_fr_keys`, and iterators
check it again after reading, so an iterator never yields a torn entry.

At exit CPython stops daemon threads for good where they next take the GIL,
one inside a write with `_fr_lock` held too.  `_fr_lock` is the C RLock, `with` and
all, until atexit runs (before any thread is stopped); from then on a `with`
that finds it taken asks `sys.is_finalizing()` first, and raises the native
core's RuntimeError rather than wait for a holder that will never let go.
"""

from __future__ import annotations

import atexit
import itertools
import operator
import os
import sys
import weakref
from _thread import RLock
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from types import GenericAlias
from typing import Any

from ._errors import FlowExists
from ._mapping import (
    ABSENT,
    BAD_TYPE,
    MAX_BITS,
    MIN_BITS,
    MISSING,
    OVERFLOW,
    RegistryItems,
    RegistryKeys,
    RegistryValues,
    acquire_unless_stopped,
    bits_for,
    buffer_pairs,
    copy_registry,
    deepcopy_registry,
    id_error,
    items_equal,
    locked_at_exit,
    not_found,
    registry_repr,
    restore,
    special_method,
    subclass_reduce,
    update_pairs,
    usable,
)
from ._singleflight import SingleFlight

__all__ = ["FlowRegistry", "PairFlowRegistry"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()
# Live registries by id() (they are unhashable): their locks are reset after fork.
_live: weakref.WeakValueDictionary[int, _Storage] = weakref.WeakValueDictionary()


class _WriteLock(RLock):  # type: ignore[misc]  # typeshed calls RLock final; it is not
    """A registry's write lock: the C RLock, `with` and all, until the interpreter exits."""

    __slots__ = ("registry_name",)
    registry_name: str  # type(registry).__name__, for the error of _enter_at_exit


def _write_lock(reg: _Storage) -> _WriteLock:
    lock = _WriteLock()  # (no arguments: PyPy's RLock takes none)
    lock.registry_name = type(reg).__name__
    return lock


def _enter_at_exit(lock: _WriteLock) -> bool:
    """_WriteLock.__enter__ once exit has begun: never wait for a holder the interpreter stopped."""
    if not acquire_unless_stopped(lock):
        raise locked_at_exit(lock.registry_name)
    return True


@atexit.register
def _at_exit() -> None:
    # CPython runs atexit callbacks before it stops daemon threads (for good, where they next
    # take the GIL, so a lock one holds is never released). Until then `with` runs the C RLock's
    # own __enter__, at no cost; from now on a contended one asks whether the holder is stopped.
    _WriteLock.__enter__ = _enter_at_exit  # type: ignore[assignment]


def _int_id(o: Any) -> tuple[int, Any]:
    """(0, id), or (BAD_TYPE or OVERFLOW, None): the native core's conversion."""
    if type(o) is not int:
        try:  # as natively, only the type's own slots decide: not o.__class__, not a metaclass
            o = operator.index(o)  # __index__ may run Python code: before any change
        except TypeError:
            return BAD_TYPE, None
    if _INT64_MIN <= o <= _INT64_MAX:
        return 0, o
    return OVERFLOW, None


def _pair_id(o: Any) -> tuple[int, Any]:
    if type(o) is tuple and len(o) == 2:
        a, b = o  # the common case, a plain tuple of plain ints in range, is its own key
        if (
            type(a) is int
            and type(b) is int
            and _INT64_MIN <= a <= _INT64_MAX
            and _INT64_MIN <= b <= _INT64_MAX
        ):
            return 0, o
    # A tuple subclass's own __len__ and __getitem__ are not consulted (natively neither).
    if not issubclass(type(o), tuple) or tuple.__len__(o) != 2:  # type(o): not o.__class__
        return BAD_TYPE, None
    code, a = _int_id(tuple.__getitem__(o, 0))
    if code:
        return code, None
    code, b = _int_id(tuple.__getitem__(o, 1))
    return code, (a, b) if not code else None


class _RegistryIter:
    """Iterator over ids (kind 0), flows (1) or (id, flow) pairs (2), in dense order."""

    __slots__ = ("_kind", "_next", "_reg", "_reverse", "_version")

    def __init__(self, reg: _BaseRegistry, kind: int, reverse: bool) -> None:
        self._reg: _BaseRegistry | None = reg
        self._kind = kind
        self._reverse = reverse
        self._version = reg._fr_version
        self._next = len(reg._fr_keys) - 1 if reverse else 0

    def __iter__(self) -> _RegistryIter:
        return self

    def __length_hint__(self) -> int:
        if self._reg is None:
            return 0
        return max(0, self._next + 1 if self._reverse else len(self._reg._fr_keys) - self._next)

    def __next__(self) -> Any:
        reg = self._reg
        if reg is None:
            raise StopIteration
        i = self._next
        keys = reg._fr_keys
        if reg._fr_version == self._version:
            if not 0 <= i < len(keys):
                self._reg = None
                raise StopIteration
            try:
                key = keys[i]
                flow = reg._fr_map[key] if self._kind else None
            except (IndexError, KeyError):
                pass  # a writer got in between: the version check below says so
            else:
                if reg._fr_version == self._version:
                    self._next = i - 1 if self._reverse else i + 1
                    return key if self._kind == 0 else flow if self._kind == 1 else (key, flow)
        raise RuntimeError(f"{type(reg).__name__} ids changed during iteration")

    def __reduce__(self) -> tuple[Any, ...]:
        # As dict's iterators: what remains, read by a copy (this one stays where it is); one
        # that a change invalidated raises next()'s RuntimeError.
        rest = _RegistryIter.__new__(_RegistryIter)
        for name in _RegistryIter.__slots__:
            setattr(rest, name, getattr(self, name))
        return iter, (list(rest),)


class _Storage:
    """The fallback's state, set up in __new__ so that subclasses need not call __init__."""

    __slots__ = (
        "__weakref__",
        "_fr_bits",
        "_fr_deletes",
        "_fr_flight",
        "_fr_hits",
        "_fr_hot",
        "_fr_hot_hits",
        "_fr_inserts",
        "_fr_keys",
        "_fr_lock",
        "_fr_map",
        "_fr_misses",
        "_fr_pos",
        "_fr_replaces",
        "_fr_resets",
        "_fr_resizes",
        "_fr_room",
        "_fr_version",
    )
    _fr_map: dict[Any, Any]  # id -> flow: what reads use
    _fr_keys: list[Any]  # dense ids: entry i is the id at dense index i
    _fr_pos: dict[Any, int]  # id -> dense index
    _fr_lock: _WriteLock
    _fr_bits: int
    _fr_room: int  # usable(_fr_bits): ids the simulated table holds before it grows
    _fr_hot: Any  # the id of the last switch_flow hit
    _fr_version: int
    _fr_replaces: int  # free-threaded builds: values replaced in place in `_fr_map` (see _fr_apply)
    _fr_flight: SingleFlight | None
    _fr_hits: int
    _fr_misses: int
    _fr_hot_hits: int
    _fr_inserts: int
    _fr_deletes: int
    _fr_resizes: int
    _fr_resets: int  # reset_stats() calls: exporters tell a reset from a lull by it

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        self._fr_map = {}
        self._fr_keys = []
        self._fr_pos = {}
        self._fr_lock = _write_lock(self)
        self._fr_bits = MIN_BITS
        self._fr_room = usable(MIN_BITS)
        self._fr_hot = None
        self._fr_version = self._fr_replaces = 0
        self._fr_flight = None
        self._fr_hits = self._fr_misses = self._fr_hot_hits = 0
        self._fr_inserts = self._fr_deletes = self._fr_resizes = self._fr_resets = 0
        _live[id(self)] = self
        return self


# The slots exist once the class does: without the list, copyreg (pickle, copy,
# object.__getstate__) and registry_state see a subclass's own slots only, as natively.
del _Storage.__slots__


class _BaseRegistry(_Storage):
    """Code shared by FlowRegistry (int ids) and PairFlowRegistry ((int, int) ids)."""

    __slots__ = ()
    _fr_pair = False
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, items: Any = (), /, *, capacity: int = 0) -> None:
        capacity = operator.index(capacity)
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        if capacity > usable(MAX_BITS):
            bits_for(capacity)  # its MemoryError, before any id is looked at (as natively)
        if capacity or type(items) is not tuple or items:
            # ids converted first: a bad one leaves the registry as it was, its room too
            self._fr_store(items, {}, capacity)

    def __class_getitem__(cls, item: Any) -> GenericAlias:
        return GenericAlias(cls, item)

    # --- ids

    @staticmethod
    def _fr_convert(fid: Any) -> tuple[int, Any]:
        return _int_id(fid)

    def _fr_write_key(self, fid: Any) -> Any:
        code, key = self._fr_convert(fid)
        if code:
            raise id_error(fid, code, self._fr_pair)
        return key

    @staticmethod
    def _fr_storable(key: Any) -> bool:
        """Whether a key from `_fr_convert` (or an exact int taken as is) can be stored."""
        return key is not None and _INT64_MIN <= key <= _INT64_MAX

    def _fr_not_found(self, fid: Any, key: Any) -> Exception:
        # `key` is fid converted once: converting again would run its __index__ twice
        return not_found(fid, self._fr_storable(key), self._fr_pair)

    # --- reads of one id

    def __len__(self) -> int:
        return len(self._fr_map)

    def __contains__(self, fid: object) -> bool:
        key = fid if type(fid) is int else self._fr_convert(fid)[1]
        if key in self._fr_map:
            self._fr_hits += 1
            return True
        self._fr_misses += 1
        return False

    def __getitem__(self, fid: Any) -> Any:
        key = fid if type(fid) is int else self._fr_convert(fid)[1]  # before reading _fr_map
        try:
            flow = self._fr_map[key]
        except KeyError:
            pass
        else:
            self._fr_hits += 1
            return flow
        self._fr_misses += 1
        missing = special_method(self, "__missing__")
        if missing is not ABSENT:
            return missing(fid)
        raise self._fr_not_found(fid, key)

    def get(self, fid: Any, default: Any = None, /) -> Any:
        """Return the flow stored under fid, or default."""
        key = fid if type(fid) is int else self._fr_convert(fid)[1]  # before reading _fr_map
        try:
            flow = self._fr_map[key]
        except KeyError:
            self._fr_misses += 1
            return default
        self._fr_hits += 1
        return flow

    def switch_flow(self, fid: Any, /) -> Any:
        """Return the flow under fid (FlowNotFound if none); repeating the last id skips the probe."""
        key = fid if type(fid) is int else self._fr_convert(fid)[1]
        try:
            flow = self._fr_map[key]
        except KeyError:
            pass  # raised below, out of the handler: as natively, FlowNotFound has no __context__
        else:  # (the same bytecode as after the try statement: the hit path pays nothing)
            self._fr_hits += 1
            if key == self._fr_hot:
                self._fr_hot_hits += 1
            else:
                self._fr_hot = key
            return flow
        self._fr_misses += 1
        raise self._fr_not_found(fid, key)

    def _peek(self, key: Any) -> Any:
        """The flow under an already converted id, or ABSENT; not counted in stats()."""
        return self._fr_map.get(self._fr_convert(key)[1], ABSENT)

    # --- writes (callers hold _fr_lock)

    def _fr_reserve(self, extra: int) -> None:
        need = len(self._fr_keys) + extra
        if need > self._fr_room:
            bits = bits_for(need)
            room = usable(bits)
            self._fr_bits = bits
            self._fr_room = room  # last: stopped before it, the next write reserves again
            self._fr_resizes += 1

    def _fr_insert(self, key: Any, flow: Any, looked: int) -> bool:
        """Store flow under key, absent when the caller looked at `_fr_version` `looked`; False,
        storing nothing, if a finalizer (run at a call) wrote since: the caller looks again."""
        if len(self._fr_keys) >= self._fr_room:
            self._fr_reserve(1)
        if self._fr_version != looked:
            return False
        # first (no finalizer runs since the test): an iterator must not hand out an id being inserted
        self._fr_version = version = looked + 1
        try:
            self._fr_map[key] = flow  # the step readers see: stopped after it, _mend completes it
            self._fr_keys.append(key)
            self._fr_pos[key] = len(self._fr_keys) - 1
        except BaseException:  # a MemoryError, or one raised asynchronously (see _mend)
            _mend(self)
            raise
        if self._fr_version != version:  # a finalizer wrote in between (see _mend)
            _mend(self)
        self._fr_inserts += 1
        return True

    def _fr_unlink(self, key: Any) -> None:
        """Drop key from the dense order (swap-with-last); the caller removes it from `_fr_map`
        first, and bumps `_fr_version` before that."""
        keys = self._fr_keys
        i = self._fr_pos.pop(key, None)
        if i is None or not keys:  # out of the order already (a finalizer's write got in): left to _mend
            return
        # The last id moves into i before the list shrinks: halfway, the order is never as long
        # as `_fr_map` (which lost key first), so _dense_ids sees it is not whole.
        last = keys[-1]
        if last != key:
            try:
                keys[i] = last
            except IndexError:  # the order changed under us (a finalizer's write): left to _mend
                return
            self._fr_pos[last] = i
        keys.pop()
        if key == self._fr_hot:
            self._fr_hot = None
        self._fr_deletes += 1

    def _fr_remove(self, key: Any) -> Any:
        """Remove key; its flow, or ABSENT if it is not stored."""
        if key not in self._fr_map:
            return ABSENT
        # first: an iterator must not hand out an id being removed
        self._fr_version = version = self._fr_version + 1
        try:
            flow = self._fr_map.pop(key, ABSENT)  # the step readers see
            if flow is ABSENT:  # a finalizer run just before removed it
                _mend(self)
                return ABSENT
            self._fr_unlink(key)
        except BaseException:
            _mend(self)
            raise
        if self._fr_version != version:  # a finalizer wrote in between (see _mend)
            _mend(self)
        return flow

    def _fr_apply(self, changes: dict[Any, Any], gone: list[Any] = []) -> int:  # noqa: B006
        """Change `_fr_map` as one step for readers: set `changes`, drop the ids in `gone`;
        returns how many of those were there (a finalizer's write may have removed some)."""
        if _FREE_THREADED:
            while True:  # again if a finalizer changed the map being copied (its write is kept)
                stored, version, replaces = self._fr_map, self._fr_version, self._fr_replaces
                new_map = stored.copy()
                new_map.update(changes)
                popped = list(map(new_map.pop, gone, itertools.repeat(ABSENT)))
                # (nothing from here to the store lets a finalizer run: no call, no allocation)
                if self._fr_map is stored and self._fr_version == version and self._fr_replaces == replaces:
                    break
            self._fr_map = new_map
        else:  # each call below is one C-level step holding the GIL
            self._fr_map.update(changes)
            popped = list(map(self._fr_map.pop, gone, itertools.repeat(ABSENT)))
        return len(popped) - _absent_count(popped)

    # --- writes of one id

    def __setitem__(self, fid: Any, flow: Any) -> None:
        key = self._fr_write_key(fid)
        with self._fr_lock:
            while True:
                looked = self._fr_version
                old = self._fr_map.get(key, ABSENT)  # released after the lock: its __del__ may re-enter
                if old is not ABSENT:
                    self._fr_map[key] = flow
                    if _FREE_THREADED:  # (only a copy-and-swap needs to know: see _fr_apply)
                        self._fr_replaces += 1
                    if key not in self._fr_pos:  # a finalizer's write removed it in between (see _mend)
                        _mend(self)
                    break
                if self._fr_insert(key, flow, looked):
                    break
        del old

    def __delitem__(self, fid: Any) -> None:
        _BaseRegistry.pop(self, fid)  # as natively, del does not call a subclass's delete_flow

    def create_flow(self, fid: Any, flow: Any) -> Any:
        """Store flow under a new id and return it; FlowExists if the id is taken."""
        key = self._fr_write_key(fid)
        with self._fr_lock:
            while True:
                looked = self._fr_version
                if key in self._fr_map:
                    raise FlowExists(fid)
                if self._fr_insert(key, flow, looked):
                    break
        return flow

    def delete_flow(self, fid: Any, /) -> Any:
        """Remove fid and return its flow; FlowNotFound if absent."""
        return _BaseRegistry.pop(self, fid)

    def pop(self, fid: Any, default: Any = MISSING, /) -> Any:
        """Remove fid and return its flow, or default if given (else FlowNotFound)."""
        key = fid if type(fid) is int else self._fr_convert(fid)[1]
        if key is not None:
            with self._fr_lock:
                flow = self._fr_remove(key)
            if flow is not ABSENT:
                return flow
        if default is MISSING:
            raise self._fr_not_found(fid, key)
        return default

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the last (id, flow) pair in dense order (LIFO)."""
        with self._fr_lock:
            while True:
                keys = self._fr_keys
                if not len(keys) == len(self._fr_pos) == len(self._fr_map):
                    _mend(self)  # a write halfway (a finalizer runs here) left the order short or long
                    continue
                if not keys:
                    break
                key = keys[-1]
                flow = self._fr_remove(key)
                if flow is not ABSENT:
                    return key, flow
                _mend(self)  # the order held an id a write halfway had not stored
        raise KeyError(f"popitem(): {type(self).__name__} is empty")

    def setdefault(self, fid: Any, default: Any = None, /) -> Any:
        """Return the flow under fid, storing default there first if absent."""
        key = self._fr_write_key(fid)
        with self._fr_lock:
            while True:
                looked = self._fr_version
                flow = self._fr_map.get(key, ABSENT)
                if flow is not ABSENT:
                    break
                if self._fr_insert(key, default, looked):
                    flow = default
                    break
        return flow

    def get_or_create(self, fid: Any, factory: Callable[[Any], Any]) -> Any:
        """Return the flow under fid, calling factory(id) once to create it if absent."""
        key = self._fr_write_key(fid)
        flow = self._fr_map.get(key, ABSENT)
        if flow is not ABSENT:
            self._fr_hits += 1
            return flow
        self._fr_misses += 1
        return self._fr_flights().run(self, key, factory)

    def aget_or_create(self, fid: Any, factory: Callable[[Any], Awaitable[Any]]) -> Awaitable[Any]:
        """Awaitable get_or_create: await factory(id) once to create the flow if absent."""
        key = self._fr_write_key(fid)
        if key in self._fr_map:
            self._fr_hits += 1
        else:
            self._fr_misses += 1
        return self._fr_flights().arun(self, key, factory)

    def _fr_flights(self) -> SingleFlight:
        if self._fr_flight is None:
            with self._fr_lock:
                if self._fr_flight is None:
                    self._fr_flight = SingleFlight(_BaseRegistry)
        return self._fr_flight

    # --- the whole registry

    def clear(self) -> None:
        """Remove every flow."""
        with self._fr_lock:
            # (an insert halfway may have stored in `_fr_map` only)
            stored = bool(self._fr_map or self._fr_keys or self._fr_pos)
            if stored:  # clearing an empty registry does not change its ids: iterators go on
                self._fr_version += 1
            # dropped after the lock is released, from the last in dense order, as natively
            old = [flow for _, flow in _dense_items(self)]
            self._fr_deletes += len(old)
            room = usable(MIN_BITS)
            try:
                if stored:  # (an empty one keeps its containers: a write halfway may hold them)
                    self._fr_map, self._fr_keys, self._fr_pos = {}, [], {}
            except BaseException:
                _mend(self)
                raise
            self._fr_bits = MIN_BITS
            self._fr_room = room
            self._fr_hot = None
        del old

    def _fr_pairs(self, other: Any, kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
        """The converted (id, flow) pairs of an update(); raises before anything changes."""
        if isinstance(other, _BaseRegistry) and other._fr_pair == self._fr_pair and not kwargs:
            return _BaseRegistry.snapshot(other)  # not a subclass's override, as natively
        return [(self._fr_write_key(k), v) for k, v in update_pairs(other, kwargs)]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every (id, flow) of a mapping or an iterable of pairs, all or nothing."""
        if not kwargs and type(other) is tuple and not other:
            return
        self._fr_store(other, kwargs)

    def _fr_store(self, other: Any, kwargs: dict[str, Any], capacity: int = 0) -> None:
        """update(), with room for at least `capacity` ids made first."""
        # (pairs, which holds the given flows, is this frame's only: up to 3.10 a caller's
        # stack keeps the arguments it passed until the call returns)
        pairs = self._fr_pairs(other, kwargs)
        with self._fr_lock:
            start = self._fr_version
            current = self._fr_map
            new = len(pairs) if not current else sum(1 for k, _ in pairs if k not in current)
            self._fr_reserve(max(new, capacity - len(current)))
            changes = dict(pairs)
            if len(changes) == len(pairs):
                olds = [current[k] for k in changes if k in current]
            else:
                olds = _replaced(pairs, current)
            added = [k for k in changes if k not in current]
            if added:  # replacing values does not invalidate iterators
                self._fr_version += 1
            try:
                self._fr_apply(changes)
                for key in added:
                    self._fr_pos[key] = len(self._fr_keys)
                    self._fr_keys.append(key)
            except BaseException:
                _mend(self)
                raise
            if self._fr_version != start + (1 if added else 0):  # a finalizer wrote (see _mend)
                _mend(self)
            self._fr_inserts += len(added)
        # released after the lock, in that order: `olds` holds the last references to them, and
        # a list drops its items last first
        del pairs, changes, current  # (current: as in delete_many)
        olds.reverse()
        del olds

    def copy(self) -> Any:
        """A shallow copy, of the same type: ``type(self)(self)``."""
        return type(self)(self)

    def __copy__(self) -> Any:
        return copy_registry(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return deepcopy_registry(self, memo)

    @classmethod
    def fromkeys(cls, iterable: Iterable[Any], value: Any = None, /) -> Any:
        """A new registry with every id of iterable mapped to value."""
        reg = cls()
        if cls is FlowRegistry or cls is PairFlowRegistry:
            _BaseRegistry.update(reg, [(fid, value) for fid in iterable])  # ids checked first
        else:  # as dict.fromkeys of a dict subclass: one __setitem__ per id, as given, in order
            for fid in iterable:
                reg[fid] = value
        return reg

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __ror__(self, other: Any) -> Any:
        if isinstance(other, _BaseRegistry):
            # `reg | Sub()`: the left operand's | decides, as with dict (natively, Python asks
            # a Python subclass's reflected method first)
            return other.__or__(self)
        if not isinstance(other, Mapping):
            return NotImplemented
        new = type(self)(other)
        new.update(self)
        return new

    def __ior__(self, other: Any) -> Any:
        self.update(other)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return items_equal(self.snapshot(), other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:
        return registry_repr(self, self.snapshot())

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + sum(
            sys.getsizeof(part) for part in (self._fr_map, self._fr_keys, self._fr_pos)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        cls = type(self)
        if cls is FlowRegistry or cls is PairFlowRegistry:
            return (restore, (cls.__name__,), None, None, iter(self.snapshot()))
        return subclass_reduce(self)  # as for a dict subclass: __new__, state, items

    def snapshot(self) -> list[tuple[Any, Any]]:
        """A consistent list of (id, flow) pairs, taken under the read lock."""
        with self._fr_lock:
            return _dense_items(self)

    def ids(self) -> array[int]:
        """The ids in dense order as array('q'); pairs come flattened (a0, b0, a1, b1, ...)."""
        with self._fr_lock:
            version, keys = self._fr_version, self._fr_keys
            if not self._fr_pair and len(keys) == len(self._fr_map) == len(self._fr_pos):
                ids = array("q", keys)  # the common case, in one step
                if self._fr_version == version:
                    return ids
            keys = _dense_ids(self)
        if self._fr_pair:
            return array("q", [part for key in keys for part in key])
        return array("q", keys)

    # --- iteration

    def __iter__(self) -> Iterator[Any]:
        return _RegistryIter(self, 0, False)

    def __reversed__(self) -> Iterator[Any]:
        return _RegistryIter(self, 0, True)

    def _iter(self, kind: int, reverse: bool = False) -> Iterator[Any]:
        return _RegistryIter(self, kind, reverse)

    def keys(self) -> RegistryKeys[Any]:
        """A set-like view of the ids."""
        return RegistryKeys(self)

    def values(self) -> RegistryValues[Any]:
        """A view of the flows."""
        return RegistryValues(self)

    def items(self) -> RegistryItems[Any, Any]:
        """A set-like view of the (id, flow) pairs."""
        return RegistryItems(self)

    # --- batches

    def _fr_batch(self, fids: Any) -> tuple[list[Any], list[Any], bool]:
        """(ids as given, converted ids or None, whether fids was an int64 buffer)."""
        given = _int64_buffer(fids, 2 if self._fr_pair else 1)
        if given is not None:
            return given, given, True
        given = buffer_pairs(fids) if self._fr_pair else None
        if given is None:
            given = list(fids)
        return given, [self._fr_convert(fid)[1] for fid in given], False

    def get_many(self, fids: Any, default: Any = MISSING) -> list[Any]:
        """The flows of many ids, in order; FlowNotFound on the first missing one unless default is given."""
        given, keys, _ = self._fr_batch(fids)
        with self._fr_lock:
            current = self._fr_map
            result = [current.get(key, ABSENT) for key in keys]
        missing = [i for i, flow in enumerate(result) if flow is ABSENT]
        if missing and default is MISSING:  # counted up to the first miss, as natively
            self._fr_hits += missing[0]
            self._fr_misses += 1
            raise self._fr_not_found(given[missing[0]], keys[missing[0]])
        self._fr_hits += len(result) - len(missing)
        self._fr_misses += len(missing)
        for i in missing:
            result[i] = default
        return result

    def contains_many(self, fids: Any) -> Any:
        """One answer per id: a bytearray of 0/1 for an int64 buffer, else a list of bools."""
        _, keys, is_buffer = self._fr_batch(fids)
        with self._fr_lock:
            current = self._fr_map
            found = [key in current for key in keys]
        hits = sum(found)
        self._fr_hits += hits
        self._fr_misses += len(found) - hits
        return bytearray(found) if is_buffer else found

    def delete_many(self, fids: Any) -> int:
        """Remove every present id (absent ones are ignored); returns how many were removed."""
        _, keys, _ = self._fr_batch(fids)
        with self._fr_lock:
            while True:  # again if a finalizer (run at a call) wrote meanwhile
                if len(self._fr_pos) != len(self._fr_map):  # a write of this thread is halfway
                    _mend(self)
                start = self._fr_version
                current = self._fr_map
                present = [key for key in dict.fromkeys(keys) if key in current]
                # Highest dense index first, exactly as the native core removes them (-1: an id
                # a finalizer removed meanwhile, which the check below sends round again).
                ranks = list(map(self._fr_pos.get, present, itertools.repeat(-1)))
                present = [key for _, key in sorted(zip(ranks, present, strict=True), reverse=True)]
                # released after the lock, in removal order as natively (a list drops its items
                # last first)
                removed = list(map(current.get, reversed(present)))
                if self._fr_version == start and self._fr_map is current:
                    break
            count = 0
            if present:
                self._fr_version += 1
                try:
                    count = self._fr_apply({}, present)
                    for key in present:
                        self._fr_unlink(key)
                except BaseException:
                    _mend(self)
                    raise
                if self._fr_version != start + 1:  # a finalizer wrote in between (see _mend)
                    _mend(self)
        del current  # (a finalizer's clear() must not find the flows it removes still held here)
        del removed
        return count

    # --- statistics

    def stats(self) -> dict[str, int]:
        """Counters: size, capacity, lookups, hits, misses, hot_hits, inserts, deletes, resizes, resets."""
        return {
            "size": len(self._fr_map),
            "capacity": usable(self._fr_bits),
            "lookups": self._fr_hits + self._fr_misses,
            "hits": self._fr_hits,
            "misses": self._fr_misses,
            "hot_hits": self._fr_hot_hits,
            "inserts": self._fr_inserts,
            "deletes": self._fr_deletes,
            "resizes": self._fr_resizes,
            "resets": self._fr_resets,
        }

    def reset_stats(self) -> None:
        """Zero the counters of stats(), except resets, which counts these calls (size and capacity stay)."""
        self._fr_hits = self._fr_misses = self._fr_hot_hits = 0
        self._fr_inserts = self._fr_deletes = self._fr_resizes = 0
        self._fr_resets += 1

    # --- for tests of the locking

    def _hold_write_lock(self, fn: Callable[[], Any]) -> Any:
        """Call fn() holding the write lock (test hook; this thread may re-enter)."""
        with self._fr_lock:
            return fn()


def _replaced(pairs: list[tuple[Any, Any]], current: dict[Any, Any]) -> list[Any]:
    """The values an update giving an id more than once replaces, in the order the native core
    replaces them: each pair's in turn, a value given before in the same update too. (A function
    of its own: a loop variable in update() would hold the last flow until it returns.)"""
    olds = []
    given: dict[Any, Any] = {}
    for k, v in pairs:
        if k in given or k in current:
            olds.append(given[k] if k in given else current[k])
        given[k] = v
    return olds


def _absent_count(values: list[Any]) -> int:
    """How many of values are ABSENT (by identity: a value's __eq__ is never called)."""
    return sum(map(operator.is_, values, itertools.repeat(ABSENT)))


def _int64_buffer(fids: Any, width: int) -> list[Any] | None:
    """The ids of a C-contiguous int64 buffer (as ints, or pairs), else None."""
    try:
        view = memoryview(fids)
    except (BufferError, ValueError, TypeError):  # not a buffer after all: an iterable, natively too
        return None
    with view:
        fmt = view.format
        if fmt[:1] and fmt[0] in "@=" + ("<" if sys.byteorder == "little" else ">!"):
            fmt = fmt[1:]  # one byte-order prefix, natively too
        if view.itemsize != 8 or fmt not in ("q", "l") or not view.c_contiguous:
            return None
        if view.ndim != width or (width == 2 and view.shape[1] != 2):  # type: ignore[index]
            return None
        values = view.cast("B").cast("q").tolist() if view.nbytes else []
    if width == 1:
        return values
    return list(zip(values[::2], values[1::2], strict=True))


class FlowRegistry(_BaseRegistry):
    """A registry of flows keyed by int64 ids: a drop-in for dict[int, Flow]."""

    __slots__ = ()

    def _fr_write_key(self, fid: Any) -> Any:
        if type(fid) is int and _INT64_MIN <= fid <= _INT64_MAX:  # the common case, without calls
            return fid
        return super()._fr_write_key(fid)


class PairFlowRegistry(_BaseRegistry):
    """A registry of flows keyed by (int64, int64) ids such as (user_id, session_id)."""

    __slots__ = ()
    _fr_pair = True

    @staticmethod
    def _fr_convert(fid: Any) -> tuple[int, Any]:
        return _pair_id(fid)

    @staticmethod
    def _fr_storable(key: Any) -> bool:
        return type(key) is tuple  # what _pair_id returns; never an int taken as is


MutableMapping.register(FlowRegistry)
MutableMapping.register(PairFlowRegistry)


def _after_fork_in_child() -> None:
    for reg in list(_live.values()):
        if not reg._fr_lock.acquire(False):  # held by a thread the child does not have
            _mend(reg)
        reg._fr_lock = _write_lock(reg)


def _mend(reg: _Storage) -> None:
    """Make the dense order agree with `_fr_map` again, for a registry left halfway through a write:
    by an exception raised there (a MemoryError, or one raised asynchronously: Ctrl-C, a signal
    handler's), by another write run in between (a finalizer the collector ran there, which the
    write notices by `_fr_version`) or, in a fork child, by a thread of the parent.  `_fr_map`,
    which reads use, changes in single steps, `_fr_keys` and `_fr_pos` in several.  The ids keep
    their order; ids only `_fr_map` has come last."""
    while True:  # again if a finalizer's write got in meanwhile
        version = reg._fr_version
        keys = _dense_ids(reg, by_length=False)
        pos = {key: i for i, key in enumerate(keys)}
        if reg._fr_version == version:
            break
    reg._fr_keys, reg._fr_pos = keys, pos
    reg._fr_version += 1
    if len(keys) > reg._fr_room:  # a finalizer's insert outran a reservation
        reg._fr_bits = bits_for(len(keys))
        reg._fr_room = usable(reg._fr_bits)
        reg._fr_resizes += 1
    if reg._fr_hot not in reg._fr_map:  # a failed insert leaves the hot slot as it was
        reg._fr_hot = None


def _dense_ids(reg: _Storage, by_length: bool = True) -> list[Any]:
    """The ids in dense order, read so that a write halfway through (stopped by an exception, or
    by a finalizer the collector runs, which may write too) cannot make them disagree with
    `_fr_map`: a swap-with-last stopped halfway may list an id twice, or not at all. With
    `by_length`, an order as long as `_fr_map` is taken as it is: a write halfway never leaves
    one (see _fr_unlink), but one a finalizer's write got into may, until it mends it."""
    while True:  # again if a finalizer's write got in meanwhile
        version = reg._fr_version
        keys, stored = reg._fr_keys, reg._fr_map
        ids = list(keys)
        if not (by_length and len(ids) == len(stored) == len(reg._fr_pos)):
            ids = list(dict.fromkeys([*(key for key in ids if key in stored), *stored]))
        if reg._fr_version == version:
            return ids


def _dense_items(reg: _Storage) -> list[tuple[Any, Any]]:
    """The (id, flow) pairs in dense order, read as `_dense_ids` reads the ids."""
    by_length = True
    while True:
        version, stored = reg._fr_version, reg._fr_map
        ids = _dense_ids(reg, by_length)
        flows = list(map(stored.get, ids, itertools.repeat(ABSENT)))
        if _absent_count(flows):  # an order of the right length, but not whole
            by_length = False
        elif reg._fr_version == version and reg._fr_map is stored:
            return list(zip(ids, flows, strict=True))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
