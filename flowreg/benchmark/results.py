"""What a benchmark run produces: one Row per measured (suite, op, n, ids, impl), and Verdicts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: Keys every JSON row has (null when not measured); the others appear only where they apply.
ROW_KEYS = (
    "suite",
    "op",
    "n",
    "ids",
    "impl",
    "median_ns",
    "spread_pct",
    "ratio_to_dict",
    "runs",
    "loops",
    "skipped",
)


@dataclass
class Row:
    """One cell of the results: median ns per operation and its same-run ratio to dict.

    ``loops`` is the number of operations timed in each run; ``spread_pct`` the interquartile
    range of the runs as a percentage of the median.
    """

    suite: str
    op: str
    n: int
    ids: str | None
    impl: str
    median_ns: float | None = None
    spread_pct: float | None = None
    ratio_to_dict: float | None = None
    runs: int = 0
    loops: int = 0
    skipped: str | None = None
    # only in some suites:
    threads: int | None = None  # batch: threads running the operation at once
    ratio_to_1_thread: float | None = None  # batch: ns per id with N threads / with 1 thread
    ratio_to_lock: float | None = None  # locks: same-run ratio to the threading.Lock wrapper
    hit_ratio: float | None = None  # hot-cache: fraction of lookups repeating the previous id
    bytes_per_entry: float | None = None  # memory

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ROW_KEYS or value is not None:
                out[f.name] = round(value, 3) if isinstance(value, float) else value
        return out


def failure_reason(exc: BaseException) -> str:
    """A row's skip reason for a design that raised: the exception's type and first line."""
    first_line = str(exc).strip().partition("\n")[0]
    return f"failed: {type(exc).__name__}: {first_line}" if first_line else f"failed: {type(exc).__name__}"


def skipped(suite: str, op: str, n: int, ids: str | None, impl: str, reason: str) -> Row:
    return Row(suite=suite, op=op, n=n, ids=ids, impl=impl, skipped=reason)


@dataclass
class Verdict:
    """A claim (of the original analysis, or a target of flowreg's issues) against the measurements."""

    claim: str
    source: str  # "analysis" or "target"
    measured: str
    verdict: str  # "holds", "partly", "fails" or "not measured"

    def to_json(self) -> dict[str, str]:
        return {
            "claim": self.claim,
            "source": self.source,
            "measured": self.measured,
            "verdict": self.verdict,
        }
