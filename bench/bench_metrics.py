"""What exporting metrics costs: nothing per lookup, and well under 1 ms per scrape of 1M entries.

    pytest bench/bench_metrics.py --benchmark-only

- ``lookups-<impl>``: 100k lookups on a registry with no collector, with a
  PrometheusCollector registered, and while a thread scrapes it every 10 ms
  (1500 times a typical 15 s scrape interval).  The collector reads stats() only when
  scraped, so the three should agree within noise: compare their minimums,
  the figure least disturbed by other work on the machine.
- ``scrape-1M-<impl>``: ``collect()`` and the whole text exposition
  (``generate_latest``) of a 1,000,000-entry registry.  The target is under
  1 ms (``extra_info["target_s"]``); like the rest of bench/, this measures and
  does not assert a timing.

Self-contained (own fixtures); needs prometheus_client.
"""

from __future__ import annotations

import importlib
import threading
from collections import deque

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from flowreg.metrics import PrometheusCollector  # noqa: E402

IMPLS = {"c": "flowreg._registry", "py": "flowreg._registry_py"}
LOOKUPS = 100_000
BIG = 1_000_000
SCRAPE_TARGET = 1e-3  # seconds


@pytest.fixture(scope="module", params=sorted(IMPLS))
def metrics_impl(request):
    try:
        return request.param, importlib.import_module(IMPLS[request.param])
    except ImportError:
        pytest.skip(f"{IMPLS[request.param]} is not importable")


@pytest.fixture(scope="module")
def big_registry(metrics_impl):
    name, module = metrics_impl
    return name, module.FlowRegistry.fromkeys(range(BIG), "flow")


@pytest.mark.thread_unsafe
@pytest.mark.parametrize("exporter", ["none", "registered", "scraped"])
def test_lookups(benchmark, metrics_impl, exporter):
    name, module = metrics_impl
    reg = module.FlowRegistry.fromkeys(range(LOOKUPS), "flow")
    keys = list(range(LOOKUPS))
    stop = threading.Event()
    scraper = None
    if exporter != "none":
        collectors = prometheus_client.CollectorRegistry()
        collectors.register(PrometheusCollector(reg, "bench"))
    if exporter == "scraped":

        def scrape():
            while not stop.wait(0.01):
                prometheus_client.generate_latest(collectors)

        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
    benchmark.group = f"lookups-{name}"
    try:
        # Warm-up rounds, so that the first variant run does not pay for cold caches.
        benchmark.pedantic(lambda: deque(map(reg.__getitem__, keys), maxlen=0), rounds=40, warmup_rounds=5)
    finally:
        stop.set()
        if scraper is not None:
            scraper.join()
    assert reg.stats()["hits"] >= LOOKUPS


@pytest.mark.parametrize("what", ["collect", "generate_latest"])
def test_scrape_1m(benchmark, big_registry, what):
    name, reg = big_registry
    collector = PrometheusCollector(reg, "big")
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(collector)
    benchmark.group = f"scrape-1M-{name}"
    benchmark.extra_info["target_s"] = SCRAPE_TARGET
    if what == "collect":
        families = benchmark(collector.collect)
        assert families[0].samples[0].value == BIG
    else:
        text = benchmark(prometheus_client.generate_latest, collectors)
        assert b'flowreg_entries{registry="big"} 1e+06' in text
