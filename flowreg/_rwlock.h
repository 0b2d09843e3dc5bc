/* A small writer-preferring reader-writer lock for flowreg's native core.
 *
 * State is one 64-bit word changed with atomic compare-and-swap, so the
 * uncontended paths (try_read, try_write, read_unlock) never touch a mutex:
 *   bits  0..31  active readers
 *   bits 32..61  writers waiting
 *   bit  62      a writer holds the lock
 * Blocking waits use a mutex and two condition variables (pthreads on POSIX,
 * SRWLOCK + CONDITION_VARIABLE on Windows).  A waiting writer stops new
 * readers from entering, so it gets in once the current readers leave.
 *
 * The blocking functions must be called with the GIL released (or, on a
 * free-threaded build, the thread state detached): the Cython side always
 * tries first while attached and only blocks inside `with nogil`.
 */
#ifndef FLOWREG_RWLOCK_H
#define FLOWREG_RWLOCK_H

#include <stdint.h>

#if defined(_WIN32)
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <windows.h>
#  include <intrin.h>
typedef SRWLOCK fr_mutex_t;
typedef CONDITION_VARIABLE fr_cond_t;
#  define fr_mutex_init(m) InitializeSRWLock(m)
#  define fr_mutex_destroy(m) ((void)(m))
#  define fr_mutex_lock(m) AcquireSRWLockExclusive(m)
#  define fr_mutex_unlock(m) ReleaseSRWLockExclusive(m)
#  define fr_cond_init(c) InitializeConditionVariable(c)
#  define fr_cond_destroy(c) ((void)(c))
#  define fr_cond_wait(c, m) SleepConditionVariableSRW((c), (m), INFINITE, 0)
#  define fr_cond_broadcast(c) WakeAllConditionVariable(c)
/* Interlocked functions are full barriers: stronger than needed, always correct.  MSVC has
   _InterlockedOr64 and _InterlockedExchangeAdd64 only on x64 and ARM64: on 32-bit x86 they are
   compare-exchange loops (as in CPython's pyatomic_msc.h). */
static inline int fr_cas(volatile int64_t *p, int64_t expect, int64_t want) {
    return _InterlockedCompareExchange64((volatile LONG64 *)p, want, expect) == expect;
}
#  if defined(_M_X64) || defined(_M_ARM64)
static inline int64_t fr_load(volatile int64_t *p) { return _InterlockedOr64((volatile LONG64 *)p, 0); }
static inline int64_t fr_add(volatile int64_t *p, int64_t d) {
    return _InterlockedExchangeAdd64((volatile LONG64 *)p, d) + d;
}
#  else
static inline int64_t fr_load(volatile int64_t *p) {
    return _InterlockedCompareExchange64((volatile LONG64 *)p, 0, 0);
}
static inline int64_t fr_add(volatile int64_t *p, int64_t d) {
    int64_t s = fr_load(p);
    while (!fr_cas(p, s, s + d)) s = fr_load(p);
    return s + d;
}
#  endif
#else
#  include <pthread.h>
typedef pthread_mutex_t fr_mutex_t;
typedef pthread_cond_t fr_cond_t;
#  define fr_mutex_init(m) pthread_mutex_init((m), NULL)
#  define fr_mutex_destroy(m) pthread_mutex_destroy(m)
#  define fr_mutex_lock(m) pthread_mutex_lock(m)
#  define fr_mutex_unlock(m) pthread_mutex_unlock(m)
#  define fr_cond_init(c) pthread_cond_init((c), NULL)
#  define fr_cond_destroy(c) pthread_cond_destroy(c)
#  define fr_cond_wait(c, m) pthread_cond_wait((c), (m))
#  define fr_cond_broadcast(c) pthread_cond_broadcast(c)
/* GCC and clang (including Apple's) both provide the __atomic builtins. */
static inline int64_t fr_load(volatile int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int fr_cas(volatile int64_t *p, int64_t expect, int64_t want) {
    return __atomic_compare_exchange_n(p, &expect, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline int64_t fr_add(volatile int64_t *p, int64_t d) {
    return __atomic_add_fetch(p, d, __ATOMIC_ACQ_REL);
}
#endif

#define FR_READERS ((int64_t)0xFFFFFFFF)
#define FR_WAIT_ONE ((int64_t)1 << 32)
#define FR_WAITING ((int64_t)0x3FFFFFFF << 32)
#define FR_WRITER ((int64_t)1 << 62)

typedef struct {
    volatile int64_t state;
    fr_mutex_t mu;          /* guards the waits below, never held for long */
    fr_cond_t readers_cv;   /* readers wait here while a writer holds or waits */
    fr_cond_t writers_cv;   /* writers wait here for the lock to drain */
} fr_rwlock;

static inline void fr_rwlock_init(fr_rwlock *l) {
    l->state = 0;
    fr_mutex_init(&l->mu);
    fr_cond_init(&l->readers_cv);
    fr_cond_init(&l->writers_cv);
}

static inline void fr_rwlock_destroy(fr_rwlock *l) {
    fr_cond_destroy(&l->writers_cv);
    fr_cond_destroy(&l->readers_cv);
    fr_mutex_destroy(&l->mu);
}

/* Only for the child of fork(): other threads are gone, whatever they held. */
static inline void fr_rwlock_reinit(fr_rwlock *l) { fr_rwlock_init(l); }

static inline int fr_rwlock_try_read(fr_rwlock *l) {
    int64_t s = fr_load(&l->state);
    while ((s & ~FR_READERS) == 0) {   /* no writer holding, none waiting */
        if (fr_cas(&l->state, s, s + 1)) return 1;
        s = fr_load(&l->state);
    }
    return 0;
}

static inline int fr_rwlock_try_write(fr_rwlock *l) {
    return fr_cas(&l->state, 0, FR_WRITER);
}

static inline void fr_rwlock_read_unlock(fr_rwlock *l) {
    int64_t s = fr_add(&l->state, -1);
    if ((s & FR_READERS) == 0 && (s & FR_WAITING)) {
        /* The last reader out wakes the waiting writers; taking the mutex
           orders this wake-up after the writer's check-then-wait. */
        fr_mutex_lock(&l->mu);
        fr_cond_broadcast(&l->writers_cv);
        fr_mutex_unlock(&l->mu);
    }
}

static inline void fr_rwlock_write_unlock(fr_rwlock *l) {
    fr_mutex_lock(&l->mu);
    fr_add(&l->state, -FR_WRITER);
    fr_cond_broadcast(&l->writers_cv);
    fr_cond_broadcast(&l->readers_cv);
    fr_mutex_unlock(&l->mu);
}

/* Blocking acquisitions: call without the GIL. */
static inline void fr_rwlock_read_lock(fr_rwlock *l) {
    if (fr_rwlock_try_read(l)) return;
    fr_mutex_lock(&l->mu);
    while (!fr_rwlock_try_read(l)) fr_cond_wait(&l->readers_cv, &l->mu);
    fr_mutex_unlock(&l->mu);
}

static inline void fr_rwlock_write_lock(fr_rwlock *l) {
    int64_t s;
    if (fr_rwlock_try_write(l)) return;
    fr_mutex_lock(&l->mu);
    fr_add(&l->state, FR_WAIT_ONE);
    for (;;) {
        s = fr_load(&l->state);
        if ((s & (FR_READERS | FR_WRITER)) == 0 && fr_cas(&l->state, s, s - FR_WAIT_ONE + FR_WRITER))
            break;
        if ((s & (FR_READERS | FR_WRITER)) != 0) fr_cond_wait(&l->writers_cv, &l->mu);
    }
    fr_mutex_unlock(&l->mu);
}

#endif /* FLOWREG_RWLOCK_H */
