"""Export registries' ``stats()`` to Prometheus or StatsD.

``import flowreg`` never imports this module, and this module imports no
exporter library up front:

- ``PrometheusCollector`` needs ``prometheus_client`` (``pip install 'flowreg[prometheus]'``);
  constructing one without it raises ImportError saying so.
- ``StatsdReporter`` imports nothing: it only calls ``gauge(stat, value)`` and
  ``incr(stat, count)`` on the client it is given, such as ``statsd.StatsClient``
  (``pip install 'flowreg[statsd]'`` installs that one).

Both read ``stats()`` and ``sys.getsizeof(registry)`` (the registry's own
structure, not the flows in it) when they export, never on a lookup, so a
registry being exported is exactly as fast as one that is not.

``reset_stats()`` does not disturb either: ``stats()["resets"]`` tells them the
counters restarted, so Prometheus counters keep growing and StatsD gets the
counts since the reset.  What happened between the last export and a reset
is not seen.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import threading
import weakref
from collections.abc import Iterable
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric  # type: ignore[import-not-found, unused-ignore]

__all__ = ["PrometheusCollector", "StatsdClient", "StatsdReporter", "SupportsStats"]

log = logging.getLogger(__name__)


class SupportsStats(Protocol):
    """A FlowRegistry or PairFlowRegistry (either implementation)."""

    def stats(self) -> dict[str, int]: ...


class StatsdClient(Protocol):
    """What StatsdReporter needs of its client; ``statsd.StatsClient`` has it."""

    def gauge(self, stat: str, value: float, /) -> object: ...

    def incr(self, stat: str, count: int, /) -> object: ...


def _metrics_core() -> ModuleType:
    try:
        # By name, so that type checking does not need prometheus_client installed either.
        metrics_core = importlib.import_module("prometheus_client.metrics_core")
    except ImportError as exc:
        raise ImportError(
            "flowreg.metrics.PrometheusCollector needs prometheus_client: pip install 'flowreg[prometheus]'",
            name="prometheus_client",
        ) from exc
    return metrics_core


# statsd stat (after "flowreg.<name>.") -> stats() key
_COUNTERS = {
    "lookups.hit": "hits",
    "lookups.miss": "misses",
    "hot_hits": "hot_hits",
    "inserts": "inserts",
    "deletes": "deletes",
    "resizes": "resizes",
}
_COUNTER_KEYS = tuple(_COUNTERS.values())


class _Tally:
    """How far a registry's counters have been exported, across reset_stats()."""

    __slots__ = ("last", "resets")

    def __init__(self) -> None:
        self.last: dict[str, int] = {}  # the counters as last exported; absent means 0
        self.resets: int | None = None

    def look(self, stats: dict[str, int]) -> None:
        """Forget what was exported if the counters restarted since."""
        restarted = stats["resets"] != self.resets
        if restarted or any(stats[key] < self.last.get(key, 0) for key in _COUNTER_KEYS):
            self.last.clear()  # (a counter going back without a reset: a free-threaded race)
            self.resets = stats["resets"]

    def new(self, stats: dict[str, int], key: str) -> int:
        """What counter `key` added since it was last exported."""
        return stats[key] - self.last.get(key, 0)

    def exported(self, stats: dict[str, int], key: str) -> None:
        self.last[key] = stats[key]


class PrometheusCollector:
    """A prometheus_client collector of one or more registries, told apart by a ``registry`` label.

    Register it once with a ``CollectorRegistry`` and ``add()`` further registries
    to it: Prometheus wants each metric family exposed once per scrape, so two
    collectors in one CollectorRegistry are refused at ``register()`` (by
    prometheus_client, as duplicated timeseries).  A name already in use is a
    ValueError.  ``stats()`` is read in ``collect()``, i.e. only when scraped.

    Families (every sample has ``registry="<name>"``):
    ``flowreg_entries`` and ``flowreg_capacity`` (gauges, flows),
    ``flowreg_memory_bytes`` (gauge), ``flowreg_lookups_total{result="hit"|"miss"}``,
    ``flowreg_hot_hits_total`` (a subset of the hits), ``flowreg_inserts_total``,
    ``flowreg_deletes_total``, ``flowreg_resizes_total`` (counters).  The counters
    count from when the registry was added and never go back: ``reset_stats()``
    restarts the registry's own, and the collector carries on from what it had
    exported (what happened between the last scrape and the reset is not seen).
    Scrapes from several threads count each change once.  A scrape from a finalizer or
    signal handler that interrupted another's count in its own thread gets the counts
    exported so far; its ``add()`` or ``remove()`` in the middle of another raises
    RuntimeError.
    """

    def __init__(self, registry: SupportsStats, name: str) -> None:
        self._core = _metrics_core()
        self._registries: dict[str, SupportsStats] = {}
        # name -> (the registry, its tally, the totals exported); guarded by _count_lock
        self._counted: dict[str, tuple[SupportsStats, _Tally, dict[str, int]]] = {}
        self._new_locks()
        _forkable.add(self)
        self.add(registry, name)

    def _new_locks(self) -> None:
        # RLocks, and a flag saying their thread is inside: a finalizer (or a signal handler) may
        # call in while its own thread holds one, and must not wait for itself forever.
        self._lock = threading.RLock()
        self._changing = False
        self._count_lock = threading.RLock()  # scrapes may come from several threads
        self._counting = False

    def add(self, registry: SupportsStats, name: str) -> None:
        """Collect ``registry`` too, labelled ``registry="<name>"``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a registry name is a non-empty str, not {name!r}")
        with self._lock:
            self._not_changing("add")
            try:
                self._changing = True
                if name in self._registries:
                    raise ValueError(f"a registry named {name!r} is already collected")
                for other, known in self._registries.items():
                    if known is registry:
                        raise ValueError(f"this registry is already collected as {other!r}")
                # Replaced, never mutated: collect() iterates whichever dict it read, without the lock.
                self._registries = {**self._registries, name: registry}
            finally:
                self._changing = False

    def remove(self, name: str) -> None:
        """Stop collecting the registry added as ``name`` (KeyError if there is none)."""
        with self._lock:
            self._not_changing("remove")
            try:
                self._changing = True
                if name not in self._registries:
                    raise KeyError(name)
                self._registries = {k: v for k, v in self._registries.items() if k != name}
            finally:
                self._changing = False
        with self._count_lock:
            self._counted.pop(name, None)

    def _not_changing(self, method: str) -> None:
        # (no context manager of ours around the lock: an exception such as KeyboardInterrupt
        # landing in its __enter__ could leave the lock held)
        if self._changing:
            raise RuntimeError(
                f"PrometheusCollector.{method}() was called by a finalizer or signal handler "
                "that interrupted this thread's add() or remove() on the same collector"
            )

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the registries collected, in the order they were added."""
        return tuple(self._registries)

    def describe(self) -> list[Metric]:
        """The families without samples: ``register()`` learns the names without a stats() call."""
        return self._families(())

    def collect(self) -> list[Metric]:
        """The families with one sample set per registry, read now."""
        return self._families(self._registries.items())

    def _read(self, name: str, registry: SupportsStats) -> tuple[dict[str, int], dict[str, int]]:
        """stats(), and the counters to export: the totals so far, carried across reset_stats().

        Both under the lock, so that scrapes in several threads count each change once (a
        scrape that read older stats() and counted after a newer one took it for a reset)."""
        with self._count_lock:
            counted = self._counted.get(name)
            if counted is not None and counted[0] is not registry:  # a name removed and added again
                counted = None
            if self._counting:  # a finalizer's scrape in the middle of this thread's: what it had
                return registry.stats(), dict(counted[2]) if counted else dict.fromkeys(_COUNTER_KEYS, 0)
            try:
                self._counting = True
                stats = registry.stats()
                if counted is None:
                    counted = self._counted[name] = (registry, _Tally(), dict.fromkeys(_COUNTER_KEYS, 0))
                    for gone in self._counted.keys() - self._registries.keys():
                        self._counted.pop(gone, None)
                _, tally, totals = counted
                tally.look(stats)
                for key in _COUNTER_KEYS:
                    totals[key] += tally.new(stats, key)
                    tally.exported(stats, key)
                return stats, dict(totals)
            finally:
                self._counting = False

    def _families(self, registries: Iterable[tuple[str, SupportsStats]]) -> list[Metric]:
        gauge, counter = self._core.GaugeMetricFamily, self._core.CounterMetricFamily
        by_registry = ["registry"]
        entries = gauge("flowreg_entries", "Flows in the registry.", labels=by_registry)
        capacity = gauge(
            "flowreg_capacity", "Flows the registry holds before its hash table grows.", labels=by_registry
        )
        memory = gauge(
            "flowreg_memory_bytes",
            "Memory of the registry's own structure (sys.getsizeof), not counting the flows.",
            labels=by_registry,
            unit="bytes",
        )
        lookups = counter(
            "flowreg_lookups",
            "Lookups of one id ([], get, in, switch_flow, batch reads per id), by result.",
            labels=[*by_registry, "result"],
        )
        hot_hits = counter(
            "flowreg_hot_hits",
            "switch_flow() hits served by the hot slot (also counted as hits).",
            labels=by_registry,
        )
        inserts = counter("flowreg_inserts", "Ids added.", labels=by_registry)
        deletes = counter("flowreg_deletes", "Ids removed.", labels=by_registry)
        resizes = counter("flowreg_resizes", "Growths of the hash table.", labels=by_registry)
        for name, registry in registries:
            stats, totals = self._read(name, registry)
            entries.add_metric([name], stats["size"])
            capacity.add_metric([name], stats["capacity"])
            memory.add_metric([name], sys.getsizeof(registry))
            lookups.add_metric([name, "hit"], totals["hits"])
            lookups.add_metric([name, "miss"], totals["misses"])
            hot_hits.add_metric([name], totals["hot_hits"])
            inserts.add_metric([name], totals["inserts"])
            deletes.add_metric([name], totals["deletes"])
            resizes.add_metric([name], totals["resizes"])
        return [entries, capacity, memory, lookups, hot_hits, inserts, deletes, resizes]


_STATSD_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


class StatsdReporter:
    """Pushes a registry's figures to StatsD every ``interval`` seconds from a daemon thread.

    Stats are named ``flowreg.<name>.<stat>``: gauges ``entries``, ``capacity`` and
    ``memory_bytes``; counters ``lookups.hit``, ``lookups.miss``, ``hot_hits``,
    ``inserts``, ``deletes``, ``resizes``, sent as the increase since the previous
    report (every counter every time, zeros included, so series stay continuous).
    The first report sends the counts so far, so the deltas add up to ``stats()``.

    After ``reset_stats()`` (``stats()["resets"]`` changed) the reporter sends the
    new values as the deltas, never a negative count; what happened between the
    last report and the reset is not seen.  A counter whose send failed is sent
    with the next report, from where its last successful send left it.

    The thread starts in the constructor and reports at once, then every
    ``interval`` seconds, and once more on ``stop()`` (or leaving a ``with``
    block).  ``interval=None`` starts no thread: call ``report_once()`` from your
    own scheduler.  Failures (of stats() or of the client) are logged, never raised.
    A ``report_once()`` from a finalizer or signal handler that interrupted a report in
    its own thread is skipped (it returns False): the report under way sends the figures.
    """

    def __init__(
        self, registry: SupportsStats, client: StatsdClient, name: str, interval: float | None = 10.0
    ) -> None:
        if not isinstance(name, str) or not _STATSD_NAME.match(name):
            raise ValueError(f"a StatsD name is ASCII letters, digits, '_', '-' and '.', not {name!r}")
        if interval is not None and not 0 < interval <= threading.TIMEOUT_MAX:
            most = f"{threading.TIMEOUT_MAX:g}"
            raise ValueError(f"interval is a number of seconds > 0 and <= {most} (or None), not {interval!r}")
        self._registry = registry
        self._client = client
        self._prefix = f"flowreg.{name}."
        self._tally = _Tally()
        self._new_locks()
        _forkable.add(self)
        self._failing = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if interval is not None:
            self._thread = threading.Thread(
                target=self._run, args=(interval,), name=f"flowreg-statsd-{name}", daemon=True
            )
            self._thread.start()

    def _new_locks(self) -> None:
        # One report at a time (the thread, report_once() callers): an RLock, and a flag saying
        # its thread is reporting, for a finalizer or signal handler that reports in the middle.
        self._lock = threading.RLock()
        self._reporting = False

    def report_once(self) -> bool:
        """Send the figures now; False (and a log record) if that failed."""
        with self._lock:
            if self._reporting:
                log.debug("a report of %s* in the middle of one (from a finalizer?): skipped", self._prefix)
                return False
            try:
                self._reporting = True
                self._report()
            except Exception:
                # A dead StatsD must not flood the log: the traceback once, then DEBUG until it recovers.
                level = logging.DEBUG if self._failing else logging.WARNING
                log.log(level, "reporting %s* to StatsD failed", self._prefix, exc_info=True)
                self._failing = True
                return False
            finally:
                self._reporting = False
            if self._failing:
                log.warning("reporting %s* to StatsD works again", self._prefix)
                self._failing = False
            return True

    def _report(self) -> None:
        stats = self._registry.stats()
        send_gauge, send_count, prefix = self._client.gauge, self._client.incr, self._prefix
        send_gauge(prefix + "entries", stats["size"])
        send_gauge(prefix + "capacity", stats["capacity"])
        send_gauge(prefix + "memory_bytes", sys.getsizeof(self._registry))
        tally = self._tally
        tally.look(stats)
        for stat, key in _COUNTERS.items():
            send_count(prefix + stat, tally.new(stats, key))
            tally.exported(stats, key)  # only once sent: a failed send is made up for next time

    def _run(self, interval: float) -> None:
        self.report_once()
        while not self._stopping.wait(interval):
            self.report_once()
        self.report_once()  # what happened since the last tick

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread after a last report; waits up to ``timeout`` seconds for it."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> StatsdReporter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# After os.fork() the child has only the forking thread: a lock another thread held then
# (a report or a scrape under way) would never be released there.
_forkable: weakref.WeakSet[PrometheusCollector | StatsdReporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for exporter in list(_forkable):
        exporter._new_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
