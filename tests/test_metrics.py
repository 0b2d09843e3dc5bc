"""flowreg.metrics against real parts: prometheus_client's HTTP server scraped over
HTTP, a real statsd.StatsClient sending to a UDP socket, and the Grafana dashboard
checked against what the collector exports.

The expected figures are worked out from the operations performed, not read from
stats(), so a collector that exported the wrong key would fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

import flowreg
from flowreg.metrics import PrometheusCollector, StatsdReporter

DASHBOARD = resources.files("flowreg") / "dashboards" / "flowreg.json"  # what the package ships
SOURCE_DASHBOARD = Path(__file__).resolve().parents[1] / "flowreg" / "dashboards" / "flowreg.json"
LABELS = {"registry", "result"}


def perform(reg):
    """Known operations on an empty registry; returns the stats() they must produce, every
    counter a different number, so that an exporter mixing two of them up is caught."""
    for fid in range(10):
        reg[fid] = f"flow {fid}"  # 10 inserts; the table grows at the 5th and the 9th
    reg[3], reg.get(3), 5 in reg  # 3 hits
    reg.get(100), 100 in reg, reg.get(101)  # 3 misses
    for _ in range(6):
        reg.switch_flow(7)  # 6 hits, the last 5 from the hot slot
    del reg[0]
    reg.pop(1), reg.pop(2), reg.delete_flow(3)  # 4 deletes (not lookups)
    return {
        "size": 6,
        "capacity": 16,
        "hits": 9,
        "misses": 3,
        "hot_hits": 5,
        "inserts": 10,
        "deletes": 4,
        "resizes": 2,
        "resets": 0,
    }


def prometheus_samples(name, stats, memory):
    """The samples the collector must expose for one registry, as {(sample, labels): value}."""
    label = (("registry", name),)
    return {
        ("flowreg_entries", label): stats["size"],
        ("flowreg_capacity", label): stats["capacity"],
        ("flowreg_memory_bytes", label): memory,
        ("flowreg_lookups_total", (*label, ("result", "hit"))): stats["hits"],
        ("flowreg_lookups_total", (*label, ("result", "miss"))): stats["misses"],
        ("flowreg_hot_hits_total", label): stats["hot_hits"],
        ("flowreg_inserts_total", label): stats["inserts"],
        ("flowreg_deletes_total", label): stats["deletes"],
        ("flowreg_resizes_total", label): stats["resizes"],
    }


FAMILY_TYPES = {
    "flowreg_entries": "gauge",
    "flowreg_capacity": "gauge",
    "flowreg_memory_bytes": "gauge",
    "flowreg_lookups": "counter",
    "flowreg_hot_hits": "counter",
    "flowreg_inserts": "counter",
    "flowreg_deletes": "counter",
    "flowreg_resizes": "counter",
}
EMPTY = dict.fromkeys(["size", "hits", "misses", "hot_hits", "inserts", "deletes", "resizes", "resets"], 0)
EMPTY["capacity"] = 4


# --- Prometheus


@pytest.fixture
def prometheus_client():
    return pytest.importorskip("prometheus_client")


@pytest.fixture
def metrics_server(prometheus_client):
    """Starts prometheus_client's HTTP server on a free port of 127.0.0.1, serving a fresh
    CollectorRegistry: start() -> (collectors, url).  A factory, so that each run of a test
    gets a server of its own (pytest-run-parallel's --iterations runs a test again with the
    same fixture values); every server is stopped at teardown."""
    with contextlib.ExitStack() as servers:

        def start():
            collectors = prometheus_client.CollectorRegistry()
            server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=collectors)

            @servers.callback
            def stop():
                server.shutdown()
                server.server_close()
                thread.join(10)

            return collectors, f"http://127.0.0.1:{server.server_port}/metrics"

        yield start


def scrape(url):
    """GET the exposition text and parse it: ({(sample, labels): value}, {family: type}, text)."""
    from prometheus_client.parser import text_string_to_metric_families

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    with opener.open(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("flowreg_"):
            continue
        assert family.name not in types, f"{family.name} is exposed twice"
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples
            samples[key] = sample.value
    return samples, types, text


@pytest.mark.thread_unsafe(reason="starts an HTTP server thread")
def test_scrape_over_http_reports_the_operations(Registry, metrics_server):
    collectors, url = metrics_server()
    sessions, idle = Registry(), Registry()
    expected = perform(sessions)
    collector = PrometheusCollector(sessions, "sessions")
    collector.add(idle, "idle")
    collectors.register(collector)

    samples, types, text = scrape(url)
    assert types == FAMILY_TYPES
    assert samples == prometheus_samples("sessions", expected, sys.getsizeof(sessions)) | prometheus_samples(
        "idle", EMPTY, sys.getsizeof(idle)
    )
    assert all(isinstance(value, float) for value in samples.values())
    # Prometheus conventions, read off the wire
    for name, labels in samples:
        assert name.startswith("flowreg_")
        assert name.endswith("_total") == (types[name.removesuffix("_total")] == "counter")
        assert {label for label, _ in labels} <= LABELS, "only registry/result labels, never an id"
    assert "# TYPE flowreg_memory_bytes gauge" in text

    # Read at scrape time: the next scrape sees what happened since.
    sessions[50] = "new"
    sessions.get(51)
    samples, _, _ = scrape(url)
    label = (("registry", "sessions"),)
    assert samples["flowreg_entries", label] == 7
    assert samples["flowreg_inserts_total", label] == 11
    assert samples["flowreg_lookups_total", (*label, ("result", "miss"))] == 4
    assert samples["flowreg_memory_bytes", label] == sys.getsizeof(sessions)

    # reset_stats() restarts the registry's counters, not the exported ones, even when the
    # new counts outgrow the old before the next scrape (20 inserts after 11); levels stay.
    sessions.reset_stats()
    for fid in range(60, 80):
        sessions[fid] = fid
    samples, _, _ = scrape(url)
    assert samples["flowreg_inserts_total", label] == 31
    assert samples["flowreg_entries", label] == 27
    sessions.reset_stats()
    samples, _, _ = scrape(url)
    assert samples["flowreg_inserts_total", label] == 31

    collector.remove("idle")
    samples, _, _ = scrape(url)
    assert {dict(labels)["registry"] for _, labels in samples} == {"sessions"}


def test_pair_registry_is_collected(PairRegistry, prometheus_client):
    reg = PairRegistry()
    reg[1, 2] = "a"
    reg.get((3, 4))
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(PrometheusCollector(reg, "pairs"))
    labels = {"registry": "pairs"}
    assert collectors.get_sample_value("flowreg_entries", labels) == 1
    assert collectors.get_sample_value("flowreg_lookups_total", labels | {"result": "miss"}) == 1
    assert collectors.get_sample_value("flowreg_memory_bytes", labels) == sys.getsizeof(reg)


def test_stats_are_read_only_when_scraped(Registry, prometheus_client):
    class Counting(Registry):
        calls = 0

        def stats(self):
            type(self).calls += 1
            return super().stats()

    reg = Counting()
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(PrometheusCollector(reg, "counted"))
    reg[1] = "a"
    for _ in range(100):
        reg[1], reg.get(2), reg.switch_flow(1)
    assert Counting.calls == 0
    prometheus_client.generate_latest(collectors)
    assert Counting.calls == 1


def test_names_are_unique(Registry, prometheus_client):
    a, b = Registry(), Registry()
    collector = PrometheusCollector(a, "a")
    with pytest.raises(ValueError, match="a registry named 'a' is already collected"):
        collector.add(b, "a")
    with pytest.raises(ValueError, match="already collected as 'a'"):
        collector.add(a, "b")
    for bad in ("", None, 5):
        with pytest.raises(ValueError, match="non-empty str"):
            collector.add(b, bad)
    collector.add(b, "b")
    assert collector.names == ("a", "b")
    with pytest.raises(KeyError):
        collector.remove("c")
    collector.remove("a")
    collector.add(Registry(), "a")  # a removed name is free again
    assert collector.names == ("b", "a")

    # One collector per CollectorRegistry: a second one would expose every family twice.
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(collector)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        collectors.register(PrometheusCollector(Registry(), "c"))


def in_a_thread(call, timeout=30):
    """call() in a daemon thread; its result, or a failure if it hangs (a thread waiting for itself)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "hung: the thread waits for a lock it holds itself"
    return result[0]


class ScrapedWhileCounted(dict):
    """stats() as a dict whose first read of "resets" (inside the collector's count, under its
    lock) scrapes again, as a finalizer the collector's allocations run could."""

    def __getitem__(self, key):
        if key == "resets" and self.scrape is not None:
            scrape, self.scrape = self.scrape, None
            self.inner.append(scrape())
        return super().__getitem__(key)


def test_a_scrape_from_a_finalizer_in_the_middle_of_one_gets_the_counts_so_far(Registry, prometheus_client):
    inner = []

    class Scraping(Registry):
        scrape = None

        def stats(self):
            stats = ScrapedWhileCounted(super().stats())
            stats.scrape, stats.inner, type(self).scrape = type(self).scrape, inner, None
            return stats

    reg = Scraping({1: "a"})
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(PrometheusCollector(reg, "r"))
    hits = {"registry": "r", "result": "hit"}
    reg.get(1)
    assert collectors.get_sample_value("flowreg_lookups_total", hits) == 1
    reg.get(1)
    Scraping.scrape = lambda: collectors.get_sample_value("flowreg_lookups_total", hits)
    assert in_a_thread(lambda: collectors.get_sample_value("flowreg_lookups_total", hits)) == 2
    assert inner == [1]  # what the interrupted count had exported, not a second count of it
    assert collectors.get_sample_value("flowreg_lookups_total", hits) == 2


def test_a_lookup_is_counted_once_whatever_runs_during_a_scrape(Registry, prometheus_client):
    class Busy(Registry):
        nested = None

        def stats(self):
            stats = super().stats()
            if self.nested:
                nested, self.nested = self.nested, None
                self.get(1)  # a lookup after these stats were read,
                nested()  # and a scrape that sees it, as another thread's or a finalizer's could
            return stats

    reg = Busy({1: "a"})
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(PrometheusCollector(reg, "r"))
    hits = {"registry": "r", "result": "hit"}
    for _ in range(10):
        reg.get(1)
    reg.nested = lambda: collectors.get_sample_value("flowreg_lookups_total", hits)
    collectors.get_sample_value("flowreg_lookups_total", hits)
    # (the scrape that read the older stats took them for a reset after the newer one: 22)
    assert collectors.get_sample_value("flowreg_lookups_total", hits) == reg.stats()["hits"] == 11


def test_add_from_a_finalizer_in_the_middle_of_one_raises(Registry, prometheus_client):
    collector = PrometheusCollector(Registry(), "a")
    inner = []

    class Name(str):
        __slots__ = ()

        def __hash__(self):  # (called under the collector's lock)
            try:
                collector.remove("a")
            except RuntimeError as exc:
                inner.append(str(exc))
            return str.__hash__(self)

    in_a_thread(lambda: collector.add(Registry(), Name("b")))
    assert inner and "interrupted this thread's add() or remove()" in inner[0]
    assert collector.names == ("a", "b")


# --- StatsD


class UdpSink:
    """A UDP socket on 127.0.0.1 and a thread that keeps every statsd line sent to it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.lines.extend(data.decode("ascii").splitlines())

    def wait_for(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            assert time.monotonic() < deadline, f"got {len(self.lines)} statsd lines, expected {count}"
            time.sleep(0.005)
        return self.lines[:count]

    def close(self):
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


@pytest.fixture
def statsd_client():
    """Makes a statsd.StatsClient sending to a new UdpSink: make() -> (client, sink).  A factory,
    so that each run of a test gets a sink of its own (pytest-run-parallel's --iterations runs a
    test again with the same fixture values); all are closed at teardown."""
    statsd = pytest.importorskip("statsd")
    with contextlib.ExitStack() as opened:

        def make():
            sink = UdpSink()
            opened.callback(sink.close)
            client = statsd.StatsClient("127.0.0.1", sink.port)
            opened.callback(client.close)
            return client, sink

        yield make


LINE = re.compile(r"(?P<stat>[^:|]+):(?P<value>-?\d+)\|(?P<type>g|c)\Z")
GAUGES = {"entries": "size", "capacity": "capacity"}
COUNTERS = {
    "lookups.hit": "hits",
    "lookups.miss": "misses",
    "hot_hits": "hot_hits",
    "inserts": "inserts",
    "deletes": "deletes",
    "resizes": "resizes",
}
PER_REPORT = len(GAUGES) + 1 + len(COUNTERS)


def parse(lines, prefix):
    """[(stat without the prefix, value, "g" or "c")] of statsd lines, checking their form."""
    parsed = []
    for line in lines:
        match = LINE.match(line)
        assert match, line
        assert match["stat"].startswith(prefix), line
        parsed.append((match["stat"].removeprefix(prefix), int(match["value"]), match["type"]))
    return parsed


def expected_report(stats, memory, counts):
    """One report: the gauges, then the counter deltas `counts` (by stats() key)."""
    gauges = [(stat, stats[key], "g") for stat, key in GAUGES.items()] + [("memory_bytes", memory, "g")]
    return gauges + [(stat, counts[key], "c") for stat, key in COUNTERS.items()]


@pytest.mark.thread_unsafe(reason="starts a UDP receiver thread")
def test_report_once_sends_gauges_and_deltas_over_udp(Registry, statsd_client):
    client, sink = statsd_client()
    reg = Registry()
    reporter = StatsdReporter(reg, client, "sessions", interval=None)
    expected = perform(reg)
    assert reporter.report_once() is True
    first = parse(sink.wait_for(PER_REPORT), "flowreg.sessions.")
    assert first == expected_report(expected, sys.getsizeof(reg), expected)  # the first delta is the count

    reg[5], reg.get(99), reg.switch_flow(7), reg.switch_flow(7)  # hit, miss, 2 hot hits (7 was last)
    reg[20] = "x"
    assert reporter.report_once()
    second = parse(sink.wait_for(2 * PER_REPORT)[PER_REPORT:], "flowreg.sessions.")
    level = expected | {"size": 7, "capacity": 16}
    delta = dict.fromkeys(COUNTERS.values(), 0) | {"hits": 3, "misses": 1, "hot_hits": 2, "inserts": 1}
    assert second == expected_report(level, sys.getsizeof(reg), delta)

    # reset_stats() makes the counters drop: taken as a reset, the new values are the deltas.
    reg.reset_stats()
    reg[21] = "y"
    reg.get(21)
    assert reporter.report_once()
    third = parse(sink.wait_for(3 * PER_REPORT)[2 * PER_REPORT :], "flowreg.sessions.")
    delta = dict.fromkeys(COUNTERS.values(), 0) | {"hits": 1, "inserts": 1}
    assert third == expected_report({"size": 8, "capacity": 16}, sys.getsizeof(reg), delta)
    assert all(value >= 0 for _, value, _ in first + second + third)


@pytest.mark.thread_unsafe(reason="starts a UDP receiver and a reporter thread")
def test_thread_deltas_add_up_to_the_operations(Registry, statsd_client):
    client, sink = statsd_client()
    reg = Registry()
    with StatsdReporter(reg, client, "threaded", interval=0.02) as reporter:
        expected = perform(reg)
        sink.wait_for(2 * PER_REPORT)  # at least one tick came after some operations
        for fid in range(100, 150):
            reg[fid] = fid
            reg.get(fid + 1000)
        del reg[100]
        sink.wait_for(len(sink.lines) + PER_REPORT)
        reg.switch_flow(7)  # a hot hit: the previous switch_flow was to 7 as well
    assert not reporter._thread.is_alive()
    expected.update(size=55, capacity=64, inserts=60, deletes=5, misses=53, hits=10, hot_hits=6, resizes=4)

    # stop() made a last report, so everything is in; the sink may still be reading it.
    time.sleep(0.2)
    lines = parse(sink.lines, "flowreg.threaded.")
    assert len(lines) % PER_REPORT == 0 and len(lines) >= 4 * PER_REPORT
    totals = dict.fromkeys(COUNTERS, 0)
    for stat, value, kind in lines:
        if kind == "c":
            assert value >= 0
            totals[stat] += value
    assert totals == {stat: expected[key] for stat, key in COUNTERS.items()}
    assert reg.stats() == expected | {"lookups": expected["hits"] + expected["misses"]}
    assert lines[-PER_REPORT : -len(COUNTERS)] == [
        ("entries", 55, "g"),
        ("capacity", 64, "g"),
        ("memory_bytes", sys.getsizeof(reg), "g"),
    ]
    reporter.stop()  # again: harmless


class BrokenClient:
    """Fails like a client whose transport or setup is broken."""

    def __init__(self):
        self.calls = 0

    def gauge(self, stat, value):
        self.calls += 1
        raise OSError("statsd is down")

    incr = gauge


@pytest.mark.thread_unsafe(reason="captures logging (caplog) and starts a reporter thread")
def test_failures_are_logged_not_raised(Registry, caplog):
    caplog.clear()  # pytest-run-parallel's --iterations runs this again with the same caplog
    reg = Registry()
    client = BrokenClient()
    reporter = StatsdReporter(reg, client, "broken", interval=None)
    with caplog.at_level(logging.DEBUG, logger="flowreg.metrics"):
        assert reporter.report_once() is False
        assert reporter.report_once() is False
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG], "the traceback once, then quietly"
    assert "statsd is down" in caplog.text

    # The thread goes on reporting (and failing) until stopped; nothing reaches the application.
    with StatsdReporter(reg, client, "broken", interval=0.01):
        deadline = time.monotonic() + 10
        while client.calls < 5:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_reporter_arguments_are_checked(Registry):
    for name in ("", "a b", "a:b", "a|b", "é", None):
        with pytest.raises(ValueError, match="StatsD name"):
            StatsdReporter(Registry(), BrokenClient(), name, interval=None)
    for interval in (0, -1, float("nan"), float("inf"), threading.TIMEOUT_MAX * 2):
        with pytest.raises(ValueError, match="interval"):
            StatsdReporter(Registry(), BrokenClient(), "ok", interval=interval)


class CountingClient:
    """Adds up what it is sent; its incr of `fail_on` raises once when `failing` is set."""

    def __init__(self, fail_on=None):
        self.sent = {}
        self.fail_on = fail_on
        self.failing = False

    def gauge(self, stat, value):
        pass

    def incr(self, stat, count):
        if self.failing and stat.endswith(self.fail_on):
            self.failing = False
            raise ConnectionResetError("statsd went away")
        self.sent[stat] = self.sent.get(stat, 0) + count


def churn(reg, rounds):
    for fid in range(rounds):
        reg.pop(fid, None)
        reg[fid] = fid
        for _ in range(10):
            reg.get(fid)


def test_a_reset_is_told_from_a_lull_by_the_resets_count(Registry):
    # After reset_stats(), busier traffic brings every counter past its old value before
    # the next report: the counts since the reset are still sent whole.
    reg = Registry()
    client = CountingClient()
    reporter = StatsdReporter(reg, client, "f", interval=None)
    churn(reg, 100)
    assert reporter.report_once()
    reg.reset_stats()
    churn(reg, 200)
    assert reporter.report_once()
    assert client.sent["flowreg.f.lookups.hit"] == 1000 + 2000
    assert client.sent["flowreg.f.inserts"] == 100 + 200
    assert client.sent["flowreg.f.deletes"] == 100  # the second churn replaced ids 0-99 too


def test_a_failed_send_is_made_up_for_once(Registry):
    reg = Registry({1: 1})
    reg.reset_stats()
    client = CountingClient(fail_on="lookups.miss")
    reporter = StatsdReporter(reg, client, "f", interval=None)
    for _ in range(100):
        reg.get(1), reg.get(2)
    assert reporter.report_once()
    reg.reset_stats()
    for _ in range(10):
        reg.get(1), reg.get(2)
    client.failing = True
    assert reporter.report_once() is False  # hits sent, misses failed, the rest not tried
    reg.get(1)
    assert reporter.report_once()
    assert client.sent["flowreg.f.lookups.hit"] == 111
    assert client.sent["flowreg.f.lookups.miss"] == 110


def test_a_report_from_a_finalizer_in_the_middle_of_one_is_skipped(Registry):
    reg = Registry({1: 1})
    inner = []

    class Reentering(CountingClient):
        def gauge(self, stat, value):  # as a finalizer run by the report's allocations could
            if not inner:
                inner.append(reporter.report_once())

    client = Reentering()
    reporter = StatsdReporter(reg, client, "f", interval=None)
    reg.get(1)
    assert in_a_thread(reporter.report_once) is True
    assert inner == [False]
    assert client.sent["flowreg.f.lookups.hit"] == 1  # counted once, by the outer report
    reg.get(1)
    assert reporter.report_once()
    assert client.sent["flowreg.f.lookups.hit"] == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.thread_unsafe(reason="forks")
def test_a_fork_child_exports_while_another_thread_of_the_parent_was_exporting(
    Registry, prometheus_client, in_a_fork
):
    reg = Registry({1: 1})
    inside, release = threading.Event(), threading.Event()

    class Blocking(Registry):
        def stats(self):  # the scrape's own thread, stopped in the middle of its count
            if not inside.is_set():
                inside.set()
                release.wait(30)
            return super().stats()

    class BlockingClient(CountingClient):
        def gauge(self, stat, value):
            if not inside.is_set():
                inside.set()
                release.wait(30)

    collector = PrometheusCollector(Blocking({1: 1}), "r")
    reporter = StatsdReporter(reg, BlockingClient(), "f", interval=None)
    for export in (collector.collect, reporter.report_once):
        inside.clear()
        release.clear()
        thread = threading.Thread(target=export, daemon=True)
        thread.start()
        assert inside.wait(10)
        try:
            # (the child has only the forking thread: a lock the other held would never come free)
            in_a_fork(
                lambda: bool(collector.collect()) and reporter.report_once(),
                f"the lock that the parent's other thread held in {export.__name__}",
            )
        finally:
            release.set()
            thread.join(30)


# --- imports


def run_python(code, cwd):
    """Run code in a fresh interpreter that imports the flowreg under test."""
    env = {**os.environ, "PYTHONPATH": str(Path(flowreg.__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.thread_unsafe(reason="a subprocess: nothing to gain from threads")
def test_import_flowreg_leaves_metrics_alone(tmp_path):
    out = run_python(
        "import sys, flowreg\n"
        "print(sorted(m for m in ('flowreg.metrics', 'prometheus_client', 'statsd') if m in sys.modules))",
        tmp_path,
    )
    assert out.strip() == "[]"


@pytest.mark.thread_unsafe(reason="a subprocess: nothing to gain from threads")
def test_without_prometheus_client(impl, tmp_path):
    module = {"c": "flowreg._registry", "py": "flowreg._registry_py"}[impl.name]
    out = run_python(
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if not installed\n"
        "import flowreg.metrics as metrics\n"
        f"from {module} import FlowRegistry\n"
        "class Client:\n"
        "    def __init__(self): self.sent = []\n"
        "    def gauge(self, stat, value): self.sent.append(stat)\n"
        "    incr = gauge\n"
        "client = Client()\n"
        "assert metrics.StatsdReporter(FlowRegistry(), client, 'x', interval=None).report_once()\n"
        "assert len(client.sent) == 9, client.sent\n"
        "try:\n"
        "    metrics.PrometheusCollector(FlowRegistry(), 'x')\n"
        "except ImportError as exc:\n"
        "    print(exc.name, exc, sep='\\n')\n",
        tmp_path,
    )
    name, message = out.splitlines()
    assert name == "prometheus_client"
    assert message == (
        "flowreg.metrics.PrometheusCollector needs prometheus_client: pip install 'flowreg[prometheus]'"
    )


# --- the Grafana dashboard

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
PROMQL_KEYWORDS |= {"and", "or", "unless"}


def promql_names(expr):
    """(metric names, label names) an expression uses; enough PromQL for the dashboard's own."""
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {name.strip() for name in grouping.split(",") if name.strip()}
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)  # matchers, ranges
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    words = re.findall(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\(?)", bare)
    metrics = {word for word, call in words if not call and word not in PROMQL_KEYWORDS}
    return metrics, labels


def exported_names(Registry):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    collectors = CollectorRegistry()
    collectors.register(PrometheusCollector(Registry(), "r"))
    families = text_string_to_metric_families(generate_latest(collectors).decode())
    return {sample.name for family in families for sample in family.samples}


def test_dashboard_queries_only_exported_metrics(Registry, prometheus_client):
    exported = exported_names(Registry)
    assert exported == {
        "flowreg_entries",
        "flowreg_capacity",
        "flowreg_memory_bytes",
        "flowreg_lookups_total",
        "flowreg_hot_hits_total",
        "flowreg_inserts_total",
        "flowreg_deletes_total",
        "flowreg_resizes_total",
    }
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            exprs[f"{panel['title']} {target['refId']}"] = target["expr"]
    assert len(exprs) >= 6
    used = set()
    for where, expr in exprs.items():
        metrics, labels = promql_names(expr)
        assert metrics, f"{where}: no metric in {expr!r}"
        assert metrics <= exported, f"{where}: {metrics - exported} not exported"
        assert labels <= LABELS, f"{where}: labels {labels - LABELS} not exported"
        assert 'registry=~"$registry"' in expr, f"{where} ignores the registry variable"
        used |= metrics
    assert used == exported

    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["registry"]["query"]["query"] == "label_values(flowreg_entries, registry)"
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for shown in ("entries", "lookup rate", "miss ratio", "hot-cache hit ratio", "insert and delete"):
        assert shown in titles
    assert "memory" in titles


def test_promql_names():
    expr = 'sum by (registry) (rate(a_total{registry=~"$x", result="miss"}[$__rate_interval])) / b'
    assert promql_names(expr) == ({"a_total", "b"}, {"registry", "result"})


def test_dashboard_is_installed_with_the_package():
    assert DASHBOARD.is_file(), (
        "flowreg/dashboards/flowreg.json is not in the installed package: "
        "add it to [tool.setuptools.package-data] in pyproject.toml"
    )
    if SOURCE_DASHBOARD.is_file():  # run from a source tree: the installed copy is current
        assert json.loads(DASHBOARD.read_text()) == json.loads(SOURCE_DASHBOARD.read_text())
