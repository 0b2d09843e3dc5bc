"""The ``flowreg`` command line: ``flowreg info`` and ``flowreg bench``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

import flowreg

from .benchmark import runner


def build_info() -> dict[str, Any]:
    """What a bug report needs: versions, the implementation in use, how it was built."""
    info: dict[str, Any] = {
        "flowreg": flowreg.__version__,
        "implementation": flowreg.IMPLEMENTATION,
        "available": sorted(flowreg.implementations()),
        "no_extensions": flowreg.NO_EXTENSIONS,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        from . import _registry
    # ImportError: not built.  Anything else: a broken build, which `import flowreg` passed over.
    except Exception as exc:
        info["native_import_error"] = f"{type(exc).__name__}: {exc}"
    else:
        info.update(_registry._BUILD_INFO)
    return info


def _info(args: argparse.Namespace) -> int:
    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="flowreg", description=__doc__)
    top.add_argument("--version", action="version", version=f"flowreg {flowreg.__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, implementation and build details")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_info)
    bench = commands.add_parser(
        "bench",
        help="measure what each registry design costs here (--quick: under ~30 s)",
        description="Time list, dict, dict + hot cache and flowreg (pure-Python and native) on this "
        "machine: calibrated loops, several interleaved runs, medians, spread and same-run ratios to dict.",
    )
    runner.add_arguments(bench)
    bench.set_defaults(run=_bench)
    return top


def _bench(args: argparse.Namespace) -> int:
    return runner.bench(args, ["flowreg", *args.arguments])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.arguments = sys.argv[1:] if argv is None else list(argv)  # recorded in bench --json
    try:
        status = int(args.run(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        # The reader went away (`flowreg info | head -1`): stop quietly, as Unix tools do.
        # stdout goes to devnull so that the flush at exit does not fail once more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return status
