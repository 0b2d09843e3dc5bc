# cython: language_level=3, freethreading_compatible=True
# cython: embedsignature=True, embedsignature.format=clinic
# cython: auto_pickle=False, autotestdict=False, cdivision=True, binding=False
"""flowreg's native core.

Layout: the flows live in a list (dense, entry i belongs to id i), the ids in
a dense int64 array beside it, and an open-addressing table of 32-bit slots
maps an id to its dense index.  A slot holds a hash tag above ``index + 1``
(see _tag), so most non-matching slots are rejected without reading the key
array.  Linear probing, load <= 1/4 up to 2**16 slots and <= 1/2 above (see
_mapping.usable), backward-shift deletion (no tombstones), delete =
swap-with-last.  Up to 2**16 slots a delete hashes no id: each slot's tag
holds its home slot, and `slot_of` the slot of each dense entry.

Thread safety: see the README.  In short, on GIL builds every change to the
structure is made while holding the GIL; work done without the GIL (batch
probing, rebuilding a large table) never changes what other threads can see,
holds the native reader-writer lock, and raises ``_gil_free`` so that
GIL-holding threads take that lock too.  On free-threaded builds every
operation takes the lock.  No Python code runs and no object is allocated
while an operation holds the lock: removed flows are released afterwards.
"""

cimport cython
from cpython.array cimport array, clone
from cpython.exc cimport PyErr_Clear
from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_FORMAT,
    PyBuffer_Release,
    PyObject_CheckBuffer,
    PyObject_GetBuffer,
)
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.long cimport PyLong_Check, PyLong_FromLongLong
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.number cimport PyIndex_Check, PyNumber_Index
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memset

import os
import sys
from collections.abc import Mapping, MutableMapping
from types import GenericAlias

from ._errors import FlowExists
from ._mapping import (
    ABSENT,
    MISSING,
    RegistryItems,
    RegistryKeys,
    RegistryValues,
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
)
from ._singleflight import SingleFlight

__all__ = ["FlowRegistry", "PairFlowRegistry"]


cdef extern from "Python.h":
    # The flow list is held and passed as a PyObject* (see _BaseRegistry._flows): as an object
    # it would be increfed and decrefed around every call (more work on 3.12+, immortality checks)
    PyObject* _list_get "PyList_GET_ITEM"(PyObject* lst, Py_ssize_t i)  # borrowed
    void _list_set "PyList_SET_ITEM"(PyObject* lst, Py_ssize_t i, PyObject* v)  # steals v
    Py_ssize_t _list_len "PyList_GET_SIZE"(PyObject* lst)
    int _list_append "PyList_Append"(PyObject* lst, object v) noexcept  # -1: see _append
    object _list_new "PyList_New"(Py_ssize_t n)
    PyObject** _list_items "PySequence_Fast_ITEMS"(object lst)  # a list's item array
    void _gc_untrack "PyObject_GC_UnTrack"(object o)
    void _gc_track "PyObject_GC_Track"(object o)
    object _bytearray_new "PyByteArray_FromStringAndSize"(const char* s, Py_ssize_t n)
    void _incref "Py_INCREF"(PyObject* o)
    void _decref "Py_DECREF"(PyObject* o)
    unsigned long _thread_id "PyThread_get_thread_ident"() nogil
    const Py_ssize_t PY_SSIZE_T_MAX

cdef extern from "_ids.h":
    int fr_long_as_i64(object o, int64_t* out) except -1
    int fr_pair_as_i64(object o, int64_t* a, int64_t* b) except -1
    PyObject* fr_list_item_ref(PyObject* lst, Py_ssize_t i)  # a new reference
    object fr_owned(PyObject* o)  # steals o: the reference becomes the caller's result
    const uint64_t FR_GOLDEN
    const uint64_t FR_MIX
    const bint FR_FREE_THREADED
    void FR_BUMP(uint64_t* counter, uint64_t n) nogil
    void FR_PREFETCH(const void* p) nogil
    uint64_t FR_LOAD_U64(uint64_t* p) nogil
    void FR_STORE_U64(uint64_t* p, uint64_t v) nogil
    Py_ssize_t FR_LOAD_SSIZE(Py_ssize_t* p) nogil
    bint FR_IS_FINALIZING()
    void FR_STORE_SSIZE(Py_ssize_t* p, Py_ssize_t v) nogil

cdef extern from "_rwlock.h" nogil:
    ctypedef struct fr_rwlock:
        pass
    ctypedef struct fr_mutex_t:
        pass
    void fr_rwlock_init(fr_rwlock* lock)
    void fr_rwlock_reinit(fr_rwlock* lock)
    void fr_rwlock_destroy(fr_rwlock* lock)
    bint fr_rwlock_try_read(fr_rwlock* lock)
    bint fr_rwlock_try_write(fr_rwlock* lock)
    void fr_rwlock_read_lock(fr_rwlock* lock)
    void fr_rwlock_write_lock(fr_rwlock* lock)
    void fr_rwlock_read_unlock(fr_rwlock* lock)
    void fr_rwlock_write_unlock(fr_rwlock* lock)
    void fr_mutex_init(fr_mutex_t* mu)
    void fr_mutex_lock(fr_mutex_t* mu)
    void fr_mutex_unlock(fr_mutex_t* mu)


cdef extern from *:
    """
    #ifndef FLOWREG_CYTHON_VERSION
    #  define FLOWREG_CYTHON_VERSION "unknown"
    #endif
    #ifndef FLOWREG_CFLAGS
    #  define FLOWREG_CFLAGS ""
    #endif
    #if defined(__clang__)
    #  define FLOWREG_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #  define FLOWREG_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #  define FLOWREG_COMPILER "msvc " Py_STRINGIFY(_MSC_VER)
    #else
    #  define FLOWREG_COMPILER "unknown"
    #endif
    """
    const char* FLOWREG_CYTHON_VERSION
    const char* FLOWREG_CFLAGS
    const char* FLOWREG_COMPILER

cdef extern from *:
    """
    /* CPython specialises a call of a C method (METH_O, METH_FASTCALL) only when the
       instance's type is exactly the type that owns the method's descriptor, and falls
       back to a generic call (18-29 ns more per call here) otherwise. The methods are
       written once on _BaseRegistry; this gives a concrete class its own descriptor for
       each (METH_COEXIST ones back a slot, which the subclass inherits anyway). */
    #ifdef Py_GIL_DISABLED
    #  define FR_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
    #  define FR_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
    #else
    #  define FR_BEGIN_CRITICAL_SECTION(op) {
    #  define FR_END_CRITICAL_SECTION() }
    #endif
    static int fr_own_methods(PyObject *cls, PyObject *base) {
        int result = 0;
    #if CYTHON_COMPILING_IN_CPYTHON
        PyObject *cls_dict = ((PyTypeObject *)cls)->tp_dict;
        PyObject *base_dict = ((PyTypeObject *)base)->tp_dict;
        PyObject *name, *descr, *own;
        PyMethodDef *def;
        Py_ssize_t pos = 0;
        FR_BEGIN_CRITICAL_SECTION(base_dict);
        while (result == 0 && PyDict_Next(base_dict, &pos, &name, &descr)) {
            if (!Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
                continue;
            }
            def = ((PyMethodDescrObject *)descr)->d_method;
            if (def->ml_flags & METH_COEXIST) {
                continue;
            }
            result = PyDict_Contains(cls_dict, name);
            if (result != 0) {  /* the class's own method, or an error */
                result = result < 0 ? -1 : 0;
                continue;
            }
            own = PyDescr_NewMethod((PyTypeObject *)cls, def);
            result = own == NULL ? -1 : PyDict_SetItem(cls_dict, name, own);
            Py_XDECREF(own);
        }
        FR_END_CRITICAL_SECTION();
        PyType_Modified((PyTypeObject *)cls);
    #endif
        return result;
    }
    """
    int fr_own_methods(object cls, object base) except -1


# What `flowreg info` reports about this build.
_BUILD_INFO = {
    "cython": FLOWREG_CYTHON_VERSION.decode(),
    "cflags": FLOWREG_CFLAGS.decode(),
    "compiler": FLOWREG_COMPILER.decode(),
    "free_threaded_build": bool(FR_FREE_THREADED),
}


cdef struct Table:
    uint32_t* slots       # owned; 1 << bits slots: 0 empty, else _tag(hash) | (index + 1)
    int64_t* keys         # owned; dense ids, `width` words each, room for keys_cap ids
    uint32_t* slot_of     # owned; the slot of each dense entry (keys_cap); small tables only
    Py_ssize_t size
    Py_ssize_t keys_cap
    int bits
    int width             # 1: int ids; 2: (int, int) ids

cdef struct Counters:
    uint64_t hits
    uint64_t misses
    uint64_t hot_hits
    uint64_t inserts
    uint64_t deletes
    uint64_t resizes

cdef struct Items:        # ids and flows copied out of a registry or an update() argument
    int64_t* keys         # owned
    PyObject** flows      # owned, and so is each reference in it
    Py_ssize_t n

cdef struct IdBatch:      # the ids of a batch call, as int64
    const int64_t* keys   # into `view`, or owned
    char* valid           # owned; NULL when every id is storable, else 0/1 per id
    Py_ssize_t n
    bint has_view
    Py_buffer view

cdef enum:
    MIN_BITS = 4
    MAX_BITS = 31
    SPARSE_MAX_BITS = 16      # see _usable
    BATCH_GIL_FREE = 2048     # ids in a batch before its probing runs without the GIL
    PREFETCH_AHEAD = 8        # batch probing fetches keys this far ahead, slots twice as far
    PREFETCH_MIN_BITS = 17    # ... in tables above 1 << SPARSE_MAX_BITS slots (smaller ones stay cached)
    REHASH_GIL_FREE = 65536   # ids in a table before rebuilding it runs without the GIL

cdef enum:                # how an id converted (see _id_of)
    ID_OK = 0
    ID_BAD_TYPE = 1
    ID_OVERFLOW = 2

cdef enum:                # why room for more ids could not be made (see _reserve)
    ROOM_NO_MEMORY = -3
    ROOM_TOO_MANY = -4

cdef enum:                # what an operation holds on the native lock
    HOLD_NONE = 0
    HOLD_READ = 1
    HOLD_WRITE = 2
    HOLD_OWNER = 3        # this thread is inside _hold_write_lock: nothing more to take


# ---------------------------------------------------------------- the table

cdef inline Py_ssize_t _usable(int bits) noexcept nogil:
    # _mapping.usable: load <= 1/4 in cache-sized tables, <= 1/2 in bigger ones
    return (<Py_ssize_t>1) << (bits - 2 if bits <= SPARSE_MAX_BITS else bits - 1)


cdef inline int64_t _second(const int64_t* key, int width) noexcept nogil:
    return key[1] if width == 2 else 0


cdef inline uint32_t _tag(uint32_t hi, int bits) noexcept nogil:
    """A slot's bits above the index: those of the hash that the home slot does not use.

    Up to 2**16 slots the hash's top bits, the home slot first, so that a delete's backward
    shift finds each entry's home without reading its id; above, the hash's low bits.
    """
    if bits <= SPARSE_MAX_BITS:
        return hi & ~((<uint32_t>1 << bits) - 1)
    return hi << bits


cdef inline uint32_t _hash_hi(int64_t a, int64_t b, int width) noexcept nogil:
    # Fibonacci hashing: the top bits of the product depend on every bit of the id.
    cdef uint64_t h = <uint64_t>a * FR_GOLDEN
    if width == 2:
        h = (h ^ <uint64_t>b) * FR_MIX
    return <uint32_t>(h >> 32)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline Py_ssize_t _probe_w(const Table* t, int64_t a, int64_t b, uint32_t* where,
                                const int w) noexcept nogil:
    """Dense index of the id, or -1; `where` gets its slot, or the empty slot it would take.

    `w` is the id width (t.width), passed as a constant by _probe so that each
    width gets its own straight-line code.
    """
    cdef uint32_t hi = _hash_hi(a, b, w)
    cdef uint32_t mask = (<uint32_t>1 << t.bits) - 1
    cdef uint32_t pos = hi >> (32 - t.bits)
    cdef uint32_t tag = _tag(hi, t.bits)
    cdef uint32_t s, d
    cdef const int64_t* k
    while True:
        s = t.slots[pos]
        if s == 0:
            where[0] = pos
            return -1
        d = s ^ tag
        if d <= mask:  # same tag: compare the whole id
            k = t.keys + <Py_ssize_t>(d - 1) * w
            if k[0] == a and (w == 1 or k[1] == b):
                where[0] = pos
                return d - 1
        pos = (pos + 1) & mask


cdef inline Py_ssize_t _probe(const Table* t, int64_t a, int64_t b, uint32_t* where) noexcept nogil:
    if t.width == 1:
        return _probe_w(t, a, b, where, 1)
    return _probe_w(t, a, b, where, 2)


cdef inline Py_ssize_t _find(const Table* t, int64_t a, int64_t b) noexcept nogil:
    cdef uint32_t where
    return _probe(t, a, b, &where)


cdef inline bint _holds(const Table* t, Py_ssize_t i, int64_t a, int64_t b) noexcept nogil:
    """Whether dense entry i (any value) is the id (a, b)."""
    if i < 0 or i >= t.size:
        return False
    return t.keys[i * t.width] == a and (t.width == 1 or t.keys[i * 2 + 1] == b)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _fill_slots(uint32_t* slots, int bits, const int64_t* keys, Py_ssize_t n,
                      int width, uint32_t* slot_of) noexcept nogil:
    """Enter n ids into empty slots (and, when given, their slots into `slot_of`)."""
    cdef uint32_t mask = (<uint32_t>1 << bits) - 1
    cdef uint32_t hi, pos
    cdef Py_ssize_t i
    for i in range(n):
        hi = _hash_hi(keys[i * width], _second(keys + i * width, width), width)
        pos = hi >> (32 - bits)
        while slots[pos] != 0:
            pos = (pos + 1) & mask
        slots[pos] = _tag(hi, bits) | <uint32_t>(i + 1)
        if slot_of != NULL:
            slot_of[i] = pos


cdef inline void _table_remove(Table* t, Py_ssize_t i, uint32_t hole, const int w) noexcept nogil:
    """Drop dense entry i (in slot `hole`) from the table; the last entry moves into i.

    Backward-shift deletion: later members of the hole's cluster move back so that no
    probe breaks, and no tombstone is left behind.
    """
    if t.slot_of != NULL:
        _remove_small(t, i, hole, w)
    else:
        _remove_big(t, i, hole, w)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _remove_small(Table* t, Py_ssize_t i, uint32_t hole, const int w) noexcept nogil:
    """_table_remove in a table that keeps `slot_of`, whose slots hold their home (see _tag):
    no id is hashed."""
    # (locals: extensions build with -fno-strict-aliasing, so each store to a slot would
    # make the compiler read t's fields again)
    cdef uint32_t* slots = t.slots
    cdef uint32_t* slot_of = t.slot_of
    cdef int shift = 32 - t.bits
    cdef uint32_t mask = (<uint32_t>1 << t.bits) - 1
    cdef uint32_t j = hole
    cdef uint32_t s, pos
    cdef Py_ssize_t last = t.size - 1
    while True:
        j = (j + 1) & mask
        s = slots[j]
        if s == 0:
            break
        if ((j - (s >> shift)) & mask) >= ((j - hole) & mask):  # home not in (hole, j]
            slots[hole] = s
            slot_of[(s & mask) - 1] = hole
            hole = j
    slots[hole] = 0
    if i != last:
        pos = slot_of[last]
        slot_of[i] = pos
        slots[pos] = (slots[pos] & ~mask) | <uint32_t>(i + 1)
        t.keys[i * w] = t.keys[last * w]
        if w == 2:
            t.keys[i * 2 + 1] = t.keys[last * 2 + 1]
    FR_STORE_SSIZE(&t.size, last)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _remove_big(Table* t, Py_ssize_t i, uint32_t hole, const int w) noexcept nogil:
    """_table_remove in a big table: each entry's home is hashed from its id."""
    cdef uint32_t mask = (<uint32_t>1 << t.bits) - 1
    cdef uint32_t j = hole
    cdef uint32_t s, home, pos
    cdef Py_ssize_t last = t.size - 1
    cdef const int64_t* k
    while True:
        j = (j + 1) & mask
        s = t.slots[j]
        if s == 0:
            break
        k = t.keys + <Py_ssize_t>((s & mask) - 1) * w
        home = _hash_hi(k[0], _second(k, w), w) >> (32 - t.bits)
        if ((j - home) & mask) >= ((j - hole) & mask):  # home not in (hole, j]: may move
            t.slots[hole] = s
            hole = j
    t.slots[hole] = 0
    if i != last:
        # The last entry's slot is the one holding index last + 1: found from its home
        # slot by comparing index bits only.
        k = t.keys + last * w
        pos = _hash_hi(k[0], _second(k, w), w) >> (32 - t.bits)
        while (t.slots[pos] & mask) != <uint32_t>(last + 1):
            pos = (pos + 1) & mask
        t.slots[pos] = (t.slots[pos] & ~mask) | <uint32_t>(i + 1)
        t.keys[i * w] = k[0]
        if w == 2:
            t.keys[i * 2 + 1] = k[1]
    FR_STORE_SSIZE(&t.size, last)


cdef int _cmp_desc(const void* x, const void* y) noexcept nogil:
    cdef Py_ssize_t u = (<const Py_ssize_t*>x)[0]
    cdef Py_ssize_t v = (<const Py_ssize_t*>y)[0]
    return (u < v) - (u > v)


cdef Py_ssize_t _found_desc(Py_ssize_t* idx, Py_ssize_t n) noexcept nogil:
    """Keep the distinct found (>= 0) indices, in descending order; returns how many."""
    cdef Py_ssize_t i, m = 0
    for i in range(n):
        if idx[i] >= 0:
            idx[m] = idx[i]
            m += 1
    qsort(idx, m, sizeof(Py_ssize_t), _cmp_desc)
    n = m
    m = 0
    for i in range(n):
        if m == 0 or idx[m - 1] != idx[i]:
            idx[m] = idx[i]
            m += 1
    return m


# ----------------------------------------------------------------- ids

cdef int _index_id(object o, int64_t* out) except -1:
    if not PyIndex_Check(o):
        return ID_BAD_TYPE
    try:
        o = PyNumber_Index(o)  # __index__ may run Python code: before any change
    except TypeError:
        return ID_BAD_TYPE
    return fr_long_as_i64(o, out)


cdef inline int _int_id(object o, int64_t* out) except -1:
    if PyLong_Check(o):
        return fr_long_as_i64(o, out)
    return _index_id(o, out)


cdef int _pair_index_id(tuple o, int64_t* a, int64_t* b) except -1:
    cdef int code = _int_id(o[0], a)
    if code != ID_OK:
        return code
    return _int_id(o[1], b)


cdef inline int _pair_id(object o, int64_t* a, int64_t* b) except -1:
    cdef int code
    if not isinstance(o, tuple) or len(<tuple>o) != 2:
        return ID_BAD_TYPE
    code = fr_pair_as_i64(o, a, b)  # two ints: read in place, no references taken
    if code == 3:
        return _pair_index_id(<tuple>o, a, b)
    return code


cdef inline int _id_of(_BaseRegistry r, object o, int64_t* a, int64_t* b) except -1:
    """ID_OK with the id in a (and b), or why `o` cannot be an id of this registry."""
    if r._t.width == 1:
        return _int_id(o, a)
    return _pair_id(o, a, b)


cdef int _write_id(_BaseRegistry r, object o, int64_t* a, int64_t* b) except -1:
    """Convert an id that is about to be stored: TypeError or OverflowError if it cannot be."""
    cdef int code = _id_of(r, o, a, b)
    if code != ID_OK:
        raise id_error(o, code, r._t.width == 2)
    return 0


cdef object _key_object(_BaseRegistry r, const int64_t* key):
    if r._t.width == 1:
        return PyLong_FromLongLong(key[0])
    return (PyLong_FromLongLong(key[0]), PyLong_FromLongLong(key[1]))


# ---------------------------------------------------------------- locking

cdef inline int _acquire(_BaseRegistry r, int mode) except -1:
    """Enter a read or write of the structure; returns what to pass to _release."""
    if not FR_FREE_THREADED and r._gil_free == 0:
        return HOLD_NONE  # the GIL is all it takes: nobody works on it without the GIL
    return _acquire_slow(r, mode)


cdef int _acquire_slow(_BaseRegistry r, int mode) except -1:
    if mode == HOLD_READ:
        if fr_rwlock_try_read(&r._rw):
            return HOLD_READ
    elif fr_rwlock_try_write(&r._rw):
        return HOLD_WRITE
    if FR_LOAD_SSIZE(&r._owner) == <Py_ssize_t>_thread_id():
        return HOLD_OWNER
    _check_not_stuck(r)
    with nogil:  # never wait for the native lock while holding the GIL
        if mode == HOLD_READ:
            fr_rwlock_read_lock(&r._rw)
        else:
            fr_rwlock_write_lock(&r._rw)
    return mode


cdef int _check_not_stuck(_BaseRegistry r) except -1:
    """Before waiting for the lock: at interpreter exit its holder can never let it go."""
    if FR_IS_FINALIZING():
        raise locked_at_exit(type(r).__name__)
    return 0


cdef inline void _release(_BaseRegistry r, int held) noexcept:
    if held == HOLD_READ:
        fr_rwlock_read_unlock(&r._rw)
    elif held == HOLD_WRITE:
        fr_rwlock_write_unlock(&r._rw)


cdef int _go_gil_free(_BaseRegistry r, int* held, int mode) except -1:
    """Prepare to work without the GIL: hold the native lock in `mode`.

    Returns 1 when the GIL had to be released to get the lock, so other
    threads may have changed the registry meanwhile (GIL builds only).
    """
    cdef int released = 0
    if FR_FREE_THREADED:
        return 0  # the operation holds the lock already
    if held[0] == HOLD_NONE:  # (holding nothing, so raising here is safe)
        if mode == HOLD_READ:
            if not fr_rwlock_try_read(&r._rw):
                _check_not_stuck(r)
                with nogil:
                    fr_rwlock_read_lock(&r._rw)
                released = 1
        elif not fr_rwlock_try_write(&r._rw):
            _check_not_stuck(r)
            with nogil:
                fr_rwlock_write_lock(&r._rw)
            released = 1
        held[0] = mode
    r._gil_free += 1
    return released


cdef inline void _end_gil_free(_BaseRegistry r) noexcept:
    if not FR_FREE_THREADED:
        r._gil_free -= 1


# Every live registry is on this list (borrowed references) so that the child
# of a fork can reset their locks, whoever held them when the parent forked.
cdef PyObject* _all_head = NULL
cdef fr_mutex_t _all_mu
fr_mutex_init(&_all_mu)


cdef void _link(_BaseRegistry r) noexcept:
    global _all_head
    fr_mutex_lock(&_all_mu)
    r._next = _all_head
    if _all_head != NULL:
        (<_BaseRegistry>_all_head)._prev = <PyObject*>r
    _all_head = <PyObject*>r
    r._linked = True
    fr_mutex_unlock(&_all_mu)


cdef void _unlink(_BaseRegistry r) noexcept:
    global _all_head
    if not r._linked:
        return
    fr_mutex_lock(&_all_mu)
    if r._prev != NULL:
        (<_BaseRegistry>r._prev)._next = r._next
    else:
        _all_head = r._next
    if r._next != NULL:
        (<_BaseRegistry>r._next)._prev = r._prev
    r._linked = False
    fr_mutex_unlock(&_all_mu)


def _after_fork_in_child():
    """Reset every registry's lock: the threads that held them are gone."""
    cdef PyObject* p
    cdef _BaseRegistry r
    fr_mutex_init(&_all_mu)
    p = _all_head
    while p != NULL:
        r = <_BaseRegistry>p
        fr_rwlock_reinit(&r._rw)
        r._gil_free = 0
        r._owner = 0
        p = r._next


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ------------------------------------------------------------ structure

# The helpers below run under the write lock, so they fail with a ROOM_* code and no
# Python exception: raising one allocates (a traceback), which may start the garbage
# collector, whose __del__s could then wait for the lock this thread holds.  Callers
# raise it with _room_error after releasing the lock.

cdef int _reserve(_BaseRegistry r, Py_ssize_t extra, int* held) except -1:
    """Room in the table and the key array for `extra` more ids; a failure changes nothing.

    Returns 1 when the GIL was released on the way (callers must probe again), 0, or
    a ROOM_* code.  Raises only before taking any lock (see _go_gil_free).
    """
    cdef Table* t = &r._t
    cdef Py_ssize_t need = t.size + extra
    cdef int released = 0, bits
    if need > _usable(t.bits):
        if t.size >= REHASH_GIL_FREE:
            released = _go_gil_free(r, held, HOLD_WRITE)
            need = t.size + extra  # others may have changed it while we waited
            bits = _bits_for(need) if need > _usable(t.bits) else 0
            if bits > 0:
                bits = _rehash(r, bits, True)
            _end_gil_free(r)
        else:
            bits = _rehash(r, _bits_for(need), False)
        if bits < 0:
            return bits
    if need > t.keys_cap and _grow_keys(t, need) < 0:
        return ROOM_NO_MEMORY
    return released


cdef object _room_error(int code, Py_ssize_t need):
    if code == ROOM_TOO_MANY:
        return MemoryError(f"a registry cannot hold {need} flows (at most {_usable(MAX_BITS)})")
    return MemoryError()


cdef int _bits_for(Py_ssize_t n) noexcept:
    """Table bits for n ids, or ROOM_TOO_MANY."""
    cdef int bits = MIN_BITS
    while _usable(bits) < n:
        bits += 1
        if bits > MAX_BITS:
            return ROOM_TOO_MANY
    return bits


cdef int _rehash(_BaseRegistry r, int bits, bint gil_free) noexcept:
    """Move the table to 1 << bits slots, built aside and swapped in (fork-safe)."""
    cdef Table* t = &r._t
    cdef uint32_t* slots
    cdef uint32_t* slot_of = NULL
    if bits < 0:
        return bits
    slots = <uint32_t*>PyMem_Calloc((<size_t>1) << bits, sizeof(uint32_t))
    if slots == NULL:
        return ROOM_NO_MEMORY
    if bits <= SPARSE_MAX_BITS and t.keys_cap:  # built aside too
        slot_of = <uint32_t*>PyMem_Malloc(t.keys_cap * sizeof(uint32_t))
        if slot_of == NULL:
            PyMem_Free(slots)
            return ROOM_NO_MEMORY
    if gil_free:
        with nogil:
            _fill_slots(slots, bits, t.keys, t.size, t.width, slot_of)
    else:
        _fill_slots(slots, bits, t.keys, t.size, t.width, slot_of)
    PyMem_Free(t.slots)
    PyMem_Free(t.slot_of)
    t.slots = slots
    t.bits = bits
    t.slot_of = slot_of  # NULL in a big table: deletes find the moved entry's slot by its id
    FR_BUMP(&r._c.resizes, 1)
    return 0


cdef int _grow_keys(Table* t, Py_ssize_t need) noexcept:
    cdef Py_ssize_t cap = need + (need >> 3) + 8
    cdef int64_t* keys
    cdef uint32_t* slot_of
    if cap > PY_SSIZE_T_MAX // <Py_ssize_t>(2 * sizeof(int64_t)):
        return ROOM_NO_MEMORY
    keys = <int64_t*>PyMem_Realloc(t.keys, cap * t.width * sizeof(int64_t))
    if keys == NULL:
        return ROOM_NO_MEMORY
    t.keys = keys
    if t.bits <= SPARSE_MAX_BITS:  # a small table's `slot_of` grows with the ids
        slot_of = <uint32_t*>PyMem_Realloc(t.slot_of, cap * sizeof(uint32_t))
        if slot_of == NULL:
            return ROOM_NO_MEMORY  # keys_cap unchanged: `slot_of` still covers it
        t.slot_of = slot_of
    t.keys_cap = cap
    return 0


cdef inline int _append(PyObject* flows, object flow) noexcept:
    if _list_append(flows, flow) < 0:  # only a MemoryError, from a freelist: nothing collects
        PyErr_Clear()
        return ROOM_NO_MEMORY
    return 0


cdef int _pad_flows(_BaseRegistry r, Py_ssize_t need) noexcept:
    """Make the flow list at least `need` long (None past the end) so inserts cannot fail."""
    while _list_len(r._flows) < need:
        if _append(r._flows, None) < 0:  # reallocates only: no object is created
            return ROOM_NO_MEMORY
    return 0


cdef Py_ssize_t _find_or_reserve(_BaseRegistry r, int64_t a, int64_t b, int* held,
                                 uint32_t* pos) except -2:
    """Dense index of the id; or -1 with room reserved for it at slot `pos`; or a ROOM_* code."""
    cdef Py_ssize_t i = _probe(&r._t, a, b, pos)
    cdef int room
    if i >= 0:
        return i
    if r._t.size + 1 > _usable(r._t.bits) or r._t.size + 1 > r._t.keys_cap:
        room = _reserve(r, 1, held)
        if room < 0:
            return room
        i = _probe(&r._t, a, b, pos)  # the table moved, or others changed it meanwhile
    return i


cdef int _insert_at(_BaseRegistry r, int64_t a, int64_t b, object flow, uint32_t pos) noexcept:
    """Add a new id at empty slot `pos` (room reserved); only the list append can fail (ROOM_NO_MEMORY)."""
    cdef Table* t = &r._t
    cdef Py_ssize_t i = t.size
    cdef PyObject* pad
    if _list_len(r._flows) == i:
        if _append(r._flows, flow) < 0:  # leaves everything as it was
            return ROOM_NO_MEMORY
    else:
        pad = _list_get(r._flows, i)  # a None past the end
        _incref(<PyObject*>flow)
        _list_set(r._flows, i, <PyObject*>flow)
        _decref(pad)
    t.keys[i * t.width] = a
    if t.width == 2:
        t.keys[i * 2 + 1] = b
    t.slots[pos] = _tag(_hash_hi(a, b, t.width), t.bits) | <uint32_t>(i + 1)
    if t.slot_of != NULL:
        t.slot_of[i] = pos
    FR_STORE_SSIZE(&t.size, i + 1)
    r._version += 1
    FR_BUMP(&r._c.inserts, 1)
    return 0


cdef inline PyObject* _replace_at(_BaseRegistry r, Py_ssize_t i, object flow) noexcept:
    """Store `flow` at dense entry i; returns the old flow's reference for the caller to drop."""
    cdef PyObject* old = _list_get(r._flows, i)
    _incref(<PyObject*>flow)
    _list_set(r._flows, i, <PyObject*>flow)
    return old


cdef inline PyObject* _remove_at(_BaseRegistry r, Py_ssize_t i, uint32_t pos) noexcept:
    """Remove dense entry i (slot pos); returns its flow's reference for the caller to drop.

    The caller drops it after releasing the lock: the flow's __del__ may re-enter.
    """
    cdef Py_ssize_t last = r._t.size - 1, hot
    cdef PyObject* flows = r._flows
    cdef PyObject* removed = _list_get(flows, i)
    if r._t.width == 1:
        _table_remove(&r._t, i, pos, 1)
    else:
        _table_remove(&r._t, i, pos, 2)
    if i != last:
        _list_set(flows, i, _list_get(flows, last))  # the last flow's reference moves
    _incref(<PyObject*>None)
    _list_set(flows, last, <PyObject*>None)
    hot = r._hot  # gone with entry i, or moved with the last one (a select: no branch)
    r._hot = -1 if hot == i else i if hot == last else hot
    r._version += 1
    FR_BUMP(&r._c.deletes, 1)
    return removed


cdef inline int _take(_BaseRegistry r, object fid, PyObject** removed) except -1:
    """Remove fid; `removed` gets its flow's reference, or NULL. Returns the ID_* code."""
    cdef int64_t a = 0, b = 0
    cdef uint32_t pos
    cdef Py_ssize_t i
    cdef int held
    cdef int code = _id_of(r, fid, &a, &b)
    removed[0] = NULL
    if code == ID_OK:
        held = _acquire(r, HOLD_WRITE)
        i = _probe(&r._t, a, b, &pos)
        if i >= 0:
            removed[0] = _remove_at(r, i, pos)
        _release(r, held)
    return code


cdef object _steal(PyObject* ref):
    """A removed flow as an object, dropping the reference the registry held."""
    cdef object flow = <object>ref
    _decref(ref)
    return flow


cdef int _copy_items(_BaseRegistry r, Items* out) except -1:
    """Copy ids and flows out under the read lock, without allocating objects under it."""
    cdef Py_ssize_t n, i
    cdef int held
    cdef int64_t* keys
    cdef PyObject** flows
    cdef PyObject* v
    while True:
        n = FR_LOAD_SSIZE(&r._t.size)  # a guess, checked under the lock
        keys = <int64_t*>PyMem_Malloc((n * r._t.width + 1) * sizeof(int64_t))
        flows = <PyObject**>PyMem_Malloc((n + 1) * sizeof(PyObject*))
        if keys == NULL or flows == NULL:
            PyMem_Free(keys)
            PyMem_Free(flows)
            raise MemoryError()
        held = _acquire(r, HOLD_READ)
        if r._t.size == n:
            if n:  # an empty registry may have no key array: memcpy must not see its NULL
                memcpy(keys, r._t.keys, n * r._t.width * sizeof(int64_t))
            for i in range(n):
                v = _list_get(r._flows, i)
                _incref(v)
                flows[i] = v
            _release(r, held)
            out.keys = keys
            out.flows = flows
            out.n = n
            return 0
        _release(r, held)  # it changed size before we got in: size the copy again
        PyMem_Free(keys)
        PyMem_Free(flows)


cdef void _free_items(Items* items) noexcept:
    cdef Py_ssize_t i
    for i in range(items.n):
        _decref(items.flows[i])
    PyMem_Free(items.keys)
    PyMem_Free(items.flows)
    items.keys = NULL
    items.flows = NULL
    items.n = 0


cdef int _collect_items(_BaseRegistry r, object other, dict kwargs, Items* out) except -1:
    """The converted ids and flows an update() applies; raises before anything changes."""
    cdef Py_ssize_t n, i
    cdef int64_t a = 0, b = 0
    cdef list pairs
    cdef tuple pair
    if isinstance(other, _BaseRegistry) and (<_BaseRegistry>other)._t.width == r._t.width \
            and not kwargs:
        return _copy_items(<_BaseRegistry>other, out)
    pairs = update_pairs(other, kwargs)
    n = len(pairs)
    out.n = 0
    out.keys = <int64_t*>PyMem_Malloc((n * r._t.width + 1) * sizeof(int64_t))
    out.flows = <PyObject**>PyMem_Malloc((n + 1) * sizeof(PyObject*))
    if out.keys == NULL or out.flows == NULL:
        _free_items(out)
        raise MemoryError()
    try:
        for i in range(n):
            pair = <tuple>pairs[i]
            _write_id(r, pair[0], &a, &b)
            out.keys[i * r._t.width] = a
            if r._t.width == 2:
                out.keys[i * 2 + 1] = b
            _incref(<PyObject*>pair[1])
            out.flows[i] = <PyObject*>pair[1]
            out.n = i + 1
    except BaseException:
        _free_items(out)
        raise
    return 0


cdef int _apply_items(_BaseRegistry r, Items* items, Py_ssize_t capacity=0) except -1:
    """Store every item, all or nothing: room is made first (for `capacity` ids at least), then
    nothing can fail.

    Frees `items` before it drops the flows replaced: those go in the order replaced (an
    earlier value of an id given twice too), and a flow their __del__ removes goes at once."""
    cdef Table* t = &r._t
    cdef Py_ssize_t i, j, new = 0, n_old = 0, n = items.n
    cdef uint32_t pos
    cdef int held, room = 0
    cdef const int64_t* k
    cdef PyObject** olds = <PyObject**>PyMem_Malloc((n + 1) * sizeof(PyObject*))
    if olds == NULL:
        raise MemoryError()
    held = _acquire(r, HOLD_WRITE)
    try:
        while True:
            new = n  # ids not yet present (an upper bound: repeats count twice)
            if t.size:
                new = 0
                for i in range(n):
                    k = items.keys + i * t.width
                    new += _find(t, k[0], _second(k, t.width)) < 0
            room = _reserve(r, max(new, capacity - t.size), &held)
            if room <= 0:
                break
        new = max(new + t.size, capacity)
        if room == 0:
            room = _pad_flows(r, new)
        if room < 0:
            n = 0  # nothing is stored
        for i in range(n):
            k = items.keys + i * t.width
            j = _probe(t, k[0], _second(k, t.width), &pos)
            if j >= 0:
                olds[n_old] = _replace_at(r, j, <object>items.flows[i])
                n_old += 1
            else:
                _insert_at(r, k[0], _second(k, t.width), <object>items.flows[i], pos)  # padded: cannot fail
    finally:
        _release(r, held)
        _free_items(items)  # the given flows are the registry's now, or in olds
        for i in range(n_old):
            _decref(olds[i])  # replaced flows go only now: their __del__ may re-enter
        PyMem_Free(olds)
    if room < 0:
        raise _room_error(room, new)
    return 0


# ------------------------------------------------------------- batches

cdef bint _little_endian = sys.byteorder == "little"


cdef bint _is_int64_view(const Py_buffer* view, int width) noexcept:
    cdef const char* f = view.format
    if view.itemsize != 8 or f == NULL:
        return False
    if f[0] == c'@' or f[0] == c'=' or (f[0] == c'<' and _little_endian) or \
            ((f[0] == c'>' or f[0] == c'!') and not _little_endian):
        f += 1
    if not ((f[0] == c'q' or f[0] == c'l') and f[1] == 0):
        return False
    if width == 1:
        return view.ndim == 1
    return view.ndim == 2 and view.shape[1] == 2


cdef list _batch_from(_BaseRegistry r, object fids, IdBatch* out):
    """The batch's ids as int64: straight from an int64 buffer (returns None), else
    converted one by one (returns the ids as given, for error messages)."""
    cdef Py_ssize_t n, i
    cdef int64_t a = 0, b = 0
    cdef int64_t* keys
    cdef bint all_valid = True
    out.has_view = False
    out.valid = NULL
    if PyObject_CheckBuffer(fids):
        try:
            PyObject_GetBuffer(fids, &out.view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
        except (BufferError, ValueError, TypeError):
            pass  # not a contiguous buffer: read it as an iterable
        else:
            if _is_int64_view(&out.view, r._t.width):
                out.n = out.view.shape[0]
                if <uintptr_t>out.view.buf % sizeof(int64_t) == 0:
                    out.has_view = True
                    out.keys = <const int64_t*>out.view.buf
                    return None
                # a misaligned buffer (numpy.frombuffer with an offset): read it as a copy
                keys = <int64_t*>PyMem_Malloc(<size_t>out.view.len + sizeof(int64_t))
                if keys != NULL:
                    memcpy(keys, out.view.buf, out.view.len)
                PyBuffer_Release(&out.view)
                if keys == NULL:
                    raise MemoryError()
                out.keys = keys
                return None
            PyBuffer_Release(&out.view)
    cdef list seq = buffer_pairs(fids) if r._t.width == 2 and PyObject_CheckBuffer(fids) else None
    if seq is None:
        seq = list(fids)
    n = len(seq)
    keys = <int64_t*>PyMem_Malloc((n * r._t.width + 1) * sizeof(int64_t))
    out.keys = keys
    out.valid = <char*>PyMem_Malloc(n + 1)
    out.n = n
    if keys == NULL or out.valid == NULL:
        _batch_free(out)
        raise MemoryError()
    try:
        for i in range(n):
            out.valid[i] = _id_of(r, seq[i], &a, &b) == ID_OK
            all_valid &= out.valid[i]
            keys[i * r._t.width] = a
            if r._t.width == 2:
                keys[i * 2 + 1] = b
    except BaseException:
        _batch_free(out)
        raise
    if all_valid:
        PyMem_Free(out.valid)
        out.valid = NULL
    return seq


cdef void _batch_free(IdBatch* batch) noexcept:
    if batch.has_view:
        PyBuffer_Release(&batch.view)
        batch.has_view = False
    else:
        PyMem_Free(<void*>batch.keys)
    PyMem_Free(batch.valid)
    batch.keys = NULL
    batch.valid = NULL


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _find_many(const Table* table, const IdBatch* batch, Py_ssize_t* idx,
                           char* hit, int64_t* first_miss) noexcept nogil:
    """Probe every id of a batch: idx[i] = dense index or -1 and/or hit[i] = 0 or 1.

    first_miss (if not NULL) gets the first storable id that missed, as read here:
    another thread may change a buffer's ids meanwhile.  Returns the number of hits.

    Probes of different ids are independent, so their cache misses can overlap: the
    slot of the id 2 * PREFETCH_AHEAD places on is fetched early, and PREFETCH_AHEAD
    places on, that slot (in cache by then) gives the key to fetch.
    """
    cdef Table t = table[0]  # a local copy: stores through idx/hit cannot alias it
    cdef Py_ssize_t i, j, hits = 0, n = batch.n, w = t.width
    cdef uint32_t mask = (<uint32_t>1 << t.bits) - 1, s
    cdef const int64_t* k
    cdef int64_t a, b
    cdef bint prefetch = t.bits >= PREFETCH_MIN_BITS  # smaller tables stay in cache
    for i in range(n):
        if not prefetch:
            pass
        elif i + 2 * PREFETCH_AHEAD < n:
            k = batch.keys + (i + 2 * PREFETCH_AHEAD) * w
            FR_PREFETCH(t.slots + (_hash_hi(k[0], _second(k, w), w) >> (32 - t.bits)))
        if prefetch and i + PREFETCH_AHEAD < n:
            k = batch.keys + (i + PREFETCH_AHEAD) * w
            s = t.slots[_hash_hi(k[0], _second(k, w), w) >> (32 - t.bits)]
            if s:
                FR_PREFETCH(t.keys + <Py_ssize_t>((s & mask) - 1) * w)
        if batch.valid != NULL and not batch.valid[i]:
            j = -1
        else:
            k = batch.keys + i * w
            a = k[0]
            b = _second(k, w)
            j = _find(&t, a, b)
            if j < 0 and first_miss != NULL:
                first_miss[0] = a
                first_miss[1] = b
                first_miss = NULL
        hits += j >= 0
        if idx != NULL:
            idx[i] = j
        if hit != NULL:
            hit[i] = j >= 0
    return hits


# ---------------------------------------------------------- the classes

cdef extern from *:
    """
    typedef visitproc fr_visitproc;
    typedef traverseproc fr_traverseproc;
    typedef inquiry fr_inquiry;
    """
    ctypedef int (*fr_visitproc)(PyObject*, void*) noexcept
    ctypedef int (*fr_traverseproc)(PyObject*, fr_visitproc, void*) noexcept
    ctypedef int (*fr_inquiry)(PyObject*) noexcept
    ctypedef struct fr_type "PyTypeObject":
        fr_traverseproc tp_traverse
        fr_inquiry tp_clear
    int _list_set_slice "PyList_SetSlice"(PyObject* lst, Py_ssize_t low, Py_ssize_t high,
                                          PyObject* items) noexcept


cdef PyObject* _untracked_list() except NULL:
    """A new empty list for a registry's flows, as an owned reference.

    Untracked, gc never hands it out (gc.get_objects, gc.get_referrers of a flow,
    gc.get_referents of the registry), so no Python code can shrink it under the registry:
    the registry's traverse visits its flows instead, as a dict's visits its values, and its
    clear (gc's, to break a cycle) empties it."""
    cdef list flows = []
    _gc_untrack(flows)
    _incref(<PyObject*>flows)
    return <PyObject*>flows


cdef fr_traverseproc _cython_traverse = NULL  # what Cython's traverse visits: _flight (and a heap type)


cdef int _traverse(_BaseRegistry r, fr_visitproc visit, void* arg) noexcept:
    cdef int e = _cython_traverse(<PyObject*>r, visit, arg)
    cdef Py_ssize_t i
    cdef PyObject* flow
    if e or r._flows == NULL:
        return e
    for i in range(_list_len(r._flows)):
        flow = _list_get(r._flows, i)
        if flow != NULL:
            e = visit(flow, arg)
            if e:
                return e
    return 0


cdef int _gc_clear(_BaseRegistry r) noexcept:
    """What gc calls to break a cycle through the registry: empty it, as clear() does (the
    table first, then the flows go), but allocating nothing (the table keeps its size)."""
    if r._flows == NULL:
        return 0
    if r._t.size:
        memset(r._t.slots, 0, ((<size_t>1) << r._t.bits) * sizeof(uint32_t))
        FR_STORE_SSIZE(&r._t.size, 0)
        r._hot = -1
        r._version += 1
    if _list_set_slice(r._flows, 0, PY_SSIZE_T_MAX, NULL) < 0:  # all of it: allocates nothing
        PyErr_Clear()  # (cannot happen)
    return 0


cdef int _own_gc(type cls) except -1:
    """Make the class's gc traverse visit the flows too (Cython's does not: no object field
    holds them), and give it a clear that empties the registry (Cython's: none)."""
    global _cython_traverse
    cdef fr_type* t = <fr_type*><PyObject*>cls
    if _cython_traverse == NULL:
        _cython_traverse = t.tp_traverse
    if t.tp_traverse != _cython_traverse or t.tp_clear != NULL:  # a subclass with fields of its own
        raise SystemError(f"{cls.__name__} has a gc traverse or clear that _own_gc does not know")
    t.tp_traverse = <fr_traverseproc>_traverse
    t.tp_clear = <fr_inquiry>_gc_clear
    return 0


cdef inline int _check_self(object obj, str method) except -1:
    """A method left a cyfunction (see pop) is given any object as self when called unbound."""
    if not isinstance(obj, _BaseRegistry):
        raise TypeError(f"{method}() needs a flow registry, not {type(obj).__name__!r}")
    return 0


@cython.no_gc_clear  # _gc_clear instead (see _own_gc): Cython's has no flows to clear
@cython.collection_type("mapping")  # `match` takes it for a mapping, as it does a dict
cdef class _BaseRegistry:
    """Code shared by FlowRegistry (int ids) and PairFlowRegistry ((int, int) ids)."""

    cdef Table _t
    # Dense flows: entry i belongs to id i; len >= size, None past it.  A list (a strong
    # reference) that gc never sees: _traverse visits its flows instead (see _untracked_list).
    cdef PyObject* _flows
    cdef Py_ssize_t _hot      # dense index of the last switch_flow hit, or -1
    cdef uint64_t _version    # changes whenever the set of ids does (iterators check it)
    cdef Counters _c
    cdef uint64_t _resets     # reset_stats() calls: exporters tell a reset from a lull by it
    cdef fr_rwlock _rw
    cdef int _gil_free        # GIL builds: threads working on the registry without the GIL
    cdef Py_ssize_t _owner    # the thread inside _hold_write_lock, or 0 (atomic: others read it)
    cdef object _flight       # SingleFlight of get_or_create, made on first use
    cdef PyObject* _prev      # the list of live registries (borrowed; see _link)
    cdef PyObject* _next
    cdef bint _linked
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._t.width = 1
        self._t.bits = MIN_BITS
        self._t.slots = <uint32_t*>PyMem_Calloc((<size_t>1) << MIN_BITS, sizeof(uint32_t))
        if self._t.slots == NULL:
            raise MemoryError()
        self._flows = _untracked_list()
        self._hot = -1
        fr_rwlock_init(&self._rw)
        _link(self)

    def __dealloc__(self):
        _unlink(self)
        if self._t.slots != NULL:
            fr_rwlock_destroy(&self._rw)
        PyMem_Free(self._t.slots)
        PyMem_Free(self._t.keys)
        PyMem_Free(self._t.slot_of)
        if self._flows != NULL:
            _decref(self._flows)  # (the flows go last, as from a dict)

    def __init__(self, items=(), /, *, capacity=0):
        cdef Py_ssize_t cap
        cdef Items its
        capacity = PyNumber_Index(capacity)
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        if capacity > _usable(MAX_BITS):
            bits_for(capacity)  # raises the fallback's MemoryError (before cap could overflow)
        cap = capacity
        if cap or type(items) is not tuple or items:
            # ids converted first: a bad one leaves the registry as it was, its room too
            _collect_items(self, items, None, &its)
            try:
                _apply_items(self, &its, cap)
            finally:
                _free_items(&its)

    @cython.binding(True)  # (a cyfunction: Cython makes it the class method it must be)
    def __class_getitem__(cls, item):
        return GenericAlias(cls, item)

    # --- reads of one id

    def __len__(self):
        return FR_LOAD_SSIZE(&self._t.size)

    def __contains__(self, fid):
        cdef int64_t a = 0, b = 0
        cdef Py_ssize_t i = -1
        cdef int held
        if _id_of(self, fid, &a, &b) == ID_OK:
            held = _acquire(self, HOLD_READ)
            i = _find(&self._t, a, b)
            _release(self, held)
        if i >= 0:
            FR_BUMP(&self._c.hits, 1)
            return True
        FR_BUMP(&self._c.misses, 1)
        return False

    def __getitem__(self, fid):
        cdef int64_t a = 0, b = 0
        cdef Py_ssize_t i
        cdef int held
        cdef PyObject* flow
        cdef int code = _id_of(self, fid, &a, &b)
        if code == ID_OK:
            held = _acquire(self, HOLD_READ)
            i = _find(&self._t, a, b)
            if i >= 0:
                flow = fr_list_item_ref(self._flows, i)
                _release(self, held)
                FR_BUMP(&self._c.hits, 1)
                return fr_owned(flow)
            _release(self, held)
        FR_BUMP(&self._c.misses, 1)
        missing = special_method(self, "__missing__")
        if missing is not ABSENT:
            return missing(fid)
        raise not_found(fid, code == ID_OK, self._t.width == 2)

    def get(self, fid, default=None, /):
        """Return the flow stored under fid, or default."""
        cdef int64_t a = 0, b = 0
        cdef Py_ssize_t i
        cdef int held
        cdef PyObject* flow
        if _id_of(self, fid, &a, &b) == ID_OK:
            held = _acquire(self, HOLD_READ)
            i = _find(&self._t, a, b)
            if i >= 0:
                flow = fr_list_item_ref(self._flows, i)
                _release(self, held)
                FR_BUMP(&self._c.hits, 1)
                return fr_owned(flow)
            _release(self, held)
        FR_BUMP(&self._c.misses, 1)
        return default

    def switch_flow(self, fid, /):
        """Return the flow under fid (FlowNotFound if none); repeating the last id skips the probe."""
        cdef int64_t a = 0, b = 0
        cdef Py_ssize_t i
        cdef int held
        cdef PyObject* flow
        cdef int code = _id_of(self, fid, &a, &b)
        if code == ID_OK:
            held = _acquire(self, HOLD_READ)
            i = FR_LOAD_SSIZE(&self._hot)
            if _holds(&self._t, i, a, b):
                flow = fr_list_item_ref(self._flows, i)
                _release(self, held)
                FR_BUMP(&self._c.hot_hits, 1)
                FR_BUMP(&self._c.hits, 1)
                return fr_owned(flow)
            i = _find(&self._t, a, b)
            if i >= 0:
                FR_STORE_SSIZE(&self._hot, i)
                flow = fr_list_item_ref(self._flows, i)
                _release(self, held)
                FR_BUMP(&self._c.hits, 1)
                return fr_owned(flow)
            _release(self, held)
        FR_BUMP(&self._c.misses, 1)
        raise not_found(fid, code == ID_OK, self._t.width == 2)

    def _peek(self, key):
        """The flow under an already converted id, or ABSENT; not counted in stats()."""
        cdef int64_t a = 0, b = 0
        cdef Py_ssize_t i
        cdef int held
        if _id_of(self, key, &a, &b) != ID_OK:
            return ABSENT
        held = _acquire(self, HOLD_READ)
        i = _find(&self._t, a, b)
        flow = <object>_list_get(self._flows, i) if i >= 0 else None
        _release(self, held)
        return flow if i >= 0 else ABSENT  # a global's lookup may raise: not under the lock

    # --- writes of one id

    def __setitem__(self, fid, flow):
        cdef int64_t a = 0, b = 0
        cdef uint32_t pos
        cdef Py_ssize_t i
        cdef PyObject* old = NULL
        cdef int held, room = 0
        _write_id(self, fid, &a, &b)
        held = _acquire(self, HOLD_WRITE)
        try:
            i = _find_or_reserve(self, a, b, &held, &pos)
            if i >= 0:
                old = _replace_at(self, i, flow)
            room = _insert_at(self, a, b, flow, pos) if i == -1 else <int>min(i, 0)
        finally:
            _release(self, held)
        if old != NULL:
            _decref(old)
        if room < 0:
            raise _room_error(room, FR_LOAD_SSIZE(&self._t.size) + 1)

    def __delitem__(self, fid):
        cdef PyObject* removed
        cdef int code = _take(self, fid, &removed)
        if removed == NULL:
            raise not_found(fid, code == ID_OK, self._t.width == 2)
        _decref(removed)

    def create_flow(self, fid, flow):
        """Store flow under a new id and return it; FlowExists if the id is taken."""
        cdef int64_t a = 0, b = 0
        cdef uint32_t pos
        cdef Py_ssize_t i
        cdef int held, room = 0
        _write_id(self, fid, &a, &b)
        held = _acquire(self, HOLD_WRITE)
        try:
            i = _find_or_reserve(self, a, b, &held, &pos)
            room = _insert_at(self, a, b, flow, pos) if i == -1 else <int>min(i, 0)
        finally:
            _release(self, held)
        if i >= 0:
            raise FlowExists(fid)
        if room < 0:
            raise _room_error(room, FR_LOAD_SSIZE(&self._t.size) + 1)
        return flow

    def delete_flow(self, fid, /):
        """Remove fid and return its flow; FlowNotFound if absent."""
        cdef PyObject* removed
        cdef int code = _take(self, fid, &removed)
        if removed == NULL:
            raise not_found(fid, code == ID_OK, self._t.width == 2)
        return _steal(removed)

    @cython.binding(True)  # (its default, MISSING, is no literal that a text signature can show)
    def pop(self, fid, default=MISSING, /):
        """Remove fid and return its flow, or default if given (else FlowNotFound)."""
        cdef PyObject* removed
        _check_self(self, "pop")
        cdef int code = _take(self, fid, &removed)
        if removed != NULL:
            return _steal(removed)
        if default is MISSING:
            raise not_found(fid, code == ID_OK, self._t.width == 2)
        return default

    def popitem(self):
        """Remove and return the last (id, flow) pair in dense order (LIFO)."""
        cdef int64_t key[2]
        cdef uint32_t pos
        cdef PyObject* removed = NULL
        cdef int held = _acquire(self, HOLD_WRITE)
        cdef Py_ssize_t last = self._t.size - 1
        if last >= 0:
            memcpy(key, self._t.keys + last * self._t.width, self._t.width * sizeof(int64_t))
            _probe(&self._t, key[0], _second(key, self._t.width), &pos)
            removed = _remove_at(self, last, pos)
        _release(self, held)
        if removed == NULL:
            raise KeyError(f"popitem(): {type(self).__name__} is empty")
        flow = _steal(removed)
        return (_key_object(self, key), flow)

    def setdefault(self, fid, default=None, /):
        """Return the flow under fid, storing default there first if absent."""
        cdef int64_t a = 0, b = 0
        cdef uint32_t pos
        cdef Py_ssize_t i
        cdef int held, room = 0
        _write_id(self, fid, &a, &b)
        held = _acquire(self, HOLD_WRITE)
        try:
            i = _find_or_reserve(self, a, b, &held, &pos)
            flow = <object>_list_get(self._flows, i) if i >= 0 else default
            room = _insert_at(self, a, b, default, pos) if i == -1 else <int>min(i, 0)
        finally:
            _release(self, held)
        if room < 0:
            raise _room_error(room, FR_LOAD_SSIZE(&self._t.size) + 1)
        return flow

    def get_or_create(self, fid, factory):
        """Return the flow under fid, calling factory(id) once to create it if absent."""
        cdef int64_t key[2]
        cdef Py_ssize_t i
        cdef int held
        key[1] = 0
        _write_id(self, fid, &key[0], &key[1])
        held = _acquire(self, HOLD_READ)
        i = _find(&self._t, key[0], key[1])
        flow = <object>_list_get(self._flows, i) if i >= 0 else None
        _release(self, held)
        if i >= 0:
            FR_BUMP(&self._c.hits, 1)
            return flow
        FR_BUMP(&self._c.misses, 1)
        return self._flights().run(self, _key_object(self, key), factory)

    def aget_or_create(self, fid, factory):
        """Awaitable get_or_create: await factory(id) once to create the flow if absent."""
        cdef int64_t key[2]
        key[1] = 0
        _write_id(self, fid, &key[0], &key[1])
        if _BaseRegistry._peek(self, _key_object(self, key)) is ABSENT:  # not a subclass's
            FR_BUMP(&self._c.misses, 1)
        else:
            FR_BUMP(&self._c.hits, 1)
        return self._flights().arun(self, _key_object(self, key), factory)

    cdef object _flights(self):
        # Read and set under the lock: on free-threaded builds its release/acquire is what
        # makes the SingleFlight's own fields visible to the thread that reads the field.
        cdef int held = _acquire(self, HOLD_READ)
        flight = self._flight
        _release(self, held)
        if flight is None:
            made = SingleFlight(_BaseRegistry)  # made before taking the lock, dropped (if unused) after it
            held = _acquire(self, HOLD_WRITE)
            if self._flight is None:
                self._flight = made
            flight = self._flight
            _release(self, held)
        return flight

    # --- the whole registry

    def clear(self):
        """Remove every flow."""
        cdef PyObject* fresh = _untracked_list()
        cdef list old
        cdef Py_ssize_t n
        cdef int held
        cdef uint32_t* slots = <uint32_t*>PyMem_Calloc((<size_t>1) << MIN_BITS, sizeof(uint32_t))
        if slots == NULL:
            _decref(fresh)
            raise MemoryError()
        try:
            held = _acquire(self, HOLD_WRITE)  # (raises only at interpreter exit)
        except BaseException:
            _decref(fresh)
            PyMem_Free(slots)
            raise
        old = <list>self._flows  # keeps the flows alive until the lock is released
        _decref(self._flows)
        self._flows = fresh
        PyMem_Free(self._t.slots)
        PyMem_Free(self._t.keys)
        PyMem_Free(self._t.slot_of)
        self._t.slots = slots
        self._t.bits = MIN_BITS
        self._t.keys = NULL
        self._t.slot_of = NULL
        self._t.keys_cap = 0
        n = self._t.size
        FR_STORE_SSIZE(&self._t.size, 0)
        self._hot = -1
        if n:  # clearing an empty registry does not change its ids: iterators go on
            self._version += 1
        FR_BUMP(&self._c.deletes, n)
        _release(self, held)
        del old

    def update(self, other=(), /, **kwargs):
        """Store every (id, flow) of a mapping or an iterable of pairs, all or nothing."""
        cdef Items items
        if not kwargs and type(other) is tuple and not other:
            return
        _collect_items(self, other, kwargs, &items)
        try:
            _apply_items(self, &items)
        finally:
            _free_items(&items)

    def copy(self):
        """A shallow copy, of the same type: ``type(self)(self)``."""
        return type(self)(self)

    def __copy__(self):
        return copy_registry(self)

    def __deepcopy__(self, memo):
        return deepcopy_registry(self, memo)

    @classmethod
    def fromkeys(cls, iterable, value=None, /):
        """A new registry with every id of iterable mapped to value."""
        reg = cls()
        if cls is FlowRegistry or cls is PairFlowRegistry:
            _BaseRegistry.update(reg, [(fid, value) for fid in iterable])  # ids checked first
        else:  # as dict.fromkeys of a dict subclass: one __setitem__ per id, as given, in order
            for fid in iterable:
                reg[fid] = value
        return reg

    def __or__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __ror__(self, other):
        if isinstance(other, _BaseRegistry):
            # `reg | Sub()`: the left operand's | decides, as with dict (Python asks a Python
            # subclass of an extension type for its reflected method first)
            return other.__or__(self)
        if not isinstance(other, Mapping):
            return NotImplemented
        new = type(self)(other)
        new.update(self)
        return new

    def __ior__(self, other):
        self.update(other)
        return self

    def __eq__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        return items_equal(self.snapshot(), other)

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self):
        return registry_repr(self, self.snapshot())

    def __sizeof__(self):
        cdef int held = _acquire(self, HOLD_READ)  # clear() may swap the list and arrays
        flows = <list>self._flows
        cdef Py_ssize_t size = ((<Py_ssize_t>1 << self._t.bits) * sizeof(uint32_t)
                                + self._t.keys_cap * self._t.width * sizeof(int64_t)
                                + (self._t.keys_cap * sizeof(uint32_t) if self._t.slot_of else 0))
        _release(self, held)
        return object.__sizeof__(self) + size + flows.__sizeof__()

    def __reduce__(self):
        cls = type(self)
        if cls is FlowRegistry or cls is PairFlowRegistry:
            return (restore, (cls.__name__,), None, None, iter(self.snapshot()))
        return subclass_reduce(self)  # as for a dict subclass: __new__, state, items

    def snapshot(self):
        """A consistent list of (id, flow) pairs, taken under the read lock."""
        cdef Items items
        cdef Py_ssize_t i
        cdef list result = []
        _copy_items(self, &items)
        try:
            for i in range(items.n):
                result.append((_key_object(self, items.keys + i * self._t.width),
                               <object>items.flows[i]))
        finally:
            _free_items(&items)
        return result

    def ids(self):
        """The ids in dense order as array('q'); pairs come flattened (a0, b0, a1, b1, ...)."""
        cdef array out
        cdef Py_ssize_t n
        cdef int held
        while True:
            n = FR_LOAD_SSIZE(&self._t.size)  # a guess, checked under the lock
            out = clone(_int64_array, n * self._t.width, False)
            held = _acquire(self, HOLD_READ)
            if self._t.size == n:
                if n:  # an empty array has no buffer: memcpy must not see its NULL
                    memcpy(out.data.as_voidptr, self._t.keys, n * self._t.width * sizeof(int64_t))
                _release(self, held)
                return out
            _release(self, held)

    # --- iteration

    def __iter__(self):
        return _RegistryIter(self, 0, False)

    def __reversed__(self):
        return _RegistryIter(self, 0, True)

    def _iter(self, int kind, bint reverse=False):
        return _RegistryIter(self, kind, reverse)

    def keys(self):
        """A set-like view of the ids."""
        return RegistryKeys(self)

    def values(self):
        """A view of the flows."""
        return RegistryValues(self)

    def items(self):
        """A set-like view of the (id, flow) pairs."""
        return RegistryItems(self)

    # --- batches

    @cython.binding(True)  # (its default, MISSING, is no literal that a text signature can show)
    def get_many(self, fids, default=MISSING):
        """The flows of many ids, in order; FlowNotFound on the first missing one unless default is given."""
        _check_self(self, "get_many")
        cdef IdBatch batch
        cdef list originals = _batch_from(self, fids, &batch)
        cdef Py_ssize_t i, j, hits = 0, missing_at = -1
        cdef Py_ssize_t* found
        cdef int held
        cdef PyObject* v
        cdef int64_t miss[2]  # the first missing id, as the probe read it
        cdef bint strict = default is MISSING  # read here: the fill loop must not raise
        miss[1] = 0
        try:
            result = _list_new(batch.n)  # filled below under the lock, without allocating
            # Out of gc's sight until full: other threads run while this one waits for the
            # lock or probes without the GIL, and gc.get_objects() must not hand them NULLs
            # (or, below, dense indices).
            _gc_untrack(result)
            # The probe writes each id's dense index into the list's own item array, and
            # the fill replaces it with the flow: no index array of the batch's size (at
            # 100,000 ids 800 KB, fresh from the kernel on every call in a new process:
            # 358 page faults a call with it, 2.6 without).
            found = <Py_ssize_t*>_list_items(result)
            held = _acquire(self, HOLD_READ)
            try:
                if batch.n >= BATCH_GIL_FREE:
                    _go_gil_free(self, &held, HOLD_READ)
                    with nogil:
                        _find_many(&self._t, &batch, found, NULL, miss)
                    _end_gil_free(self)
                else:
                    _find_many(&self._t, &batch, found, NULL, miss)
                for i in range(batch.n):
                    j = found[i]
                    if j >= 0:
                        v = _list_get(self._flows, j)
                        hits += 1
                    elif strict:
                        missing_at = i
                        memset(&found[i], 0, (batch.n - i) * sizeof(Py_ssize_t))  # NULL items
                        break
                    else:
                        v = <PyObject*>default
                    _incref(v)
                    _list_set(<PyObject*>result, i, v)
            finally:
                _release(self, held)
            FR_BUMP(&self._c.hits, hits)
            FR_BUMP(&self._c.misses, (batch.n if missing_at < 0 else missing_at + 1) - hits)
            if missing_at >= 0:
                fid = originals[missing_at] if originals is not None else _key_object(self, miss)
                raise not_found(fid, batch.valid == NULL or batch.valid[missing_at],
                                self._t.width == 2)
            _gc_track(result)
            return result
        finally:
            _batch_free(&batch)

    def contains_many(self, fids):
        """One answer per id: a bytearray of 0/1 for an int64 buffer, else a list of bools."""
        cdef IdBatch batch
        cdef Py_ssize_t hits
        cdef int held
        cdef char* out
        cdef list originals = _batch_from(self, fids, &batch)
        try:
            result = _bytearray_new(NULL, batch.n)
            out = PyByteArray_AS_STRING(result)
            held = _acquire(self, HOLD_READ)
            try:
                if batch.n >= BATCH_GIL_FREE:
                    _go_gil_free(self, &held, HOLD_READ)
                    with nogil:
                        hits = _find_many(&self._t, &batch, NULL, out, NULL)
                    _end_gil_free(self)
                else:
                    hits = _find_many(&self._t, &batch, NULL, out, NULL)
            finally:
                _release(self, held)
            FR_BUMP(&self._c.hits, hits)
            FR_BUMP(&self._c.misses, batch.n - hits)
            if originals is None:  # an int64 buffer
                return result
            return [byte != 0 for byte in result]
        finally:
            _batch_free(&batch)

    def delete_many(self, fids):
        """Remove every present id (absent ones are ignored); returns how many were removed."""
        cdef IdBatch batch
        cdef Py_ssize_t i, m = 0
        cdef Py_ssize_t* found
        cdef PyObject** removed = NULL
        cdef uint32_t pos
        cdef int held
        cdef const int64_t* k
        _batch_from(self, fids, &batch)
        found = <Py_ssize_t*>PyMem_Malloc((batch.n + 1) * sizeof(Py_ssize_t))
        # Entry i of `removed` is written just after entry i of `found` is read for the
        # last time: one array serves both (a pointer and a Py_ssize_t are the same size).
        removed = <PyObject**>found
        try:
            if found == NULL:
                raise MemoryError()
            held = _acquire(self, HOLD_WRITE)
            try:
                # Find without the GIL (read only), then remove holding it.  Highest
                # dense index first: the entry moved down from the end is never one
                # still to be removed.
                if batch.n >= BATCH_GIL_FREE:
                    _go_gil_free(self, &held, HOLD_WRITE)
                    with nogil:
                        _find_many(&self._t, &batch, found, NULL, NULL)
                        m = _found_desc(found, batch.n)
                    _end_gil_free(self)
                else:
                    _find_many(&self._t, &batch, found, NULL, NULL)
                    m = _found_desc(found, batch.n)
                for i in range(m):
                    k = self._t.keys + found[i] * self._t.width
                    _probe(&self._t, k[0], _second(k, self._t.width), &pos)
                    removed[i] = _remove_at(self, found[i], pos)
            finally:
                _release(self, held)
                _batch_free(&batch)  # first: a flow's __del__ may want to resize the caller's buffer
                for i in range(m):
                    _decref(removed[i])
            return m
        finally:
            PyMem_Free(found)
            _batch_free(&batch)

    # --- statistics

    def stats(self):
        """Counters: size, capacity, lookups, hits, misses, hot_hits, inserts, deletes, resizes, resets."""
        cdef Counters* c = &self._c
        cdef int held = _acquire(self, HOLD_READ)  # size and capacity of one moment
        cdef Py_ssize_t size = self._t.size
        cdef Py_ssize_t capacity = _usable(self._t.bits)
        _release(self, held)
        hits = FR_LOAD_U64(&c.hits)
        misses = FR_LOAD_U64(&c.misses)
        return {
            "size": size,
            "capacity": capacity,
            "lookups": hits + misses,
            "hits": hits,
            "misses": misses,
            "hot_hits": FR_LOAD_U64(&c.hot_hits),
            "inserts": FR_LOAD_U64(&c.inserts),
            "deletes": FR_LOAD_U64(&c.deletes),
            "resizes": FR_LOAD_U64(&c.resizes),
            "resets": FR_LOAD_U64(&self._resets),
        }

    def reset_stats(self):
        """Zero the counters of stats(), except resets, which counts these calls (size and capacity stay)."""
        cdef Counters* c = &self._c
        FR_STORE_U64(&c.hits, 0)  # one by one: other threads may be counting (free-threaded)
        FR_STORE_U64(&c.misses, 0)
        FR_STORE_U64(&c.hot_hits, 0)
        FR_STORE_U64(&c.inserts, 0)
        FR_STORE_U64(&c.deletes, 0)
        FR_STORE_U64(&c.resizes, 0)
        FR_BUMP(&self._resets, 1)

    # --- for tests of the locking

    def _hold_write_lock(self, fn):
        """Call fn() holding the write lock (test hook; this thread may re-enter)."""
        cdef Py_ssize_t me = <Py_ssize_t>_thread_id()
        if FR_LOAD_SSIZE(&self._owner) == me:
            return fn()
        if not fr_rwlock_try_write(&self._rw):
            with nogil:
                fr_rwlock_write_lock(&self._rw)
        FR_STORE_SSIZE(&self._owner, me)
        if not FR_FREE_THREADED:
            self._gil_free += 1  # sends the other GIL-holding threads to the lock
        try:
            return fn()
        finally:
            if FR_LOAD_SSIZE(&self._owner) == me:  # (a fork inside fn resets the lock in the child)
                if not FR_FREE_THREADED:
                    self._gil_free -= 1
                FR_STORE_SSIZE(&self._owner, 0)
                fr_rwlock_write_unlock(&self._rw)


cdef array _int64_array = array("q")


@cython.final
cdef class _RegistryIter:
    """Iterator over ids (kind 0), flows (1) or (id, flow) pairs (2), in dense order."""

    # Dropped once exhausted on GIL builds; kept on free-threaded ones, as CPython's list
    # iterator does there, so that a thread sharing the iterator never reads a freed one.
    cdef _BaseRegistry _reg
    cdef Py_ssize_t _next
    cdef uint64_t _version
    cdef int _kind
    cdef bint _reverse
    cdef bint _done

    def __cinit__(self, _BaseRegistry reg not None, int kind, bint reverse):
        cdef int held = _acquire(reg, HOLD_READ)
        self._version = reg._version
        self._next = reg._t.size - 1 if reverse else 0
        _release(reg, held)
        self._reg = reg
        self._kind = kind
        self._reverse = reverse

    def __iter__(self):
        return self

    def __length_hint__(self):
        cdef _BaseRegistry r = self._reg
        if self._done or r is None:
            return 0
        return max(0, self._next + 1 if self._reverse else FR_LOAD_SSIZE(&r._t.size) - self._next)

    def __next__(self):
        cdef _BaseRegistry r = self._reg
        cdef Py_ssize_t i = self._next
        cdef int64_t key[2]
        cdef PyObject* flow = NULL
        cdef int held
        if self._done or r is None:
            raise StopIteration
        held = _acquire(r, HOLD_READ)
        if r._version != self._version:
            _release(r, held)
            raise RuntimeError(f"{type(r).__name__} ids changed during iteration")
        if i < 0 or i >= r._t.size:
            _release(r, held)
            self._done = True
            if not FR_FREE_THREADED:
                self._reg = None
            raise StopIteration
        memcpy(key, r._t.keys + i * r._t.width, r._t.width * sizeof(int64_t))
        if self._kind:
            flow = _list_get(r._flows, i)
            _incref(flow)
        _release(r, held)
        self._next = i - 1 if self._reverse else i + 1
        if self._kind == 0:
            return _key_object(r, key)
        value = _steal(flow)
        if self._kind == 1:
            return value
        return (_key_object(r, key), value)

    def __reduce__(self):
        # As dict's iterators: what remains, read by a copy (this one stays where it is); one
        # that a change invalidated raises next()'s RuntimeError.
        cdef _RegistryIter rest
        if self._done or self._reg is None:
            return iter, ([],)
        rest = _RegistryIter(self._reg, self._kind, self._reverse)
        rest._version = self._version
        rest._next = self._next
        return iter, (list(rest),)


cdef class FlowRegistry(_BaseRegistry):
    """FlowRegistry(items=(), /, *, capacity=0)
--

A registry of flows keyed by int64 ids: a drop-in for dict[int, Flow]."""


cdef class PairFlowRegistry(_BaseRegistry):
    """PairFlowRegistry(items=(), /, *, capacity=0)
--

A registry of flows keyed by (int64, int64) ids such as (user_id, session_id)."""

    def __cinit__(self, *args, **kwargs):
        self._t.width = 2


_own_gc(_BaseRegistry)  # first: its subclasses copied its traverse
_own_gc(FlowRegistry)
_own_gc(PairFlowRegistry)
fr_own_methods(FlowRegistry, _BaseRegistry)
fr_own_methods(PairFlowRegistry, _BaseRegistry)
MutableMapping.register(FlowRegistry)
MutableMapping.register(PairFlowRegistry)
