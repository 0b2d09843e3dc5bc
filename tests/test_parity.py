"""The two implementations expose the same API; the stub matches the compiled module, whose classes
own their methods."""

import collections.abc
import importlib
import inspect
import shutil
import subprocess
import sys
import types

import pytest

import flowreg

CLASSES = ["FlowRegistry", "PairFlowRegistry"]


def public_names(cls):
    return {name for name in dir(cls) if not name.startswith("_")}


def bare(signature):
    """The signature without annotations (the fallback is annotated inline, the core in its stub)."""
    empty = inspect.Parameter.empty
    return signature.replace(
        parameters=[p.replace(annotation=empty) for p in signature.parameters.values()],
        return_annotation=empty,
    )


@pytest.mark.parametrize("name", CLASSES)
def test_same_public_names(both, name):
    c, py = (getattr(both[impl], name) for impl in ("c", "py"))
    assert public_names(c) == public_names(py)
    assert public_names(c) >= {"create_flow", "switch_flow", "delete_flow", "get_many", "stats"}


@pytest.mark.parametrize("name", CLASSES)
def test_same_signatures_and_docstrings(both, name):
    c, py = (getattr(both[impl], name)() for impl in ("c", "py"))
    for method in sorted(public_names(type(c))):
        c_method, py_method = getattr(c, method), getattr(py, method)
        assert bare(inspect.signature(c_method)) == bare(inspect.signature(py_method)), method
        assert inspect.getdoc(c_method) == inspect.getdoc(py_method), method
        assert inspect.getdoc(c_method), f"{method} has no docstring"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10's inspect reads the fallback's __new__")
@pytest.mark.parametrize("name", CLASSES)
def test_same_constructor_signature(both, name):
    signatures = {impl: bare(inspect.signature(getattr(both[impl], name))) for impl in ("c", "py")}
    assert signatures["c"] == signatures["py"]
    params = signatures["c"].parameters
    assert [(p.name, p.kind.name, p.default) for p in params.values()] == [
        ("items", "POSITIONAL_ONLY", ()),
        ("capacity", "KEYWORD_ONLY", 0),
    ]


def test_mapping_protocols(Registry, PairRegistry):
    for cls in (Registry, PairRegistry):
        assert issubclass(cls, collections.abc.MutableMapping)
        assert isinstance(cls[object], types.GenericAlias)
        assert cls.__hash__ is None


def test_exceptions_are_shared(both):
    for module in both.values():
        assert module.FlowExists is flowreg.FlowExists


@pytest.mark.c_ext
@pytest.mark.parametrize("name", CLASSES)
def test_native_methods_belong_to_the_concrete_class(name):
    # CPython specialises a call of a C method only on the exact type owning its descriptor:
    # FlowRegistry's methods written on _BaseRegistry would all take the slow generic call.
    cls = getattr(importlib.import_module("flowreg._registry"), name)
    methods = {
        attr
        for attr, value in vars(cls.__base__).items()
        if type(value) is types.MethodDescriptorType and not attr.startswith("__")
    }
    assert methods >= {"get", "switch_flow", "create_flow", "delete_flow", "setdefault", "get_or_create"}
    for verb in methods:
        assert cls.__dict__[verb].__objclass__ is cls
        assert cls.__dict__[verb].__doc__ == getattr(cls.__base__, verb).__doc__
    key = 7 if name == "FlowRegistry" else (7, 7)
    assert cls.__dict__["switch_flow"](cls({key: "seven"}), key) == "seven"


@pytest.mark.c_ext
@pytest.mark.thread_unsafe(reason="runs mypy's stubtest in a subprocess: seconds each, nothing shared")
def test_stub_matches_compiled_module(tmp_path):
    pytest.importorskip("mypy")
    importlib.import_module("flowreg._registry")  # a missing build fails here, not in stubtest
    result = subprocess.run(  # away from the source tree, whose flowreg/ has no compiled core
        [sys.executable, "-m", "mypy.stubtest", "flowreg._registry"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stub_is_shipped():
    stub = inspect.getfile(flowreg).replace("__init__.py", "_registry.pyi")
    assert shutil.os.path.exists(stub)


# Calls every method of a registry class and of its iterator unbound, with another object as self.
CALL_ON_ANOTHER_OBJECT = """
import sys
import flowreg
cls = getattr(flowreg.implementations()[sys.argv[1]], sys.argv[2])
for owner in (cls, type(iter(cls()))):
    for attr in sorted(dir(owner)):
        method = getattr(owner, attr)
        if not callable(method) or isinstance(method, type):
            continue
        for args in ((), (1,), ({},), (1, 1)):
            try:
                method(object(), *args)
                outcome = "returned"
            except Exception as error:
                outcome = type(error).__name__
            if (attr, args) in [("clear", ()), ("update", ({},)), ("stats", ())]:
                print(attr, outcome)
"""


@pytest.mark.parametrize("name", CLASSES)
def test_a_method_given_another_object_as_self_raises(impl, name, tmp_path):
    """`FlowRegistry.clear(object())` raises; natively, such a call read the object as a registry
    (a crash, a hang or a write past the object for several methods)."""
    result = subprocess.run(  # (a crash must not take the test run with it)
        [sys.executable, "-c", CALL_ON_ANOTHER_OBJECT, impl.name, name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # away from the source tree, whose flowreg/ has no compiled core
    )
    assert result.returncode == 0, result.stderr[-2000:]
    error = "TypeError" if impl.name == "c" else "AttributeError"  # (the fallback's are Python's)
    assert result.stdout.split() == ["clear", error, "stats", error, "update", error]
