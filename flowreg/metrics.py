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
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
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
    ``flowreg_deletes_total``, ``flowreg_resizes_total`` (counters).  Counters restart
    from zero on ``reset_stats()``, which Prometheus' rate() treats as a counter reset.
    """

    def __init__(self, registry: SupportsStats, name: str) -> None:
        self._core = _metrics_core()
        self._lock = threading.Lock()
        self._registries: dict[str, SupportsStats] = {}
        self.add(registry, name)

    def add(self, registry: SupportsStats, name: str) -> None:
        """Collect ``registry`` too, labelled ``registry="<name>"``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a registry name is a non-empty str, not {name!r}")
        with self._lock:
            if name in self._registries:
                raise ValueError(f"a registry named {name!r} is already collected")
            for other, known in self._registries.items():
                if known is registry:
                    raise ValueError(f"this registry is already collected as {other!r}")
            # Replaced, never mutated: collect() iterates whichever dict it read, without the lock.
            self._registries = {**self._registries, name: registry}

    def remove(self, name: str) -> None:
        """Stop collecting the registry added as ``name`` (KeyError if there is none)."""
        with self._lock:
            if name not in self._registries:
                raise KeyError(name)
            self._registries = {k: v for k, v in self._registries.items() if k != name}

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
            stats = registry.stats()
            entries.add_metric([name], stats["size"])
            capacity.add_metric([name], stats["capacity"])
            memory.add_metric([name], sys.getsizeof(registry))
            lookups.add_metric([name, "hit"], stats["hits"])
            lookups.add_metric([name, "miss"], stats["misses"])
            hot_hits.add_metric([name], stats["hot_hits"])
            inserts.add_metric([name], stats["inserts"])
            deletes.add_metric([name], stats["deletes"])
            resizes.add_metric([name], stats["resizes"])
        return [entries, capacity, memory, lookups, hot_hits, inserts, deletes, resizes]


_STATSD_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
# statsd stat (after "flowreg.<name>.") -> stats() key
_COUNTERS = {
    "lookups.hit": "hits",
    "lookups.miss": "misses",
    "hot_hits": "hot_hits",
    "inserts": "inserts",
    "deletes": "deletes",
    "resizes": "resizes",
}


class StatsdReporter:
    """Pushes a registry's figures to StatsD every ``interval`` seconds from a daemon thread.

    Stats are named ``flowreg.<name>.<stat>``: gauges ``entries``, ``capacity`` and
    ``memory_bytes``; counters ``lookups.hit``, ``lookups.miss``, ``hot_hits``,
    ``inserts``, ``deletes``, ``resizes``, sent as the increase since the previous
    report (every counter every time, zeros included, so series stay continuous).
    The first report sends the counts so far, so the deltas add up to ``stats()``.

    Counters going backwards: ``reset_stats()`` zeroes them all, so if any counter
    is below its last reported value the reporter takes it as a reset and sends the
    new values as the deltas (never a negative count).  What happened between the
    last report and the reset is lost.

    The thread starts in the constructor and reports at once, then every
    ``interval`` seconds, and once more on ``stop()`` (or leaving a ``with``
    block).  ``interval=None`` starts no thread: call ``report_once()`` from your
    own scheduler.  Failures (of stats() or of the client) are logged, never raised.
    """

    def __init__(
        self, registry: SupportsStats, client: StatsdClient, name: str, interval: float | None = 10.0
    ) -> None:
        if not isinstance(name, str) or not _STATSD_NAME.match(name):
            raise ValueError(f"a StatsD name is ASCII letters, digits, '_', '-' and '.', not {name!r}")
        if interval is not None and not interval > 0:
            raise ValueError(f"interval is a number of seconds > 0 (or None), not {interval!r}")
        self._registry = registry
        self._client = client
        self._prefix = f"flowreg.{name}."
        self._last: dict[str, int] = {}  # counters at the last report; absent means 0
        self._lock = threading.Lock()  # one report at a time: the thread and report_once() callers
        self._failing = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if interval is not None:
            self._thread = threading.Thread(
                target=self._run, args=(interval,), name=f"flowreg-statsd-{name}", daemon=True
            )
            self._thread.start()

    def report_once(self) -> bool:
        """Send the figures now; False (and a log record) if that failed."""
        with self._lock:
            try:
                self._report()
            except Exception:
                # A dead StatsD must not flood the log: the traceback once, then DEBUG until it recovers.
                level = logging.DEBUG if self._failing else logging.WARNING
                log.log(level, "reporting %s* to StatsD failed", self._prefix, exc_info=True)
                self._failing = True
                return False
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
        last = self._last
        reset = any(stats[key] < last.get(key, 0) for key in _COUNTERS.values())
        for stat, key in _COUNTERS.items():
            value = stats[key]
            send_count(prefix + stat, value if reset else value - last.get(key, 0))
            last[key] = value

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
