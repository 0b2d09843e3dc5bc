"""``flowreg bench``: plan the steps, run them with progress, report; Ctrl-C keeps what was measured."""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import report
from .batch import BATCH_OPS, batch_steps
from .cases import ALL_DESIGNS, BENCH_EXTRA_HINT, LOOKUP_OPS, MUTATION_OPS
from .context import Context, Selection, Step
from .harness import gc_paused
from .memory import memory_steps
from .profiles import MS, PROFILES
from .progress import Progress, make_progress
from .results import Row, Verdict, failure_reason
from .suites import hot_cache_steps, lock_steps, original_steps, peer_steps
from .verdicts import compute

SUITES: dict[str, Callable[[Context], list[Step]]] = {
    "original": original_steps,
    "hot-cache": hot_cache_steps,
    "locks": lock_steps,
    "batch": batch_steps,
    "memory": memory_steps,
    "peers": peer_steps,
}
OPS = (*LOOKUP_OPS, *MUTATION_OPS, *BATCH_OPS)
IMPLS = tuple(ALL_DESIGNS)
EXIT_INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


def name_list(kind: str, known: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: comma-separated names, each one of known."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            given = ", ".join(map(repr, unknown)) or repr(text)
            raise argparse.ArgumentTypeError(f"unknown {kind} {given}; choose from: {', '.join(known)}")
        return names

    return parse


MAX_SIZE = 10_000_000  # a few GB of registries, dicts and lists already


def size_list(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated sizes such as 21,1000,1000000 (or 1k, 1M)."""
    sizes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1].lower(), 1)
        digits = part[:-1] if scale > 1 else part
        try:
            value = int(digits.replace("_", "")) * scale
        except ValueError:
            value = 0
        if not 2 <= value <= MAX_SIZE:
            raise argparse.ArgumentTypeError(
                f"bad size {part!r}: sizes are integers from 2 to {MAX_SIZE:,}, e.g. 21,1000,1000000"
            )
        sizes.append(value)
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given, e.g. --sizes 21,1000,1000000")
    return tuple(sorted(set(sizes)))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``flowreg bench``."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_true",
        help="a short run (under ~30 s on 2 cores); the default takes a few minutes",
    )
    mode.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # seconds: for the tests
    parser.add_argument(
        "--sizes",
        type=size_list,
        help=f"registry sizes up to {MAX_SIZE:,}, comma-separated (default: 21,1000,1000000)",
    )
    parser.add_argument(
        "--ops", type=name_list("op", OPS), help=f"operations to time, comma-separated: {', '.join(OPS)}"
    )
    parser.add_argument(
        "--impl",
        type=name_list("implementation", IMPLS),
        help=f"designs to compare, comma-separated (dict, the baseline, always runs): {', '.join(IMPLS)}",
    )
    parser.add_argument(
        "--suites",
        type=name_list("suite", tuple(SUITES)),
        help=f"suites to run, comma-separated: {', '.join(SUITES)}",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="threads for the batch suite's parallel run (default: the CPU count, 2 to 8)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PATH.png",
        help="write a plot (needs matplotlib): PNG, or what the suffix says (.svg, .pdf, ...)",
    )
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)


@dataclass
class Outcome:
    rows: list[Row]
    verdicts: list[Verdict]
    interrupted: bool
    seconds: float
    errors: list[str]  # steps that raised: a bug in the benchmark, not a design's failure


def run_steps(ctx: Context, progress: Progress) -> Outcome:
    """Run every planned step; Ctrl-C stops after what is done (and restores gc, see harness).

    A step that raises is recorded in Outcome.errors and the run goes on with the next one.
    """
    started = time.monotonic()
    rows: list[Row] = []
    errors: list[str] = []
    interrupted = False
    try:
        steps = [step for suite in ctx.selection.suites for step in SUITES[suite](ctx)]
        progress.start(len(steps))
        # gc stays off between timed runs too: with millions of objects alive, each full
        # collection would take a second (the suites make no reference cycles)
        with gc_paused():
            for step in steps:
                progress.advance(step.label)
                try:
                    rows += step.run()
                except Exception as exc:
                    errors.append(f"{step.label}: {failure_reason(exc)}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.stop()
        ctx.release()
    return Outcome(rows, compute(rows), interrupted, time.monotonic() - started, errors)


def environment(ctx: Context, argv: Sequence[str]) -> dict[str, Any]:
    from ..cli import build_info

    settings = ctx.profile.settings
    return {
        **build_info(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "profile": ctx.profile.name,
        "runs": settings.runs,
        "target_ms": settings.target_ns / MS,
        "sizes": list(ctx.selection.sizes),
        "threads": ctx.selection.threads,
        "seed": ctx.selection.seed,
    }


def bench(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """Run ``flowreg bench``; returns the exit code."""
    if args.plot is not None and not report.matplotlib_available():
        print(f"flowreg bench: {report.PLOT_HINT}", file=sys.stderr)
        return 2
    # Before the run, not after minutes of it.
    problems = [_unwritable(path) for path in (args.json, args.plot) if path is not None]
    if args.plot is not None:
        problems.append(report.plot_format_problem(args.plot))
    for problem in filter(None, problems):
        print(f"flowreg bench: {problem}", file=sys.stderr)
        return 2
    profile = PROFILES["tiny" if args.tiny else "quick" if args.quick else "default"]
    selection = Selection(
        sizes=args.sizes or profile.sizes,
        suites=args.suites or tuple(SUITES),
        ops=frozenset(args.ops or set(OPS) - set(profile.skipped_ops)),
        impls=frozenset(args.impl) if args.impl else None,
        threads=args.threads or max(2, min(8, os.cpu_count() or 2)),
        seed=args.seed,
        memory_sizes=args.sizes,
    )
    ctx = Context(profile, selection)
    outcome = run_steps(ctx, make_progress())
    env = environment(ctx, argv) | {"seconds": round(outcome.seconds, 1)}

    if sys.stdout.isatty() and _rich_available():
        report.render_rich(outcome.rows, outcome.verdicts)
    else:
        report.render_text(outcome.rows, outcome.verdicts, sys.stdout)
    sys.stdout.flush()
    status = 0
    if args.json is not None:
        document = report.json_document(
            outcome.rows, outcome.verdicts, env, outcome.interrupted, outcome.errors
        )
        status |= _written(args.json, "results", lambda: report.write_json(args.json, document))
    if args.plot is not None:
        status |= _written(args.plot, "plot", lambda: report.write_plot(args.plot, outcome.rows, env))
    if not (_rich_available() and report.matplotlib_available()):
        print(f"hint: {BENCH_EXTRA_HINT} adds rich tables, --plot and the peer libraries", file=sys.stderr)
    for error in outcome.errors:
        print(f"flowreg bench: step failed, {error}", file=sys.stderr)
    if outcome.errors:
        status = 1
    if outcome.interrupted:
        print("interrupted: the results above are what was measured before Ctrl-C", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


def _unwritable(path: Path) -> str | None:
    """Why `path` cannot be written, or None."""
    if path.is_dir():
        return f"cannot write {path}: it is a directory"
    folder = path.resolve().parent
    if not folder.is_dir():
        return f"cannot write {path}: no such directory"
    if not os.access(path if path.exists() else folder, os.W_OK):
        return f"cannot write {path}: permission denied"
    return None


def _written(path: Path, what: str, write: Callable[[], None]) -> int:
    """Run write(); 0 and a line saying where, or 1 and why not."""
    try:
        write()
    except OSError as exc:
        print(f"flowreg bench: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{what} written to {path}", file=sys.stderr)
    return 0


def _rich_available() -> bool:
    try:
        importlib.import_module("rich")
    except ImportError:
        return False
    return True
