"""pytest-benchmark suite for flowreg: ``pytest bench/ --benchmark-only``.

The same designs and operations as ``flowreg bench`` (flowreg/benchmark/cases.py). These
benchmarks measure; they never assert a timing. To compare commits:

    pytest bench/ --benchmark-only --benchmark-autosave          # on the old commit
    pytest bench/ --benchmark-only --benchmark-compare           # on the new one
    pytest bench/ --benchmark-only --benchmark-compare --benchmark-compare-fail=median:10%

Sizes: ``--bench-sizes 21,1000,1000000`` (the default). Benchmarks are grouped by what they
compare (e.g. "get n=1000 ids=fresh"), so each group's table reads like a row of the
``flowreg bench`` table. A lookup benchmark times one pass over a list of ids; its
``extra_info["ops"]`` says how many, to turn a time per call into a time per lookup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from flowreg.benchmark.cases import ALL_DESIGNS, Design
from flowreg.benchmark.context import Context, Selection
from flowreg.benchmark.harness import compile_lookup_loop, compile_phased_loop, gc_paused
from flowreg.benchmark.profiles import PROFILES

DEFAULT_SIZES = "21,1000,1000000"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-sizes", default=DEFAULT_SIZES, help=f"registry sizes (default {DEFAULT_SIZES})")


def bench_sizes(config: pytest.Config) -> list[int]:
    return [int(part) for part in config.getoption("--bench-sizes").split(",") if part.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "n" in metafunc.fixturenames:
        metafunc.parametrize("n", bench_sizes(metafunc.config), ids=lambda n: f"n={n}", scope="session")
    if "ids" in metafunc.fixturenames:
        metafunc.parametrize("ids", ["same", "fresh"], scope="session")


@pytest.fixture(scope="session")
def context(request: pytest.FixtureRequest) -> Context:
    """Populations and id pools, built once per session (the --quick pool sizes, no size limits)."""
    profile = dataclasses.replace(PROFILES["quick"], name="bench", max_n={})
    sizes = tuple(bench_sizes(request.config))
    return Context(profile, Selection(sizes=sizes, suites=()))


def names_for(context: Context, design: Design, n: int, op: str) -> dict[str, object]:
    """The names design's statements use, or skip the benchmark saying why there are none."""
    if op not in design.statements:
        pytest.skip(f"{design.impl} has no {op}")
    names, reason = context.prepare(design, n)
    if reason:
        pytest.skip(reason)
    return names


@pytest.fixture
def lookup_bench(benchmark: Any, context: Context) -> Callable[..., None]:
    """Times one pass of ``design``'s ``op`` over a pool of ids (random order, "same" or "fresh")."""

    def run(impl: str, op: str, n: int, ids: str, keys: list[int] | None = None, group: str = "") -> None:
        design = ALL_DESIGNS[impl]
        names = names_for(context, design, n, op)  # skips when the design has no such op
        loop = compile_lookup_loop(design.statements[op], names)
        keys = context.pool(n, ids) if keys is None else keys
        benchmark.group = group or f"{op} n={n} ids={ids}"
        benchmark.extra_info.update(impl=impl, op=op, n=n, ids=ids, ops=len(keys))
        with gc_paused():
            benchmark(loop, keys, 1)

    return run


@pytest.fixture
def mutation_bench(benchmark: Any, context: Context) -> Callable[..., None]:
    """Times deleting a batch of stored ids, or creating as many new ids (the other half is untimed
    setup; flowreg.benchmark.cases.MutationBatches says which ids), and puts the structure back
    between rounds."""

    def run(impl: str, pair: tuple[str, str], timed: str, n: int, ids: str) -> None:
        design = ALL_DESIGNS[impl]
        names = names_for(context, design, n, pair[0])
        names_for(context, design, n, pair[1])
        batches = context.mutation_batches(n, ids)
        delete = compile_phased_loop([("k", design.statements[pair[0]])], names)
        create = compile_phased_loop([("k, f", design.statements[pair[1]])], names)
        pending: list[Any] = []  # (new ids to delete, stored pairs to create): the last round's undo

        def restore() -> None:
            while pending:
                new_ids, back = pending.pop()
                delete([(new_ids,)])
                create([(back,)])

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            restore()
            ((gone, new, new_ids, back),) = batches.take(1)
            if timed == pair[0]:
                pending.append(([], back))
                return ([(gone,)],), {}
            delete([(gone,)])  # untimed: the timed create stores the new ids
            pending.append((new_ids, back))
            return ([(new,)],), {}

        benchmark.group = f"{timed} n={n} ids={ids}"
        benchmark.extra_info.update(impl=impl, op=timed, n=n, ids=ids, ops=batches.size)
        try:
            with gc_paused():
                benchmark.pedantic(
                    delete if timed == pair[0] else create, setup=setup, rounds=50, warmup_rounds=2
                )
        finally:
            restore()

    return run
