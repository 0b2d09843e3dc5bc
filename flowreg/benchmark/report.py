"""Results out: plain-text tables (always), rich tables (a terminal with rich), JSON, a PNG plot.

JSON document (``--json PATH``)::

    {
      "schema": 1,
      "environment": {... `flowreg info` ..., "timestamp": ISO-8601 UTC, "argv": [...],
                      "profile": "quick", "runs": 5, "target_ms": 10, "threads": 2,
                      "seconds": 21.3},
      "interrupted": false,
      "errors": ["<step>: failed: <exception>", ...],
      "results": [
        {"suite": "original", "op": "switch", "n": 21, "ids": "fresh", "impl": "c",
         "median_ns": 31.2, "spread_pct": 2.1, "ratio_to_dict": 0.41, "runs": 5,
         "loops": 412000, "skipped": null, ...suite-specific keys...},
        ...
      ],
      "verdicts": [{"claim": "...", "source": "analysis" | "target",
                    "measured": "...", "verdict": "holds" | "partly" | "fails" | "not measured"}]
    }

Rows always have the keys suite, op, n, ids, impl, median_ns, spread_pct, ratio_to_dict, runs,
loops (operations timed per run) and skipped (null, or why the row was not measured, with
median_ns null; "failed: <exception>" for a design that raised while built or timed).
"errors" lists the steps that raised outside any design (none: an empty list). Suite-specific
keys, present only where they apply: threads and ratio_to_1_thread (batch), hit_ratio
(hot-cache), ratio_to_lock (locks), bytes_per_entry (memory; median_ns is null there).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .results import Row, Verdict

SCHEMA = 1
PLOT_HINT = "--plot needs matplotlib: pip install matplotlib (or: pip install 'flowreg[bench]')"

#: Column order: the original designs, the lock wrappers, the peers, then flowreg.
IMPL_ORDER = (
    "list",
    "dict",
    "dict+hot",
    "dict+lock",
    "dict+rlock",
    "dict+readerwriterlock",
    "dict+fasteners",
    "cachetools",
    "lru-dict",
    "cachebox",
    "preshed",
    "cykhash",
    "py",
    "c",
)
OP_ORDER = ("switch", "get", "delete", "create", "delitem", "setitem", "get_many", "contains_many")
_SHORT_REASON = 24
#: Plot colours, the same for an impl in every panel.
_COLORS = {
    "list": "#7f7f7f",
    "dict": "#1f77b4",
    "dict+hot": "#aec7e8",
    "py": "#ff7f0e",
    "c": "#d62728",
}
_OTHER_COLORS = (
    "#2ca02c",
    "#98df8a",
    "#9467bd",
    "#c5b0d5",
    "#8c564b",
    "#c49c94",
    "#e377c2",
    "#17becf",
    "#bcbd22",
)


def _color(impl: str) -> str:
    if impl in _COLORS:
        return _COLORS[impl]
    others = [i for i in IMPL_ORDER if i not in _COLORS]
    return _OTHER_COLORS[others.index(impl) % len(_OTHER_COLORS)] if impl in others else "#000000"


@dataclass(frozen=True)
class Section:
    title: str
    matches: Callable[[Row], bool]
    keys: tuple[str, ...]  # row fields that make a table row; impls are the columns
    pivot: bool = True  # False: one table row per result (impl as a key column)


SECTIONS = (
    Section(
        "original: the analysis' table, honestly measured. Median per call, ±spread (IQR, % of median), "
        "ratio to dict in the same run (switch: the dict class; get/setitem/delitem: the bare dict)",
        lambda r: r.suite == "original",
        ("op", "n", "ids"),
    ),
    Section(
        "hot-cache: switch_flow vs. share of lookups repeating the previous id (fresh ids); "
        "ratio to the dict class on the same lookups",
        lambda r: r.suite == "hot-cache",
        ("n", "hit_ratio"),
    ),
    Section(
        "locks: thread-safe reads, one thread, uncontended (fresh ids); "
        "ratio to the unlocked dict class (switch) / bare dict (get)",
        lambda r: r.suite == "locks",
        ("op", "n"),
    ),
    Section(
        "batch: an int64 buffer of ids; wall time per id, ratio to the dict loop on as many threads "
        "(dict: [d[x] for x in ids] / [x in d for x in ids]); 'scale' = throughput vs. 1 thread; "
        "blake2b, sha256: hashing the same buffers, how two kinds of plain CPU work scaled in the same runs",
        lambda r: r.suite == "batch",
        ("op", "n", "threads"),
    ),
    Section(
        "memory: bytes per entry of the structure (values excluded; dict with its int key objects), "
        "tracemalloc",
        lambda r: r.suite == "memory" and r.op == "structure",
        ("n",),
    ),
    Section(
        "memory: bytes per Flow object with 4 fields (shared field values), tracemalloc",
        lambda r: r.suite == "memory" and r.op == "flow object",
        ("impl",),
        pivot=False,
    ),
    Section(
        "peers: x[k] on other int-keyed maps (fresh ids); ratio to dict",
        lambda r: r.suite == "peers",
        ("n",),
    ),
)


# --- cell formatting --------------------------------------------------------------------------


def format_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} us"
    if ns >= 100:
        return f"{ns:.0f} ns"
    return f"{ns:.3g} ns"


def format_cell(row: Row) -> str:
    if row.bytes_per_entry is not None:
        ratio = f" {row.ratio_to_dict:.2f}x" if row.ratio_to_dict is not None else ""
        return f"{row.bytes_per_entry:.1f} B{ratio}"
    if row.median_ns is None:
        return "-"
    cell = f"{format_ns(row.median_ns)} ±{row.spread_pct or 0:.0f}%"
    if row.ratio_to_dict is not None:
        cell += f" {row.ratio_to_dict:.2f}x"
    if row.ratio_to_1_thread:
        cell += f" scale {1 / row.ratio_to_1_thread:.2f}x"
    return cell


def _format_key(field: str, value: Any) -> str:
    if value is None:
        return ""
    if field == "n":
        return f"{value:,}"
    if field == "hit_ratio":
        return f"{100 * value:g}%"
    return str(value)


_KEY_TITLES = {
    "op": "op",
    "n": "n",
    "ids": "ids",
    "hit_ratio": "hit ratio",
    "threads": "threads",
    "impl": "variant",
}


def _sort_key(section: Section, row: Row) -> tuple[Any, ...]:
    out: list[Any] = []
    for field in section.keys:
        value = getattr(row, field)
        if field == "op":
            out.append(OP_ORDER.index(value) if value in OP_ORDER else len(OP_ORDER))
        elif field == "ids":
            out.append(0 if value == "same" else 1)
        elif field == "impl":
            out.append(0)  # keep measurement order
        else:
            out.append(value if value is not None else -1)
    return tuple(out)


@dataclass
class Table:
    title: str
    header: list[str]
    body: list[list[str]]
    notes: list[str]


def build_tables(rows: Sequence[Row]) -> list[Table]:
    """The results as tables (one per section with rows), shared by the text and rich output."""
    tables = []
    for section in SECTIONS:
        chosen = sorted((r for r in rows if section.matches(r)), key=lambda r: _sort_key(section, r))
        if not chosen:
            continue
        notes: list[str] = []

        def cell(row: Row, notes: list[str] = notes) -> str:
            if row.skipped is None:
                return format_cell(row)
            if len(row.skipped) <= _SHORT_REASON:
                return row.skipped
            note = f"{row.impl}: {row.skipped}"
            if note not in notes:
                notes.append(note)
            return f"skipped [{notes.index(note) + 1}]"

        if not section.pivot:
            header = [_KEY_TITLES[k] for k in section.keys] + ["bytes"]
            body = [[_format_key(k, getattr(r, k)) for k in section.keys] + [cell(r)] for r in chosen]
        else:
            present = {r.impl for r in chosen}
            impls = [i for i in IMPL_ORDER if i in present] + sorted(present - set(IMPL_ORDER))
            header = [_KEY_TITLES[k] for k in section.keys] + impls
            grid: dict[tuple[Any, ...], dict[str, str]] = {}
            for r in chosen:
                grid.setdefault(tuple(getattr(r, k) for k in section.keys), {})[r.impl] = cell(r)
            body = [
                [_format_key(k, v) for k, v in zip(section.keys, key, strict=True)]
                + [cells.get(i, "") for i in impls]
                for key, cells in grid.items()
            ]
        tables.append(Table(section.title, header, body, [f"[{i + 1}] {n}" for i, n in enumerate(notes)]))
    return tables


def render_text(rows: Sequence[Row], verdicts: Sequence[Verdict], stream: TextIO) -> None:
    """Plain-text tables and verdicts; works everywhere."""
    for table in build_tables(rows):
        widths = [max(len(line[i]) for line in [table.header, *table.body]) for i in range(len(table.header))]
        print(table.title, file=stream)
        for line in [table.header, ["-" * w for w in widths], *table.body]:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip(), file=stream)
        for note in table.notes:
            print(f"  {note}", file=stream)
        print(file=stream)
    measured = [v for v in verdicts if v.verdict != "not measured"]
    if measured:
        print("verdicts (claims of the original analysis, and flowreg's own targets)", file=stream)
        for v in measured:
            print(f"  [{v.verdict}] ({v.source}) {v.claim}", file=stream)
            print(f"      measured: {v.measured}", file=stream)
    if len(measured) < len(verdicts):
        print(f"  ({len(verdicts) - len(measured)} more not measured in this run: see --json)", file=stream)


_VERDICT_STYLE = {"holds": "green", "partly": "yellow", "fails": "red", "not measured": "dim"}


def render_rich(rows: Sequence[Row], verdicts: Sequence[Verdict]) -> None:
    """The same tables with rich (for a terminal)."""
    from rich import box  # type: ignore[import-not-found, unused-ignore]
    from rich.console import Console  # type: ignore[import-not-found, unused-ignore]
    from rich.markup import escape  # type: ignore[import-not-found, unused-ignore]
    from rich.table import Table as RichTable  # type: ignore[import-not-found, unused-ignore]

    console = Console()
    for table in build_tables(rows):
        out = RichTable(title=escape(table.title), title_justify="left", box=box.SIMPLE_HEAD)
        for i, name in enumerate(table.header):
            out.add_column(escape(name), style="bold" if name in ("c", "py") else None, no_wrap=i > 0)
        for line in table.body:
            out.add_row(*(escape(c) for c in line))
        console.print(out)
        for note in table.notes:
            console.print(f"  {escape(note)}", style="dim")
    measured = [v for v in verdicts if v.verdict != "not measured"]
    if measured:
        out = RichTable(title="verdicts", title_justify="left", box=box.SIMPLE_HEAD)
        for name in ("verdict", "source", "claim", "measured"):
            out.add_column(name)
        for v in measured:
            style = _VERDICT_STYLE.get(v.verdict, "")
            out.add_row(f"[{style}]{escape(v.verdict)}[/]", v.source, escape(v.claim), escape(v.measured))
        console.print(out)
    if len(measured) < len(verdicts):
        console.print(
            f"  ({len(verdicts) - len(measured)} more not measured in this run: see --json)", style="dim"
        )


def json_document(
    rows: Sequence[Row],
    verdicts: Sequence[Verdict],
    environment: dict[str, Any],
    interrupted: bool,
    errors: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "environment": environment,
        "interrupted": interrupted,
        "errors": list(errors),
        "results": [r.to_json() for r in rows],
        "verdicts": [v.to_json() for v in verdicts],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


# --- plot -----------------------------------------------------------------------------------


def matplotlib_available() -> bool:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def plot_format_problem(path: Path) -> str | None:
    """Why matplotlib cannot write a plot to `path`, or None (no suffix: PNG)."""
    from matplotlib.figure import Figure  # type: ignore[import-not-found, unused-ignore]

    kinds = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if not suffix or suffix in kinds:
        return None
    return f"cannot plot to {path}: matplotlib writes {', '.join('.' + kind for kind in sorted(kinds))}"


def _bars(
    axes: Any, rows: Sequence[Row], title: str, value: Callable[[Row], float | None], unit: str
) -> None:
    sizes = sorted({r.n for r in rows})
    impls = [i for i in IMPL_ORDER if any(r.impl == i for r in rows)]
    axes.set_title(title, fontsize=9)
    if not rows or not impls:
        axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)
        axes.set_xticks([])
        axes.set_yticks([])
        return
    width = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        xs, ys = [], []
        for i, n in enumerate(sizes):
            x = i + (j - (len(impls) - 1) / 2) * width
            row = next((r for r in rows if r.n == n and r.impl == impl), None)
            measured = value(row) if row is not None and row.skipped is None else None
            if measured is not None and measured > 0:
                xs.append(x)
                ys.append(measured)
            elif row is not None and row.skipped:  # say so where the bar would be
                axes.text(x, 0.02, "skipped", transform=axes.get_xaxis_transform(), rotation=90, fontsize=6)
        axes.bar(xs, ys, width=width, label=impl, color=_color(impl))
    axes.set_xticks(range(len(sizes)), [f"n={n:,}" for n in sizes], fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel(unit, fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    axes.legend(fontsize=6, ncol=2)


def _hot_lines(axes: Any, rows: Sequence[Row]) -> None:
    axes.set_title("switch_flow vs hit ratio (ratio to the dict class)", fontsize=9)
    if not rows:
        axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)
        return
    sizes = sorted({r.n for r in rows})
    for impl in [i for i in IMPL_ORDER if any(r.impl == i for r in rows) and i != "dict"]:
        for n, style in zip(sizes, ("-", "--", ":", "-."), strict=False):
            points = sorted(
                (r.hit_ratio or 0.0, r.ratio_to_dict)
                for r in rows
                if r.impl == impl and r.n == n and r.ratio_to_dict is not None
            )
            if points:
                xs, ys = [100 * x for x, _ in points], [y for _, y in points]
                axes.plot(xs, ys, style, marker="o", color=_color(impl), label=f"{impl} n={n:,}")
    axes.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    axes.text(100, 0.48, "claimed: halves above 50%", fontsize=7, color="grey", ha="right", va="top")
    axes.set_xlabel("hit ratio %", fontsize=8)
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.15))


def write_plot(path: Path, rows: Sequence[Row], environment: dict[str, Any]) -> None:
    """A PNG: the original table's ops by size and design, the hot-cache sweep, memory."""
    # no pyplot: no global state, no GUI backend
    from matplotlib.figure import Figure  # type: ignore[import-not-found, unused-ignore]

    figure = Figure(figsize=(15, 9), layout="constrained")
    grid = figure.subplots(2, 3)
    original = [r for r in rows if r.suite == "original"]
    panels = (
        ("switch", "fresh", "switch_flow (fresh ids)"),
        ("get", "fresh", "[] lookup (fresh ids)"),
        ("delete", "fresh", "delete_flow (fresh ids)"),
        ("create", "same", "create_flow"),
    )
    for axes, (op, ids, title) in zip(grid.flat, panels, strict=False):
        chosen = [r for r in original if r.op == op and r.ids == ids]
        _bars(axes, chosen, title, lambda r: r.median_ns, "ns per call (log)")
    _hot_lines(grid.flat[4], [r for r in rows if r.suite == "hot-cache" and r.skipped is None])
    memory = [r for r in rows if r.suite == "memory" and r.op == "structure"]
    _bars(
        grid.flat[5], memory, "bytes per entry (values excluded)", lambda r: r.bytes_per_entry, "bytes (log)"
    )
    env = environment
    figure.suptitle(
        f"flowreg {env.get('flowreg', '?')} bench ({env.get('profile', '?')}): "
        f"Python {env.get('python', '?')}, {env.get('machine', '?')}, {env.get('cpu_count', '?')} CPUs, "
        f"{env.get('timestamp', '')}",
        fontsize=10,
    )
    figure.savefig(path, dpi=100, format=None if path.suffix else "png")  # at PATH, as named
