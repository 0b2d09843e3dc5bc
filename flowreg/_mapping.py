"""Pieces both implementations share: the table policy, error messages, views,
update-argument parsing, equality, repr and pickling.

Keeping them in one module is what makes the two implementations behave the
same where it is not a matter of speed.
"""

from __future__ import annotations

import copy
import copyreg
import functools
import reprlib
import struct
import sys
import threading
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from types import MappingProxyType
from typing import Any, TypeVar

from ._errors import FlowNotFound

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "SPARSE_MAX_BITS",
    "ABSENT",
    "MISSING",
    "RegistryItems",
    "RegistryKeys",
    "RegistryValues",
    "bits_for",
    "buffer_pairs",
    "copy_registry",
    "deepcopy_registry",
    "id_error",
    "items_equal",
    "not_found",
    "registry_repr",
    "registry_state",
    "restore",
    "special_method",
    "update_pairs",
    "usable",
]


class _Marker:
    """A marker object that pickles by name; its repr keeps signatures readable."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<{self._name.lower()}>"

    def __reduce__(self) -> str:
        return self._name


#: The "no default given" default of pop, get_many, ...: public through their signatures.
MISSING: Any = _Marker("MISSING")
#: What internal lookups return for an absent id. Not MISSING: a caller can store that one.
ABSENT: Any = _Marker("ABSENT")
#: The default handed to another mapping's get(): never ABSENT, which that mapping's code could
#: keep and store, and the fallback would then take for no flow at all.
NOT_THEIRS: Any = _Marker("NOT_THEIRS")

_K = TypeVar("_K")
_V = TypeVar("_V")

# Hash table policy.  The native core implements it in C; the fallback follows
# it so that `stats()["capacity"]` and the `resizes` counter agree.
MIN_BITS = 4
MAX_BITS = 31  # slots hold a hash tag above (dense index + 1) in 32 bits
SPARSE_MAX_BITS = 16  # tables up to this size (256 KB of slots) stay in the CPU's caches


def usable(bits: int) -> int:
    """Ids a table of ``2**bits`` slots holds before it must grow.

    Load <= 1/4 up to ``2**SPARSE_MAX_BITS`` slots: clusters stay short, so probes and
    the backward shift of a delete rarely go past one slot, for 4-8 more bytes per id
    (tables of 16,385-32,768 ids, the first after the switch, take up to 16 more).
    The native core's small tables also keep each entry's slot, 4 bytes per id, so that a
    delete reads no ids.  Load <= 1/2 above that, where the slots are a third of the memory
    per entry.
    """
    return 1 << (bits - 2 if bits <= SPARSE_MAX_BITS else bits - 1)


def bits_for(n: int) -> int:
    """The smallest table (as a power of two) that holds ``n`` ids."""
    bits = MIN_BITS
    while usable(bits) < n:
        bits += 1
    if bits > MAX_BITS:
        raise MemoryError(f"a registry cannot hold {n} flows (at most {usable(MAX_BITS)})")
    return bits


# Error messages (code 1: not an id type, 2: outside int64).
BAD_TYPE = 1
OVERFLOW = 2


def id_error(fid: Any, code: int, pair: bool) -> Exception:
    """The exception a write raises for an id it cannot store."""
    if code == OVERFLOW:
        what = "each part of a pair flow id" if pair else "a flow id"
        return OverflowError(f"{what} must fit in int64, got {fid!r}")
    if pair:
        if isinstance(fid, tuple) and len(fid) == 2:  # name the part that is no int
            bad = [type(part).__name__ for part in fid if not hasattr(type(part), "__index__")]
            part = f"a {bad[0]!r} part" if bad else "a part whose __index__ raised TypeError"
            return TypeError(f"pair flow ids are (int, int) tuples, and {fid!r} has {part}")
        if isinstance(fid, tuple):
            return TypeError(f"pair flow ids are (int, int) tuples, not {len(fid)}-tuples: {fid!r}")
        return TypeError(f"pair flow ids are (int, int) tuples, not {type(fid).__name__!r}: {fid!r}")
    if hasattr(type(fid), "__index__"):  # its __index__ raised TypeError (numpy.bool_'s does)
        return TypeError(f"flow ids are ints, and {type(fid).__name__!r}.__index__ raised TypeError")
    return TypeError(f"flow ids are ints, not {type(fid).__name__!r}")


def not_found(fid: Any, storable: bool, pair: bool) -> FlowNotFound:
    """The `FlowNotFound` a read raises; it says why when the id cannot exist."""
    if storable:
        return FlowNotFound(fid)
    kind = "(int64, int64) tuples" if pair else "int64 integers"
    return FlowNotFound(fid, f"flow ids are {kind}")


def acquire_unless_stopped(lock: Any) -> bool:
    """Take lock (a threading Lock or RLock); False, without waiting, where the interpreter is
    exiting and another thread holds it: CPython stops daemon threads for good at exit (where
    they next take the GIL), so only the exiting thread runs Python code and the holder will
    never let it go."""
    if lock.acquire(False):
        return True
    if sys.is_finalizing():
        return False
    return bool(lock.acquire())


def locked_at_exit(name: str) -> RuntimeError:
    """The error of a registry (type name `name`) whose write lock a thread stopped at exit
    holds: both implementations raise it rather than wait forever."""
    return RuntimeError(
        f"{name}: the interpreter is exiting and the registry is locked by a thread it stopped "
        "(a daemon thread): it cannot be used any more"
    )


def special_method(obj: object, name: str) -> Any:
    """obj's special method `name` found as the interpreter finds one (on its type, then bound
    by its descriptor, so a staticmethod works as in dict's __missing__), or ABSENT."""
    cls = type(obj)
    if not hasattr(cls, name):  # the common case, in the type's attribute cache
        return ABSENT
    for klass in cls.__mro__:
        attr = vars(klass).get(name, ABSENT)
        if attr is not ABSENT:
            bind = getattr(type(attr), "__get__", None)
            return attr if bind is None else bind(attr, obj, cls)
    return ABSENT  # only on the metaclass: not a special method of obj


@reprlib.recursive_repr()  # `...` for a view inside itself, as dict's views
def _view_repr(view: Iterable[Any]) -> str:
    return f"{type(view).__name__}({list(view)!r})"


_IMPLEMENTATIONS = ("flowreg._registry", "flowreg._registry_py")
_registry_classes: set[type] = set()  # the implementations' classes met below (a handful)


def _registry_base(cls: type) -> Any:
    """The first of the implementations' own classes in a registry class's MRO: the class itself
    for FlowRegistry and PairFlowRegistry, the one a subclass derives from otherwise.

    Its methods are the registry's own, whatever a subclass overrides: the views read the
    registry through them, as dict's views read a dict's storage, not its subclass's methods.
    """
    mro = cls.__mro__
    for klass in mro:
        if klass in _registry_classes:
            return klass
    for klass in mro:
        if getattr(klass, "__module__", None) in _IMPLEMENTATIONS:
            _registry_classes.add(klass)
            return klass
    raise TypeError(f"not a flowreg registry: {cls.__name__!r}")


# The views of FlowRegistry and PairFlowRegistry themselves call the registry directly (half
# the time of a call through the class); a subclass's go through its registry base class,
# never through the subclass's overrides, which dict's views do not call either.


def _view_len(view: Any) -> int:
    reg = view._mapping
    cls = type(reg)
    if cls in _registry_classes:
        return len(reg)
    return _registry_base(cls).__len__(reg)  # type: ignore[no-any-return]


def _view_iter(view: Any, kind: int, reverse: bool) -> Iterator[Any]:
    reg = view._mapping
    cls = type(reg)
    if cls in _registry_classes:
        return reg._iter(kind, reverse)  # type: ignore[no-any-return]
    return _registry_base(cls)._iter(reg, kind, reverse)  # type: ignore[no-any-return]


# Views: the implementations provide `_iter(kind, reverse)`; kind 0 keys, 1 values, 2 items.
class RegistryKeys(KeysView[_K]):
    """A set-like, live view of a registry's ids in dense order."""

    __slots__ = ()

    __len__ = _view_len

    def __contains__(self, key: object) -> bool:
        reg = self._mapping  # type: ignore[attr-defined]
        cls = type(reg)
        if cls in _registry_classes:
            return key in reg
        return _registry_base(cls).__contains__(reg, key)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[_K]:
        return _view_iter(self, 0, False)

    def __reversed__(self) -> Iterator[_K]:
        return _view_iter(self, 0, True)

    @property
    def mapping(self) -> MappingProxyType[_K, Any]:
        """A read-only proxy of the registry, as dict views have."""
        return MappingProxyType(self._mapping)  # type: ignore[attr-defined]

    __repr__ = _view_repr


class RegistryValues(ValuesView[_V]):
    """A live view of a registry's flows in dense order."""

    __slots__ = ()

    __len__ = _view_len

    def __iter__(self) -> Iterator[_V]:
        return _view_iter(self, 1, False)

    def __reversed__(self) -> Iterator[_V]:
        return _view_iter(self, 1, True)

    @property
    def mapping(self) -> MappingProxyType[Any, _V]:
        """A read-only proxy of the registry, as dict views have."""
        return MappingProxyType(self._mapping)  # type: ignore[attr-defined]

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self)

    __repr__ = _view_repr


class RegistryItems(ItemsView[_K, _V]):
    """A set-like, live view of a registry's ``(id, flow)`` pairs in dense order."""

    __slots__ = ()

    __len__ = _view_len

    def __iter__(self) -> Iterator[tuple[_K, _V]]:
        return _view_iter(self, 2, False)

    def __reversed__(self) -> Iterator[tuple[_K, _V]]:
        return _view_iter(self, 2, True)

    @property
    def mapping(self) -> MappingProxyType[_K, _V]:
        """A read-only proxy of the registry, as dict views have."""
        return MappingProxyType(self._mapping)  # type: ignore[attr-defined]

    def __contains__(self, item: object) -> bool:
        # Not ItemsView's: that one would call __getitem__ (and a subclass's __missing__).
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        reg = self._mapping  # type: ignore[attr-defined]
        cls = type(reg)
        if cls in _registry_classes:
            value = reg.get(item[0], ABSENT)
        else:
            value = _registry_base(cls).get(reg, item[0], ABSENT)
        return value is not ABSENT and (value is item[1] or value == item[1])

    __repr__ = _view_repr


def update_pairs(other: Any, kwargs: Mapping[str, Any] | None = None) -> list[tuple[Any, Any]]:
    """The ``(key, value)`` pairs ``dict.update(other, **kwargs)`` would apply, in order."""
    if hasattr(other, "keys"):
        pairs = [(key, other[key]) for key in other.keys()]  # noqa: SIM118 (the keys() protocol)
    else:
        pairs = []
        for i, item in enumerate(other):
            try:
                n = len(item)
            except TypeError:
                raise TypeError(
                    f"cannot convert registry update sequence element #{i} to a sequence"
                ) from None
            if n != 2:
                raise ValueError(f"registry update sequence element #{i} has length {n}; 2 is required")
            key, value = item
            pairs.append((key, value))
    if kwargs:
        pairs.extend(kwargs.items())
    return pairs


#: The struct module's integer formats: a memoryview reads them as ints.
_INT_FORMATS = frozenset("bBhHiIlLqQnN")
#: struct's signed integer codes of a standard size, by that size.
_SIZED = {1: "b", 2: "h", 4: "i", 8: "q"}


def buffer_pairs(fids: Any) -> list[tuple[Any, Any]] | None:
    """The rows of `fids` as pair ids when it is an (n, 2) buffer of integers of any size, byte
    order or layout, else None. (The C-contiguous int64 ones are read in place before this;
    other buffers are iterated as they come, and a 1-D one's items are never pairs.)"""
    try:
        view = memoryview(fids)
    except (BufferError, ValueError, TypeError):
        return None
    with view:
        order, code = (view.format[:1], view.format[1:]) if view.format[:1] in "@=<>!" else ("", view.format)
        sized = _SIZED.get(view.itemsize)
        if view.ndim != 2 or view.shape[1] != 2 or code not in _INT_FORMATS or not sized:  # type: ignore[index]
            return None
        # struct reads every byte order, where a memoryview reads only the native one; the item
        # size is the exporter's (struct's own for 'l' or 'n' depends on the byte order mark)
        row = (order if order in ("<", ">", "!") else "=") + (sized if code.islower() else sized.upper()) * 2
        return list(struct.iter_unpack(row, view.tobytes()))


def items_equal(items: list[tuple[Any, Any]], other: Mapping[Any, Any]) -> bool:
    """``dict.__eq__`` for a registry's item snapshot against any mapping."""
    get: Any
    if isinstance(other, dict):  # read as dict's == reads one, whatever a subclass overrides
        size, get = dict.__len__(other), functools.partial(dict.get, other)
    else:
        size, get = len(other), getattr(other, "get", None)
    if len(items) != size:
        return False
    for key, value in items:
        if get is not None:
            theirs = get(key, NOT_THEIRS)
            if theirs is NOT_THEIRS:
                return False
        else:
            try:
                theirs = other[key]
            except KeyError:
                return False
        if value is not theirs and not value == theirs:  # noqa: SIM201 (dict's: mine == theirs)
            return False
    return True


_repr_running: set[tuple[int, int]] = set()


def registry_repr(reg: object, items: Iterable[tuple[Any, Any]]) -> str:
    """``Name({id: flow, ...})``, with ``Name({...})`` where a registry contains itself."""
    name = type(reg).__name__
    key = (id(reg), threading.get_ident())
    if key in _repr_running:
        return f"{name}({{...}})"
    _repr_running.add(key)
    try:
        body = ", ".join(f"{k!r}: {v!r}" for k, v in items)
    finally:
        _repr_running.discard(key)
    return f"{name}({{{body}}})"


_OBJECT_GETSTATE = getattr(object, "__getstate__", None)  # Python 3.11+
# What copy.copy and copy.deepcopy call with what they reduced (in every CPython 3 to date).
_reconstruct: Any = copy._reconstruct  # type: ignore[attr-defined]


def registry_state(reg: Any) -> Any:
    """What pickle and copy keep of a registry besides its items: as of a dict subclass's
    instance, its own ``__getstate__()``, else its ``__dict__`` and slots (None if neither).

    The fallback's classes hide their slots from this walk and from copyreg's (see
    `_registry_py`): its internals are never pickled, and both implementations keep the same.
    """
    cls = type(reg)
    if getattr(cls, "__getstate__", _OBJECT_GETSTATE) is not _OBJECT_GETSTATE:
        return reg.__getstate__()
    state = getattr(reg, "__dict__", None) or None
    slots = {}
    for klass in cls.__mro__:  # the slot names copyreg._slotnames finds, mangled as it does
        names = vars(klass).get("__slots__", ())
        for name in [names] if isinstance(names, str) else names:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__") and klass.__name__.lstrip("_"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            value = getattr(reg, name, ABSENT)
            if value is not ABSENT:
                slots[name] = value
    return (state, slots) if slots else state


def new_arguments(reg: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What pickle and copy pass to a subclass's ``__new__``, as for a dict subclass's instance:
    what its type's ``__getnewargs_ex__()`` or ``__getnewargs__()`` returns, else nothing."""
    getnewargs_ex = special_method(reg, "__getnewargs_ex__")
    if getnewargs_ex is not ABSENT:
        got = getnewargs_ex()
        if not (
            isinstance(got, tuple)
            and len(got) == 2
            and isinstance(got[0], tuple)
            and isinstance(got[1], dict)
        ):
            raise TypeError(f"__getnewargs_ex__ should return (a tuple, a dict), not {got!r:.100}")
        return got
    getnewargs = special_method(reg, "__getnewargs__")
    if getnewargs is ABSENT:
        return (), {}
    args = getnewargs()
    if not isinstance(args, tuple):
        raise TypeError(f"__getnewargs__ should return a tuple, not {type(args).__name__!r}")
    return args, {}


def _overrides(cls: type, name: str) -> bool:
    """Whether a class before the registry's in cls's MRO (a subclass, a mixin) defines name."""
    base = _registry_base(cls)
    for klass in cls.__mro__:
        if klass is base:
            return False
        if name in vars(klass):
            return True
    return False


def subclass_reduce(reg: Any) -> tuple[Any, ...]:
    """``__reduce__`` of a subclass's instance, as object's of a dict subclass's: its type's
    ``__new__`` with `new_arguments` (not ``__init__``), its state, its items (through its own
    ``items()`` if it overrides it, as for a dict subclass; else a consistent snapshot)."""
    cls = type(reg)
    args, kwargs = new_arguments(reg)
    state = registry_state(reg)
    items = iter(reg.items() if _overrides(cls, "items") else reg.snapshot())
    if kwargs:
        return (copyreg.__newobj_ex__, (cls, args, kwargs), state, None, items)  # type: ignore[attr-defined]
    return (copyreg.__newobj__, (cls, *args), state, None, items)  # type: ignore[attr-defined]


def _copied(reg: Any, memo: dict[int, Any] | None) -> Any:
    """`copy.copy` (memo None) or `copy.deepcopy` of a registry, as of a dict subclass's
    instance: reduced by a `copyreg` entry for its class or its own ``__reduce_ex__`` or
    ``__reduce__`` where it has one, else by `subclass_reduce` (FlowRegistry and
    PairFlowRegistry too: not by pickling, whose `restore` may build the other implementation),
    and rebuilt by copy's own reconstruction."""
    cls: Any = type(reg)
    reductor = copyreg.dispatch_table.get(cls) if _registry_base(cls) is not cls else None
    if reductor is not None:
        reduced = reductor(reg)
    elif _overrides(cls, "__reduce_ex__") or _overrides(cls, "__reduce__"):
        reduced = reg.__reduce_ex__(4)
    else:
        reduced = subclass_reduce(reg)
    return reg if isinstance(reduced, str) else _reconstruct(reg, memo, *reduced)


def copy_registry(reg: Any) -> Any:
    """``copy.copy``: see `_copied`."""
    return _copied(reg, None)


def deepcopy_registry(reg: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy``: see `_copied`."""
    return _copied(reg, memo)


def restore(name: str) -> Any:
    """Unpickle target: an empty registry of the implementation selected *here*.

    Pickles name this function and ``"FlowRegistry"``/``"PairFlowRegistry"``,
    never an implementation module, so a pickle made with the native core loads
    where only the fallback exists, and the other way round.
    """
    import flowreg

    if name not in ("FlowRegistry", "PairFlowRegistry"):
        raise ValueError(f"not a flowreg registry class: {name!r}")
    return getattr(flowreg, name)()
