"""The command line end to end: ``flowreg info`` and ``flowreg bench`` in its tiny mode.

``bench --tiny`` runs every suite in a few seconds. Nothing here looks at a timing: only at
what is printed and written (tables, JSON shape, PNG), the exit codes and the messages. The
native core may or may not be importable: what is expected follows flowreg.implementations().
"""

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
from collections import Counter

import pytest

import flowreg
from flowreg.benchmark import harness
from flowreg.benchmark.cases import LIST_MAX_N, MutationBatches, hot_sequence, make_ids
from flowreg.benchmark.report import SCHEMA
from flowreg.benchmark.results import ROW_KEYS
from flowreg.benchmark.runner import IMPLS, OPS, SUITES
from flowreg.cli import main

# runs the benchmark (gc paused, threads started) or subprocesses: once, not in parallel
pytestmark = pytest.mark.thread_unsafe

AVAILABLE = set(flowreg.implementations())
VERDICTS = {"holds", "partly", "fails", "not measured"}
SUITE_TITLES = {suite: re.compile(rf"^{re.escape(suite)}: ", re.MULTILINE) for suite in SUITES}


def flowreg_cli(*args, cwd, env=None, timeout=240):
    """``python -m flowreg ...`` run from cwd (not the source tree: flowreg must be the installed one)."""
    return subprocess.run(
        [sys.executable, "-m", "flowreg", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One full ``bench --tiny --json`` run (and ``--plot`` when matplotlib is installed)."""
    out = tmp_path_factory.mktemp("bench")
    args = ["bench", "--tiny", "--threads", "2", "--json", str(out / "bench.json")]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = None
    else:
        plot = out / "bench.png"
        args += ["--plot", str(plot)]
    result = flowreg_cli(*args, cwd=out)
    assert result.returncode == 0, result.stderr
    return result, json.loads((out / "bench.json").read_text()), plot


def table(stdout, suite):
    """The lines of one suite's first table: title, header, separator, rows."""
    match = SUITE_TITLES[suite].search(stdout)
    assert match, f"no {suite} table in:\n{stdout}"
    lines = stdout[match.start() :].splitlines()
    end = lines.index("") if "" in lines else len(lines)
    return lines[:end]


# --- bench: the printed tables --------------------------------------------------------------


def test_bench_prints_a_table_per_suite(tiny_run):
    result, _, _ = tiny_run
    for suite in SUITES:
        lines = table(result.stdout, suite)
        assert len(lines) >= 4, lines
        assert set(lines[2].replace(" ", "")) == {"-"}, lines[2]
    assert "verdicts" in result.stdout


def test_bench_original_table_has_every_design(tiny_run):
    result, _, _ = tiny_run
    _, header, _, *rows = table(result.stdout, "original")
    columns = header.split()
    assert columns[:3] == ["op", "n", "ids"]
    assert {"list", "dict", "dict+hot", "py", "c"} <= set(columns)
    ops = {row.split()[0] for row in rows}
    assert {"switch", "get", "create", "delete"} <= ops
    cells = "\n".join(rows)
    if "c" not in AVAILABLE:
        assert "native core not importable" in cells or "skipped [" in cells
    assert re.search(r"\d ns ±\d+% 1\.00x", cells), "dict cells show ns, spread and ratio 1.00x"


def test_bench_progress_is_plain_lines_when_piped(tiny_run):
    result, _, _ = tiny_run
    progress = [line for line in result.stderr.splitlines() if re.match(r"\[\s*\d+/\d+ ", line)]
    assert progress, result.stderr
    total = int(re.match(r"\[\s*\d+/(\d+)", progress[0]).group(1))
    assert len(progress) == total
    assert "\x1b[" not in result.stderr  # no terminal control sequences


# --- bench: JSON ----------------------------------------------------------------------------


def test_bench_json_document_shape(tiny_run):
    _, document, _ = tiny_run
    assert document["schema"] == SCHEMA
    assert document["interrupted"] is False
    assert document["errors"] == []
    env = document["environment"]
    for key in ("flowreg", "implementation", "available", "python", "cpu_count", "timestamp", "argv"):
        assert key in env, key
    assert env["available"] == sorted(AVAILABLE)
    assert env["argv"][:3] == ["flowreg", "bench", "--tiny"]
    assert env["profile"] == "tiny"
    assert isinstance(document["results"], list)
    assert document["results"]
    assert isinstance(document["verdicts"], list)
    assert document["verdicts"]


def test_bench_json_rows(tiny_run):
    _, document, _ = tiny_run
    rows = document["results"]
    assert {row["suite"] for row in rows} == set(SUITES)
    for row in rows:
        assert set(ROW_KEYS) <= set(row), row
        assert isinstance(row["n"], int)
        assert row["n"] > 0
        assert isinstance(row["impl"], str)
        if row["skipped"] is not None:
            assert isinstance(row["skipped"], str)
            assert row["median_ns"] is None
        elif row["suite"] == "memory":
            assert row["bytes_per_entry"] > 0
        else:
            assert row["op"] in OPS
            assert row["median_ns"] >= 0
            assert row["spread_pct"] >= 0
            assert row["runs"] >= 1
            assert row["loops"] >= 1
            assert row["ratio_to_dict"] is None or row["ratio_to_dict"] >= 0


def test_bench_json_follows_implementation_availability(tiny_run):
    _, document, _ = tiny_run
    rows = [r for r in document["results"] if r["suite"] == "original"]
    for impl in ("py", "c"):
        mine = [r for r in rows if r["impl"] == impl]
        assert mine, impl
        if impl in AVAILABLE:
            assert all(r["skipped"] is None for r in mine)
        else:
            assert all(r["skipped"] for r in mine)


def test_bench_json_same_run_ratio_of_dict_to_itself(tiny_run):
    _, document, _ = tiny_run
    dict_rows = [r for r in document["results"] if r["impl"] == "dict" and r["median_ns"] is not None]
    assert dict_rows
    assert all(r["ratio_to_dict"] == 1.0 for r in dict_rows if r["median_ns"] > 0)


def test_bench_json_suite_specific_keys(tiny_run):
    _, document, _ = tiny_run
    rows = [r for r in document["results"] if r["skipped"] is None]
    hot = [r for r in rows if r["suite"] == "hot-cache"]
    assert {r["hit_ratio"] for r in hot} == {0.0, 0.5, 0.9, 0.99}
    batch = [r for r in rows if r["suite"] == "batch"]
    assert {r["threads"] for r in batch} >= {1}
    assert {r["op"] for r in batch} == {"get_many", "contains_many"}
    # the hash references are timed beside contains_many on 1 and N threads, and only there
    for name in ("sha256", "blake2b"):
        reference = [r for r in batch if r["impl"] == name]
        assert {(r["op"], r["threads"]) for r in reference} == {("contains_many", t) for t in (1, 2)}
        assert all((r["threads"] > 1) == ("ratio_to_1_thread" in r) for r in reference)
    target = next(v for v in document["verdicts"] if "on 2 threads" in v["claim"])
    if "c" not in AVAILABLE:  # a target of the native core (pure-Python package installed)
        assert target["verdict"] == "not measured"
    else:
        assert "(in the same runs: sha256 " in target["measured"]
        assert ", blake2b " in target["measured"]
        assert "at n=1,000 " in target["measured"]
        assert "at n=21 " not in target["measured"]  # the target names 1,000 and 1,000,000 only
    flow_objects = {r["impl"] for r in rows if r["suite"] == "memory" and r["op"] == "flow object"}
    assert {"plain class", "__slots__", "dataclass(slots=True)", "NamedTuple"} <= flow_objects


def test_bench_json_verdicts(tiny_run):
    _, document, _ = tiny_run
    for verdict in document["verdicts"]:
        assert set(verdict) == {"claim", "source", "measured", "verdict"}
        assert verdict["verdict"] in VERDICTS
        assert verdict["source"] in ("analysis", "target")
    claims = " ".join(v["claim"] for v in document["verdicts"])
    assert "hit ratio passes 50%" in claims
    hot = next(v for v in document["verdicts"] if "hit ratio passes 50%" in v["claim"])
    assert hot["verdict"] != "not measured"
    # a target at a size the run did not measure says so, and shows the sizes it did measure
    memory = next(v for v in document["verdicts"] if "bytes per entry at 1M" in v["claim"])
    assert memory["verdict"] == "not measured"
    if "c" in AVAILABLE:  # a target of the native core, measured at n=1,000 only
        assert memory["measured"].startswith("not measured at n=1,000,000 (")
        assert "at n=1,000)" in memory["measured"]


def test_bench_target_shows_the_references_that_were_measured():
    from flowreg.benchmark.results import Row
    from flowreg.benchmark.verdicts import TARGETS

    target = next(t for t in TARGETS if "on 2 threads" in t.claim)  # the shipped target

    def row(impl: str, ratio: float) -> Row:
        return Row("batch", "contains_many", 1_000, "buffer", impl, threads=2, ratio_to_1_thread=ratio)

    assert target.check([row("c", 0.5)]).measured == "2 at n=1,000 (buffer)"
    verdict = target.check([row("c", 0.6), row("blake2b", 0.8)])
    assert verdict.measured == "1.67 at n=1,000 (buffer) (in the same runs: blake2b 1.25)"
    assert verdict.verdict == "fails"
    both = target.check([row("c", 0.5), row("blake2b", 0.5), row("sha256", 0.55)]).measured
    assert both.endswith("(in the same runs: sha256 1.82, blake2b 2)")


# --- bench: plot ----------------------------------------------------------------------------


def test_bench_plot_writes_a_png(tiny_run):
    pytest.importorskip("matplotlib")
    _, _, plot = tiny_run
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_plot_without_matplotlib_exits_2_with_a_hint(tmp_path):
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('matplotlib hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    result = flowreg_cli("bench", "--tiny", "--plot", str(tmp_path / "out.png"), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "pip install" in result.stderr
    assert "matplotlib" in result.stderr
    assert not (tmp_path / "out.png").exists()
    assert "original:" not in result.stdout  # refused before measuring anything


# --- bench: options and errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--impl", "nope"], "unknown implementation 'nope'"),
        (["--impl", "c,dikt"], "unknown implementation 'dikt'"),
        (["--ops", "jump"], "unknown op 'jump'"),
        (["--suites", "everything"], "unknown suite 'everything'"),
        (["--sizes", "abc"], "bad size 'abc'"),
        (["--sizes", "1"], "bad size '1'"),
        (["--sizes", "21,40M"], "bad size '40M': sizes are integers from 2 to 10,000,000"),
        (["--threads", "0"], "expected a positive integer"),
        (["--quick", "--tiny"], "not allowed with argument"),
    ],
)
def test_bench_bad_arguments_exit_2_with_a_message(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "usage: flowreg bench" in err


def test_bench_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bench_json_to_a_missing_directory_exits_2(capsys, tmp_path):
    assert main(["bench", "--tiny", "--json", str(tmp_path / "nowhere" / "out.json")]) == 2
    assert "no such directory" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_output_paths_are_checked_before_the_run(capsys, tmp_path, option):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    assert main(["bench", "--tiny", option, str(tmp_path)]) == 2
    assert f"cannot write {tmp_path}: it is a directory" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root may write anyway
        pytest.skip("this user can write to a read-only directory")
    assert main(["bench", "--tiny", option, str(locked / "out.png")]) == 2
    captured = capsys.readouterr()
    assert "permission denied" in captured.err
    assert "original:" not in captured.out  # refused before measuring anything


SMALL_RUN = ["bench", "--tiny", "--suites", "original", "--ops", "get", "--sizes", "21"]


def test_bench_plot_format_is_checked_before_the_run(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["bench", "--tiny", "--plot", str(tmp_path / "plot.txt")]) == 2
    err = capsys.readouterr().err
    assert "cannot plot to" in err and ".png" in err and ".svg" in err


def test_bench_plot_without_a_suffix_is_a_png_at_that_path(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "plot"
    assert main([*SMALL_RUN, "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {path}" in capsys.readouterr().err


def test_bench_a_failed_write_is_one_line_and_exit_1(capsys, tmp_path, monkeypatch):
    from flowreg.benchmark import report

    def full_disk(path, document):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_json", full_disk)
    path = tmp_path / "out.json"
    assert main([*SMALL_RUN, "--json", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"flowreg bench: cannot write {path}: No space left on device" in err
    assert "Traceback" not in err


def test_bench_selection_in_process(capsys, tmp_path):
    """--suites/--ops/--impl/--sizes narrow the run; dict, the baseline, is always measured."""
    path = tmp_path / "out.json"
    capsys.readouterr()  # what an earlier run left: pytest-run-parallel's --iterations reuses capsys
    code = main(["bench", "--tiny", "--suites", "original", "--ops", "get", "--impl", "c", "--sizes", "21"])
    assert code == 0
    out = capsys.readouterr().out
    header = table(out, "original")[1].split()
    assert header == ["op", "n", "ids", "dict", "c"]
    assert (
        main(
            ["bench", "--tiny", "--suites", "original", "--ops", "get", "--sizes", "21", "--json", str(path)]
        )
        == 0
    )
    rows = json.loads(path.read_text())["results"]
    assert {(r["op"], r["n"]) for r in rows} == {("get", 21)}


def test_bench_list_beyond_its_limit_is_reported_as_skipped(capsys):
    big = LIST_MAX_N + 1
    code = main(
        ["bench", "--tiny", "--suites", "original", "--ops", "switch", "--impl", "list", "--sizes", str(big)]
    )
    assert code == 0
    rows = table(capsys.readouterr().out, "original")[3:]
    assert rows
    assert all("skipped: O(n) scan" in row for row in rows)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_bench_ctrl_c_prints_what_was_measured_and_exits_130(tmp_path):
    path = tmp_path / "partial.json"
    # A shell ignores SIGINT in its background jobs, and the child would inherit that: take it back.
    child = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from flowreg.cli import main; sys.exit(main())"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child, "bench", "--quick", "--suites", "original", "--json", str(path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:
            if line.startswith("[ 3/"):  # two steps are done
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "original:" in out
    document = json.loads(path.read_text())
    assert document["interrupted"] is True
    assert document["results"]


# --- info -----------------------------------------------------------------------------------


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["flowreg"] == flowreg.__version__
    assert info["implementation"] == flowreg.IMPLEMENTATION
    assert set(info["available"]) == AVAILABLE
    assert isinstance(info["cpu_count"], int)
    if "c" in AVAILABLE:  # how the native core was built, for bug reports
        assert info["cython"][0].isdigit() and isinstance(info["cflags"], str) and info["compiler"]
        assert info["free_threaded_build"] is bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    else:
        assert info["native_import_error"]


def test_info_plain(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^implementation\s+{flowreg.IMPLEMENTATION}$", out, re.MULTILINE)


def test_python_m_flowreg_info(tmp_path):
    result = flowreg_cli("info", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["implementation"] == flowreg.IMPLEMENTATION


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["info"], ["info", "--json"]], ids=["plain", "json"])
def test_info_into_a_closed_pipe_exits_1_without_a_traceback(tmp_path, args, unbuffered):
    """``flowreg info | head -0``: the reader is gone before flowreg writes (EPIPE), whether
    the write fails at print() (PYTHONUNBUFFERED) or at the flush when flowreg is done."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "flowreg", *args],
            cwd=tmp_path,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""


# --- the harness and workloads behind bench (no timings asserted) ------------------------------


def test_harness_rows_name_every_subject_and_ratio_to_the_baseline():
    loop = harness.compile_lookup_loop("d[k]", {"d": {1: "a", 2: "b"}})
    slow = harness.compile_lookup_loop("d.get(k)", {"d": {1: "a", 2: "b"}})
    keys = [1, 2] * 50
    subjects = [
        harness.Subject("dict", "dict", harness.lookup_runner(loop, harness.KeyCursor(keys))),
        harness.Subject("get", "get", harness.lookup_runner(slow, harness.KeyCursor(keys))),
    ]
    empty = harness.lookup_runner(harness.compile_lookup_loop("pass", {}), harness.KeyCursor(keys))
    trial = harness.Trial("t", ("lookup",), 2, "same", subjects, empty)
    rows = harness.measure(trial, harness.Settings(runs=3, target_ns=200_000))
    assert [(r.impl, r.op, r.runs) for r in rows] == [("dict", "lookup", 3), ("get", "lookup", 3)]
    assert rows[0].ratio_to_dict in (1.0, None)
    assert all(r.loops >= 1 for r in rows)


def test_harness_ratio_is_the_subject_over_the_baseline():
    def costing(ns):  # a runner whose every operation takes `ns`, on any machine
        return lambda amount: [(ns * amount, amount)]

    subjects = [harness.Subject("dict", "dict", costing(11)), harness.Subject("slow", "slow", costing(31))]
    trial = harness.Trial("t", ("lookup",), 2, "same", subjects, costing(1))
    rows = harness.measure(trial, harness.Settings(runs=3, target_ns=200_000))
    assert [(r.impl, r.median_ns, r.ratio_to_dict) for r in rows] == [("dict", 10, 1.0), ("slow", 30, 3.0)]


def test_harness_restores_gc():
    import gc

    assert gc.isenabled()
    with harness.gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyboardInterrupt), harness.gc_paused():
        raise KeyboardInterrupt
    assert gc.isenabled()


def test_harness_rejects_names_it_would_shadow():
    with pytest.raises(ValueError, match="bad name"):
        harness.compile_lookup_loop("pass", {"k": 1})


def test_key_cursor_walks_distinct_slices():
    cursor = harness.KeyCursor(list(range(10)))
    assert cursor.take(8) == (list(range(8)), 1)
    assert cursor.take(4) == ([8, 9, 0, 1], 1)
    assert cursor.take(2) == ([2, 3], 1)
    keys, loops = cursor.take(25)
    assert (len(keys), loops) == (10, 2)


def test_key_cursors_with_seeds_walk_the_blocks_in_their_own_orders():
    block = harness.KeyCursor.BLOCK
    pool = list(range(10 * block + 7))
    walks = [harness.KeyCursor(pool, seed).pool for seed in (1, 2)]
    for walk in walks:
        assert sorted(walk) == pool and walk != pool
        for start in range(0, len(pool), block):  # each block whole, in its order
            chunk = pool[start : start + block]
            assert walk[walk.index(start) :][: len(chunk)] == chunk
    assert walks[0] != walks[1]
    assert harness.KeyCursor(pool[:block], 1).pool == pool[:block]  # one block: nothing to reorder


def test_harness_reports_a_subject_that_raises_and_measures_the_others():
    def costing(ns):
        return lambda amount: [(ns * amount, amount)]

    def failing_after(calls, ns):
        count = itertools.count()

        def run(amount):
            if next(count) >= calls:
                raise MemoryError("out of memory\nsecond line")
            return [(ns * amount, amount)]

        return run

    settings = harness.Settings(runs=5, target_ns=200_000, warmups=1)
    for calls in (0, 7, 12):  # while calibrating (7 calls), warming up (1), or timing
        subjects = [
            harness.Subject("dict", "dict", costing(11)),
            harness.Subject("bad", "bad", failing_after(calls, 21)),
            harness.Subject("slow", "slow", costing(31)),
        ]
        trial = harness.Trial("t", ("get",), 2, "same", subjects, costing(1), fields={"threads": 1})
        rows = harness.measure(trial, settings)
        assert [(r.impl, r.median_ns, r.ratio_to_dict, r.skipped, r.threads) for r in rows] == [
            ("dict", 10, 1.0, None, 1),
            ("bad", None, None, "failed: MemoryError: out of memory", 1),
            ("slow", 30, 3.0, None, 1),
        ], calls
        assert rows[2].runs == settings.runs

    # the baseline failing: the others are measured, without a ratio
    subjects = [harness.Subject("dict", "dict", failing_after(0, 11)), harness.Subject("c", "c", costing(31))]
    rows = harness.measure(harness.Trial("t", ("get",), 2, "same", subjects, costing(1)), settings)
    assert [(r.impl, r.median_ns, r.ratio_to_dict) for r in rows] == [("dict", None, None), ("c", 30, None)]
    assert rows[0].skipped == "failed: MemoryError: out of memory"


def test_each_design_of_a_lookup_step_walks_the_pool_its_own_way(monkeypatch):
    from flowreg.benchmark import suites
    from flowreg.benchmark.context import Context, Selection
    from flowreg.benchmark.profiles import PROFILES

    seeds = []

    class Recording(harness.KeyCursor):
        def __init__(self, pool, seed=None):
            seeds.append(seed)
            super().__init__(pool, seed)

    monkeypatch.setattr(suites, "KeyCursor", Recording)
    ctx = Context(PROFILES["tiny"], Selection(sizes=(21,), suites=("original",), ops=frozenset({"get"})))
    (step, *_) = suites.original_steps(ctx)
    rows = step.run()
    measured = [seed for seed in seeds if seed is not None]  # None: the empty loop's
    assert len(measured) == len({r.impl for r in rows if r.skipped is None}) >= 2
    assert len(set(measured)) == len(measured)


def test_a_batch_design_that_raises_on_threads_is_failed_not_fast():
    # The threads' exceptions would end in threading.excepthook, and the run would time
    # threads that stopped at once as an impossibly fast design.
    from array import array

    from flowreg.benchmark.batch import _threaded_runner

    def loop(buffers, loops):
        raise MemoryError("in a worker thread")

    run = _threaded_runner(loop, [array("q", range(10))] * 2)
    with pytest.raises(MemoryError, match="in a worker thread"):
        run(3)
    ok = _threaded_runner(lambda buffers, loops: 0, [array("q", range(10))] * 2)
    assert ok(3)[0][1] == 3 * 2 * 10


def test_bench_a_step_that_raises_is_reported_and_the_run_goes_on(capsys, tmp_path, monkeypatch):
    from flowreg.benchmark import runner
    from flowreg.benchmark.context import Step

    def broken_suite(ctx):
        def boom():
            raise ZeroDivisionError("a bug in a suite")

        return [Step("broken: one", boom)]

    monkeypatch.setitem(runner.SUITES, "broken", broken_suite)
    path = tmp_path / "out.json"
    args = ["--suites", "broken,original", "--ops", "get", "--sizes", "21", "--json", str(path)]
    code = main(["bench", "--tiny", *args])
    captured = capsys.readouterr()
    assert code == 1
    error = "broken: one: failed: ZeroDivisionError: a bug in a suite"
    assert f"flowreg bench: step failed, {error}" in captured.err
    assert "Traceback" not in captured.err
    assert "original:" in captured.out  # the step after it ran
    document = json.loads(path.read_text())
    assert document["errors"] == [error]
    assert {r["op"] for r in document["results"]} == {"get"}


def test_hot_sequence_has_the_exact_hit_ratio():
    import random

    ids = make_ids(50, random.Random(1))
    for ratio in (0.0, 0.5, 0.9, 0.99):
        sequence = hot_sequence(ids, 1001, ratio, random.Random(2))
        repeats = sum(a == b for a, b in itertools.pairwise(sequence))
        assert repeats == round(ratio * 1000)
        assert set(sequence) <= set(ids)


def _mutation_population(n, seed):
    import random
    from array import array

    ids = make_ids(2 * n, random.Random(seed))
    ids, spares = ids[:n], array("q", ids[n:])
    return ids, [(k, f"flow {k}") for k in ids], array("q", ids), spares


def test_mutation_batches_are_distinct_stored_ids_and_new_ones():
    ids, pairs, words, spares = _mutation_population(21, 4)
    batches = MutationBatches(pairs, words, spares, 10, seed=3).take(40)
    for gone, new, new_ids, back in batches:
        assert len(set(gone)) == 10
        assert all(any(k is stored for stored in ids) for k in gone)  # the stored objects
        assert back == [(k, f"flow {k}") for k in gone]
        assert all(k is stored for (k, _), stored in zip(back, gone, strict=True))
        # the create stores ids never stored, whose flows carry them (a list finds flows by id)
        assert [k for k, _ in new] == new_ids and set(new_ids) <= set(spares) and not set(new_ids) & set(ids)
        assert all(flow.flow_id is k for k, flow in new)
    again = MutationBatches(pairs, words, spares, 10, seed=3).take(40)
    assert [(g, i, b) for g, _, i, b in again] == [(g, i, b) for g, _, i, b in batches]  # seeded
    for size in (0, 22):
        with pytest.raises(ValueError, match="a batch of"):
            MutationBatches(pairs, words, spares, size, seed=3)
    with pytest.raises(ValueError, match="21 pairs but 20 words and 21 spares"):
        MutationBatches(pairs, words[1:], spares, 10, seed=3)
    fresh = MutationBatches(pairs, words, spares, 10, seed=3, fresh=True).take(40)
    for (copies, _, _, back), (same, *_) in zip(fresh, batches, strict=True):
        assert copies == same
        assert all(a is not b for a, b in zip(copies, same, strict=True))
        assert all(k is stored for (k, _), stored in zip(back, same, strict=True))  # created as stored


@pytest.mark.parametrize("n", [21, 5000])  # a ring of batches; a new draw for every batch
def test_a_mutation_pass_times_new_ids_and_puts_the_structure_back(impl, n):
    from flowreg.benchmark.cases import TIMED_PHASES, mutation_phases
    from flowreg.benchmark.harness import compile_phased_loop

    _, pairs, words, spares = _mutation_population(n, 6)
    store = impl.FlowRegistry(pairs)
    seen = []  # were the ids a create stores there already?
    phases = mutation_phases("del s[k]", "seen.append(k in s); s[k] = f")
    loop = compile_phased_loop(phases, {"s": store, "seen": seen})
    batches = MutationBatches(pairs, words, spares, min(10, n // 2), seed=7).take(30)
    assert len(loop(batches)) == len(phases) and TIMED_PHASES == 2
    assert dict(store) == dict(pairs)  # every pass undid itself
    assert len(seen) == 2 * 30 * min(10, n // 2) and not any(seen)


@pytest.mark.parametrize("n", [1000, 10_000])  # a ring of batches; a new draw for every batch
def test_no_batch_is_deleted_where_it_was_created_together(n):
    # Deleting ids that the same earlier pass created reads a dict's entries in order: at most a
    # few ids of any batch may come from one pass.
    import random

    ids = make_ids(2 * n, random.Random(5))
    ids, spares = ids[:n], ids[n:]
    stream = MutationBatches([(k, None) for k in ids], ids, spares, 100, seed=1)
    created_in: dict[int, int] = {}  # id -> the pass that last created it
    for turn, (gone, *_) in enumerate(stream.take(3 * MutationBatches.RING)):
        passes = Counter(created_in[k] for k in gone if k in created_in)
        assert max(passes.values(), default=0) < 50, (turn, passes.most_common(1))
        created_in.update(dict.fromkeys(gone, turn))
    assert len(created_in) > 0.8 * min(n, 100 * 3 * MutationBatches.RING)  # spread over the ids


def test_each_mutation_stream_of_a_run_is_another_draw():
    from flowreg.benchmark.context import Context, Selection
    from flowreg.benchmark.profiles import PROFILES

    ctx = Context(PROFILES["tiny"], Selection(sizes=(1000,), suites=("original",)))
    first, second = ctx.mutation_batches(1000, "same"), ctx.mutation_batches(1000, "same")
    assert first.take(3) != second.take(3)


def test_a_design_that_fails_to_build_is_reported_not_fatal():
    from flowreg.benchmark.cases import Design
    from flowreg.benchmark.context import Context, Selection
    from flowreg.benchmark.profiles import PROFILES

    def build(population):
        raise OSError("undefined symbol: PyFoo")  # e.g. a peer compiled for another Python

    ctx = Context(PROFILES["tiny"], Selection(sizes=(21,), suites=()))
    names, reason = ctx.prepare(Design("broken", {"get": "s[k]"}, build), 21)
    assert names == {}
    assert reason == "failed: OSError: undefined symbol: PyFoo"


def test_every_design_name_is_a_cli_choice():
    assert {"list", "dict", "dict+hot", "py", "c"} <= set(IMPLS)
    assert {"switch", "get", "create", "delete"} <= set(OPS)
