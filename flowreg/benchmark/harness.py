"""The timing harness, pyperf-style.

- Each subject's workload is calibrated so that one run lasts about ``Settings.target_ns``.
- Several runs; in every run all subjects of a trial are timed one after the other (the
  starting subject rotates), so a ratio between two subjects is a same-run ratio: the machine's
  noise in that run affects both.
- The same loop with an empty body is timed in each run and its per-operation cost is
  subtracted: what remains is the operation, not ``for k in keys``.
- The garbage collector is off while a run is timed (and restored after).
- Results: median ns per operation, spread (interquartile range as % of the median), and the
  median over runs of the per-run ratios to the reference subjects (normally dict).

Workloads are compiled from statement strings (as timeit does) so that the names a statement
uses are fast locals of the timing loop.
"""

from __future__ import annotations

import gc
import keyword
import random
import statistics
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from time import perf_counter_ns
from typing import Any, cast

from .results import Row, failure_reason

#: One timed phase of a run: (elapsed ns, operations done in it).
Phase = tuple[int, int]
#: Does a subject's workload ``amount`` times (what calibration scales) and returns one Phase per op.
Runner = Callable[[int], Sequence[Phase]]
#: A compiled lookup loop: (keys, loops) -> ns spent running the statement once per key, loops times.
LookupLoop = Callable[[Sequence[object], int], int]
#: A compiled phased loop: (passes) -> ns per phase summed over the passes; each pass is a tuple
#: holding one iterable per phase.
PhasedLoop = Callable[[Sequence[tuple[Any, ...]]], list[int]]

_MAX_AMOUNT = 1 << 40


@dataclass(frozen=True)
class Settings:
    runs: int
    target_ns: int  # how long one run of one subject should last
    warmups: int = 0  # untimed runs after calibration (calibration itself warms up too)


@dataclass
class Subject:
    """One contender of a trial: an implementation (possibly with extra row fields, e.g. threads)."""

    key: str  # unique within its trial
    impl: str
    run: Runner
    # result field -> key of the subject whose same-run time is the denominator
    references: Mapping[str, str] = field(default_factory=lambda: {"ratio_to_dict": "dict"})
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Trial:
    """Subjects compared on one workload: one row per subject and op."""

    suite: str
    ops: tuple[str, ...]  # the op timed by each phase
    n: int
    ids: str | None
    subjects: list[Subject]
    overhead: Runner | None = None  # the same loops with empty bodies
    fields: Mapping[str, Any] = field(default_factory=dict)
    report_ops: frozenset[str] | None = None  # ops to report (all when None)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off while timing: a collection landing in one subject's run is noise."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _total_ns(phases: Sequence[Phase]) -> int:
    return sum(ns for ns, _ in phases)


def calibrate(run: Runner, target_ns: int) -> int:
    """The amount of work for which one run lasts about target_ns (grows it geometrically)."""
    amount = 1
    while True:
        with gc_paused():
            elapsed = _total_ns(run(amount))
            if elapsed >= target_ns // 4:
                # confirm: a preemption only adds time, and one landing in a run of a few
                # operations would otherwise set the amount for good
                elapsed = min(elapsed, _total_ns(run(amount)))
        if elapsed >= target_ns // 4 or amount >= _MAX_AMOUNT:
            break
        # far from the target: jump (at most 10x, the first figures are the noisiest)
        factor = 10.0 if elapsed <= 0 else min(10.0, max(2.0, target_ns / 4 / elapsed))
        amount = int(amount * factor)
    return max(1, min(_MAX_AMOUNT, round(amount * target_ns / max(elapsed, 1))))


def spread_pct(samples: Sequence[float]) -> float:
    """Interquartile range as a percentage of the median (0 for fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    middle = statistics.median(samples)
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return 100.0 * (q3 - q1) / middle if middle > 0 else 0.0


def _per_op(phases: Sequence[Phase]) -> list[float]:
    return [ns / ops if ops else 0.0 for ns, ops in phases]


def measure(trial: Trial, settings: Settings) -> list[Row]:
    """Time every subject of the trial (see the module docstring) and return its rows.

    A subject that raises is dropped from the trial and reported as failed; the others go on.
    """
    failures: dict[str, Exception] = {}
    amounts = {}
    for s in trial.subjects:
        try:
            amounts[s.key] = calibrate(s.run, settings.target_ns)
        except Exception as exc:
            failures[s.key] = exc
    # the empty loop needs less time to be resolved: it is cheap and steady
    overhead_amount = calibrate(trial.overhead, settings.target_ns // 4) if trial.overhead else 0
    nphases = len(trial.ops)
    net: dict[str, list[list[float]]] = {s.key: [[] for _ in range(nphases)] for s in trial.subjects}
    ops_per_run: dict[str, int] = {}
    for r in range(-settings.warmups, settings.runs):
        subjects = [s for s in trial.subjects if s.key not in failures]
        order = subjects[r % max(1, len(subjects)) :] + subjects[: r % max(1, len(subjects))]
        raw: dict[str, Sequence[Phase]] = {}
        with gc_paused():
            overhead = _per_op(trial.overhead(overhead_amount)) if trial.overhead else [0.0] * nphases
            for s in order:
                try:
                    raw[s.key] = s.run(amounts[s.key])
                except Exception as exc:
                    failures[s.key] = exc
        if r < 0:
            continue  # a warmup run
        for key, phases in raw.items():
            if key in failures:
                continue
            ops_per_run[key] = phases[0][1]
            for i, per_op in enumerate(_per_op(phases)):
                net[key][i].append(max(0.0, per_op - overhead[i]))

    rows = []
    for s in trial.subjects:
        for i, op in enumerate(trial.ops):
            if trial.report_ops is not None and op not in trial.report_ops:
                continue
            row = Row(suite=trial.suite, op=op, n=trial.n, ids=trial.ids, impl=s.impl)
            if s.key in failures:
                row.skipped = failure_reason(failures[s.key])
            else:
                samples = net[s.key][i]
                row.median_ns = statistics.median(samples)
                row.spread_pct = spread_pct(samples)
                row.runs = len(samples)
                row.loops = ops_per_run[s.key]
                for name, ref in s.references.items():
                    if ref in net and ref not in failures:
                        ratios = [a / b for a, b in zip(samples, net[ref][i], strict=True) if b > 0]
                        setattr(row, name, statistics.median(ratios) if ratios else None)
            for name, value in {**trial.fields, **s.fields}.items():
                setattr(row, name, value)
            rows.append(row)
    return rows


# --- compiled loops -------------------------------------------------------------------------

_LOOKUP_TEMPLATE = """\
def timed(keys, loops, *, _perf=_perf, _repeat=_repeat{params}):
    t0 = _perf()
    for _ in _repeat(None, loops):
        for k in keys:
{body}
    return _perf() - t0
"""


def _check_names(names: Mapping[str, object]) -> str:
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in "kf":
            raise ValueError(f"bad name for a timing loop: {name!r}")
    return "".join(f", {name}={name}" for name in names)


def _compile(source: str, function: str, names: Mapping[str, object]) -> Any:
    namespace: dict[str, Any] = {"_perf": perf_counter_ns, "_repeat": repeat, **names}
    exec(compile(source, f"<flowreg.benchmark {function}>", "exec"), namespace)
    return namespace[function]


def compile_lookup_loop(body: str, names: Mapping[str, object]) -> LookupLoop:
    """A loop running ``body`` once per ``k`` in keys; ``names`` become its local variables.

    ``body`` may span several lines (e.g. ``with lock:\\n    d[k]``); use ``pass`` for the
    empty loop whose cost is subtracted.
    """
    source = _LOOKUP_TEMPLATE.format(params=_check_names(names), body=textwrap.indent(body, " " * 12))
    return cast(LookupLoop, _compile(source, "timed", names))


def compile_phased_loop(phases: Sequence[tuple[str, str]], names: Mapping[str, object]) -> PhasedLoop:
    """A loop over passes; pass i runs each phase (target, body) over its own iterable, timed apart.

    E.g. ``[("k", "s.delete_flow(k)"), ("k, f", "s.create_flow(k, f)")]`` times deleting a batch
    of ids and then creating them again, so the structure is back as it was after every pass.
    """
    count = len(phases)
    lines = [f"def timed(passes, *, _perf=_perf{_check_names(names)}):"]
    lines += [f"    a{i} = 0" for i in range(count)]
    lines.append(f"    for {', '.join(f'p{i}' for i in range(count))}, in passes:")
    lines.append("        t0 = _perf()")
    for i, (target, body) in enumerate(phases):
        lines.append(f"        for {target} in p{i}:")
        lines.append(textwrap.indent(body, " " * 12))
        lines.append(f"        t{i + 1} = _perf()")
    lines += [f"        a{i} += t{i + 1} - t{i}" for i in range(count)]
    lines.append(f"    return [{', '.join(f'a{i}' for i in range(count))}]")
    return cast(PhasedLoop, _compile("\n".join(lines) + "\n", "timed", names))


class KeyCursor:
    """Hands out the keys for successive runs of one subject.

    A run that needs fewer keys than the pool holds gets the next slice (wrapping around), so
    at large n successive runs touch different entries and the caches do not flatter the
    result; a run that needs more walks the whole pool several times (small n: all in cache
    anyway). Give the subjects of a trial different seeds: each then walks the pool's blocks in
    its own random order (keeping the order within a block, which hot-cache sequences need), so
    a subject meets the keys another has just read no more often than chance has it.
    """

    BLOCK = 4096

    def __init__(self, pool: Sequence[object], seed: int | None = None) -> None:
        if seed is not None and len(pool) > self.BLOCK:
            blocks = [pool[i : i + self.BLOCK] for i in range(0, len(pool), self.BLOCK)]
            random.Random(seed).shuffle(blocks)
            pool = [key for block in blocks for key in block]
        self.pool = pool
        self.position = 0

    def take(self, amount: int) -> tuple[Sequence[object], int]:
        """(keys, loops) doing about ``amount`` lookups."""
        size = len(self.pool)
        if amount >= size:
            return self.pool, max(1, round(amount / size))
        end = self.position + amount
        if end <= size:
            keys = self.pool[self.position : end]
        else:
            keys = [*self.pool[self.position :], *self.pool[: end - size]]
        self.position = end % size
        return keys, 1


def lookup_runner(loop: LookupLoop, cursor: KeyCursor) -> Runner:
    """A Runner doing ``amount`` lookups with keys from the cursor."""

    def run(amount: int) -> list[Phase]:
        keys, loops = cursor.take(amount)
        return [(loop(keys, loops), len(keys) * loops)]

    return run
