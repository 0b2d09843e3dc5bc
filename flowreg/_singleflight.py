"""``get_or_create``: call the factory at most once per missing id, across
threads and asyncio tasks.  Shared by both implementations.

The registry's own lock is never held while a factory runs: an in-flight
table (guarded by a small lock of its own) makes concurrent callers of the
same id wait on the leader's future while every other id stays usable.

A caller that would wait for a call it is itself part of raises RuntimeError
instead: the same thread (a factory asking for its own id, or an event loop
whose task leads the call), or code that inherited the leader's context (the
factory's own child tasks and ``asyncio.to_thread`` calls).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ._mapping import ABSENT, acquire_unless_stopped

__all__ = ["SingleFlight"]

_FAILED: Any = object()  # the leader failed (its factory raised, or storing the value did): waiters retry
_flights: weakref.WeakSet[SingleFlight] = weakref.WeakSet()


class _Call:
    __slots__ = ("future", "is_async", "thread")

    def __init__(self, is_async: bool) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.thread = threading.get_ident()
        self.is_async = is_async


# The calls whose factories the running code is inside of: set by a leader while its
# factory runs, and copied into the tasks (and to_thread calls) the factory starts.
_leading: contextvars.ContextVar[frozenset[_Call]] = contextvars.ContextVar(
    "flowreg_leading", default=frozenset()
)


@contextlib.contextmanager
def _inside(call: _Call) -> Iterator[None]:
    token = _leading.set(_leading.get() | {call})
    try:
        yield
    finally:
        _leading.reset(token)


class SingleFlight:
    """The in-flight factory calls of one registry."""

    __slots__ = ("__weakref__", "_calls", "_lock", "_peek")

    def __init__(self, base: type) -> None:
        # An RLock, which knows its owner: a finalizer the collector runs (or a signal handler)
        # may call get_or_create while this thread holds it (see _join).
        self._lock = threading.RLock()
        self._calls: dict[Any, _Call] = {}
        # The registry class's own lookup, not a subclass's method of that name. (What the
        # factory made is stored with setdefault: a subclass's, which may refuse it.)
        self._peek: Callable[[Any, Any], Any] = base._peek  # type: ignore[attr-defined]
        _flights.add(self)

    def _reset(self) -> None:
        # After fork: the threads that led these calls do not exist in the child.
        self._lock = threading.RLock()
        self._calls = {}

    def _join(self, reg: Any, key: Any, is_async: bool) -> tuple[Any, _Call | None, bool]:
        """(stored value or ABSENT, the call to lead or wait for, whether we lead it)."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            # A finalizer or signal handler interrupted this thread holding the lock: it may
            # neither wait for another thread's call (whose end needs the lock) nor lead one.
            value = self._peek(reg, key)
            if value is not ABSENT:
                return value, None, False
            raise RuntimeError(
                f"get_or_create: flow id {key!r} was asked for by a finalizer or signal handler "
                "that interrupted this thread's get_or_create on the same registry: only a stored "
                "flow can be returned there"
            )
        if not acquire_unless_stopped(self._lock):
            raise RuntimeError(
                "get_or_create: the interpreter is exiting and the registry's in-flight calls are "
                "locked by a thread it stopped (a daemon thread): it cannot be used any more"
            )
        try:
            value = self._peek(reg, key)
            if value is not ABSENT:
                return value, None, False
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call(is_async)
                return ABSENT, call, True
        finally:
            self._lock.release()
        # Waiting would never end if the leader's factory waits for us, or if blocking this
        # thread stops the leader: a synchronous wait in the leader's thread (its event loop,
        # or the factory itself), or any wait in the thread of a synchronous leader.
        if call in _leading.get() or (
            call.thread == threading.get_ident() and not (is_async and call.is_async)
        ):
            raise RuntimeError(
                f"get_or_create: flow id {key!r} is being created by a factory that cannot finish "
                "while this call waits for it (the factory asked for its own id, or runs in this thread)"
            )
        return ABSENT, call, False

    def _finish(self, key: Any, call: _Call, result: Any) -> None:
        """End the call: waiters get result (_FAILED: they retry)."""
        if acquire_unless_stopped(self._lock):  # else the interpreter is exiting: no one will ask again
            try:
                if self._calls.get(key) is call:
                    del self._calls[key]
            finally:
                self._lock.release()
        call.future.set_result(result)

    def run(self, reg: Any, key: Any, factory: Callable[[Any], Any]) -> Any:
        while True:
            value, call, leader = self._join(reg, key, False)
            if call is None:
                return value
            if not leader:
                result = _result(call, key)
                if result is not _FAILED:
                    return result
                continue  # the leader failed: try to lead ourselves
            result = _FAILED
            try:
                with _inside(call):
                    value = factory(key)
                result = reg.setdefault(key, value)  # stored directly meanwhile? that value wins
            finally:
                # whatever failed (the factory, storing, an interrupt), the waiters go on
                self._finish(key, call, result)
            return result

    async def arun(self, reg: Any, key: Any, factory: Callable[[Any], Awaitable[Any]]) -> Any:
        while True:
            value, call, leader = self._join(reg, key, True)
            if call is None:
                return value
            if not leader:
                # shield: a cancelled waiter must not cancel the leader's future
                result = await asyncio.shield(asyncio.wrap_future(call.future))
                if result is not _FAILED:
                    return result
                continue
            result = _FAILED
            try:
                with _inside(call):
                    value = await factory(key)
                result = reg.setdefault(key, value)
            finally:
                self._finish(key, call, result)
            return result


def _result(call: _Call, key: Any) -> Any:
    """The leader's result, once it has one; never a wait for a leader stopped at exit (see
    `acquire_unless_stopped`): a call not finished by then never will be."""
    if sys.is_finalizing() and not call.future.done():
        raise RuntimeError(
            f"get_or_create: the interpreter is exiting and flow id {key!r} is being created by a "
            "thread it stopped (a daemon thread): it cannot finish"
        )
    return call.future.result()


def _after_fork_in_child() -> None:
    for flight in list(_flights):
        flight._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
