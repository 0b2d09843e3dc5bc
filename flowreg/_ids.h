/* Fast int -> int64 conversion for flowreg ids, and the few definitions the
 * native core needs to differ between GIL and free-threaded builds. */
#ifndef FLOWREG_IDS_H
#define FLOWREG_IDS_H

#include <Python.h>
#include <stdint.h>
#if PY_VERSION_HEX < 0x030B0000
#  include <longintrepr.h>
#endif

/* For the few helpers on every lookup's path, where a call would cost more than the work. */
#if defined(__GNUC__) || defined(__clang__)
#  define FR_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#  define FR_ALWAYS_INLINE __forceinline
#else
#  define FR_ALWAYS_INLINE inline
#endif

/* Cython's `cdef inline` helpers (the probe, the id conversion) must be inlined into the
 * lookup paths: from 3.12 on, CPython's larger Py_INCREF/Py_DECREF make gcc stop inlining
 * them there, and a lookup then costs about a third more.  Cython defines CYTHON_INLINE
 * before including this header; this applies to the code after it.  Free-threaded builds,
 * which cannot be compiled on the machines this was measured on, keep Cython's default. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(CYTHON_INLINE) && !defined(Py_GIL_DISABLED)
#  undef CYTHON_INLINE
#  define CYTHON_INLINE inline __attribute__((always_inline, unused))
#endif

/* The digits of an int, read the way CPython's own headers lay them out. */
#if PY_VERSION_HEX >= 0x030C0000
#  define FR_NDIGITS(o) ((Py_ssize_t)(((PyLongObject *)(o))->long_value.lv_tag >> 3))
#  define FR_NEGATIVE(o) ((((PyLongObject *)(o))->long_value.lv_tag & 3) == 2)
#  define FR_DIGITS(o) (((PyLongObject *)(o))->long_value.ob_digit)
#else
#  define FR_NDIGITS(o) (Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o))
#  define FR_NEGATIVE(o) (Py_SIZE(o) < 0)
#  define FR_DIGITS(o) (((PyLongObject *)(o))->ob_digit)
#endif
#define FR_MAX_FAST_DIGITS ((64 + PyLong_SHIFT - 1) / PyLong_SHIFT)

/* 0: *out holds the value; 2: out of the int64 range; -1: error set.
 * `o` must pass PyLong_Check.  Inline for every value that fits in 64 bits:
 * ids are often random 63-bit numbers, which take three 30-bit digits. */
static FR_ALWAYS_INLINE int fr_long_as_i64(PyObject *o, int64_t *out) {
    Py_ssize_t n = FR_NDIGITS(o);
    uint64_t mag = 0;
    int overflow;
    long long v;
    if (n <= FR_MAX_FAST_DIGITS) {
        const digit *d = FR_DIGITS(o);
#if PyLong_SHIFT == 30
        /* 63-bit ids have three digits, small ones one: no loop for those. */
        if (n == 3) {
            if (d[2] >> 4) return 2;  /* 64 bits or more */
            mag = ((uint64_t)d[2] << 60) | ((uint64_t)d[1] << 30) | d[0];
            n = 0;
        } else if (n == 1) {
            mag = d[0];
            n = 0;
        }
#endif
        while (n > 0) {
            if (mag >> (64 - PyLong_SHIFT)) return 2;
            mag = (mag << PyLong_SHIFT) | d[--n];
        }
        if (FR_NEGATIVE(o)) {
            if (mag > (uint64_t)1 << 63) return 2;
            *out = (int64_t)(0 - mag);
        } else {
            if (mag > (uint64_t)INT64_MAX) return 2;
            *out = (int64_t)mag;
        }
        return 0;
    }
    v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) return 2;
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = (int64_t)v;
    return 0;
}

/* Both parts of a pair id, when both are ints: 0, 2 or -1 as above, or 3 when a part
 * is not an int (the caller then tries __index__).  `o` must be a tuple of length 2. */
static inline int fr_pair_as_i64(PyObject *o, int64_t *a, int64_t *b) {
    PyObject *x = PyTuple_GET_ITEM(o, 0);
    PyObject *y = PyTuple_GET_ITEM(o, 1);
    int code;
    if (!PyLong_Check(x) || !PyLong_Check(y)) return 3;
    code = fr_long_as_i64(x, a);
    if (code != 0) return code;
    return fr_long_as_i64(y, b);
}

/* A new reference to item i of a list.  With fr_owned, a read hands its caller the flow
 * with one Py_INCREF and no Py_DECREF: on 3.12+ an incref (a 32-bit store) followed at once
 * by a decref (a 64-bit load of the same word) stalls on store forwarding, several ns each. */
static FR_ALWAYS_INLINE PyObject *fr_list_item_ref(PyObject *list, Py_ssize_t i) {
    PyObject *item = PyList_GET_ITEM(list, i);
    Py_INCREF(item);
    return item;
}
#define fr_owned(o) (o) /* Cython takes the reference over as the function's result */

/* Fibonacci hashing constants: 2^64 / golden ratio, and splitmix64's multiplier. */
#define FR_GOLDEN 0x9E3779B97F4A7C15ULL
#define FR_MIX 0xBF58476D1CE4E5B9ULL

/* A hint to start fetching a cache line; no-op where the compiler has none. */
#if defined(__GNUC__) || defined(__clang__)
#  define FR_PREFETCH(p) __builtin_prefetch(p)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#  include <xmmintrin.h>
#  define FR_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#elif defined(_MSC_VER) && defined(_M_ARM64)
#  include <intrin.h>
#  define FR_PREFETCH(p) __prefetch(p)
#else
#  define FR_PREFETCH(p) ((void)(p))
#endif

#ifdef Py_GIL_DISABLED
/* Free-threaded: counters and the hot slot are touched by concurrent readers. */
#  define FR_FREE_THREADED 1
#  define FR_BUMP(p, n) _Py_atomic_add_uint64((p), (n))
#  define FR_LOAD_U64(p) _Py_atomic_load_uint64_relaxed(p)
#  define FR_STORE_U64(p, v) _Py_atomic_store_uint64_relaxed((p), (v))
#  define FR_LOAD_SSIZE(p) _Py_atomic_load_ssize_relaxed(p)
#  define FR_STORE_SSIZE(p, v) _Py_atomic_store_ssize_relaxed((p), (v))
#else
/* GIL builds: every reader and writer of these fields holds the GIL. */
#  define FR_FREE_THREADED 0
#  define FR_BUMP(p, n) (*(p) += (n))
#  define FR_LOAD_U64(p) (*(p))
#  define FR_STORE_U64(p, v) (*(p) = (v))
#  define FR_LOAD_SSIZE(p) (*(p))
#  define FR_STORE_SSIZE(p, v) (*(p) = (v))
#endif

/* Once true, threads other than the finalizing one stop for good when they next take the
   GIL (or attach), so a native lock one of them holds is never released. */
#if PY_VERSION_HEX >= 0x030D0000
#  define FR_IS_FINALIZING() Py_IsFinalizing()
#else
#  define FR_IS_FINALIZING() _Py_IsFinalizing()
#endif

#endif /* FLOWREG_IDS_H */
