"""``get_or_create``: call the factory at most once per missing id, across
threads and asyncio tasks.  Shared by both implementations.

The registry's own lock is never held while a factory runs: an in-flight
table (guarded by a small lock of its own) makes concurrent callers of the
same id wait on the leader's future while every other id stays usable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from ._mapping import ABSENT

__all__ = ["SingleFlight"]

_FAILED: Any = object()  # the leader's factory raised: waiters retry
_flights: weakref.WeakSet[SingleFlight] = weakref.WeakSet()


class _Call:
    __slots__ = ("future", "task", "thread")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.thread = threading.get_ident()
        self.task = task


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running event loop
        return None


class SingleFlight:
    """The in-flight factory calls of one registry."""

    __slots__ = ("__weakref__", "_calls", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Any, _Call] = {}
        _flights.add(self)

    def _reset(self) -> None:
        # After fork: the threads that led these calls do not exist in the child.
        self._lock = threading.Lock()
        self._calls = {}

    def _join(self, reg: Any, key: Any, task: asyncio.Task[Any] | None) -> tuple[Any, _Call | None, bool]:
        """(stored value or ABSENT, the call to lead or wait for, whether we lead it)."""
        with self._lock:
            value = reg._peek(key)
            if value is not ABSENT:
                return value, None, False
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call(task)
                return ABSENT, call, True
        # Waiting for a call this very thread (or task) is running would never end.
        if call.thread == threading.get_ident() and (task is None or call.task is None or call.task is task):
            raise RuntimeError(f"get_or_create: the factory for flow id {key!r} asked for that same id")
        return ABSENT, call, False

    def _finish(self, key: Any, call: _Call, result: Any) -> None:
        with self._lock:
            if self._calls.get(key) is call:
                del self._calls[key]
        call.future.set_result(result)

    def run(self, reg: Any, key: Any, factory: Callable[[Any], Any]) -> Any:
        while True:
            value, call, leader = self._join(reg, key, None)
            if call is None:
                return value
            if not leader:
                result = call.future.result()
                if result is not _FAILED:
                    return result
                continue  # the leader's factory raised: try to lead ourselves
            try:
                value = factory(key)
            except BaseException:
                self._finish(key, call, _FAILED)
                raise
            stored = reg.setdefault(key, value)  # stored directly meanwhile? that value wins
            self._finish(key, call, stored)
            return stored

    async def arun(self, reg: Any, key: Any, factory: Callable[[Any], Awaitable[Any]]) -> Any:
        task = _current_task()
        while True:
            value, call, leader = self._join(reg, key, task)
            if call is None:
                return value
            if not leader:
                # shield: a cancelled waiter must not cancel the leader's future
                result = await asyncio.shield(asyncio.wrap_future(call.future))
                if result is not _FAILED:
                    return result
                continue
            try:
                value = await factory(key)
            except BaseException:
                self._finish(key, call, _FAILED)
                raise
            stored = reg.setdefault(key, value)
            self._finish(key, call, stored)
            return stored


def _after_fork_in_child() -> None:
    for flight in list(_flights):
        flight._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
