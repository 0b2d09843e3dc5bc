"""Builds flowreg's native core; everything else is in pyproject.toml.

FLOWREG_NO_EXTENSIONS=1 (or a non-CPython interpreter) builds the pure-Python
package.  Without a working C compiler the build falls back to it as well,
with a message saying so, unless FLOWREG_REQUIRE_EXTENSION=1: then a failed
compile fails the build (CI and the wheels must contain the native core).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = bool(os.environ.get("FLOWREG_NO_EXTENSIONS")) or sys.implementation.name != "cpython"
REQUIRE_EXTENSION = bool(os.environ.get("FLOWREG_REQUIRE_EXTENSION"))
DEBUG = bool(os.environ.get("FLOWREG_DEBUG_BUILD"))
FALLBACK_NOTE = (
    "flowreg: could not compile the native core ({}); installing the pure-Python "
    "implementation, which has the same API but is slower."
)


class optional_build_ext(build_ext):
    """Turn a failed compile into a pure-Python install rather than a failed one.

    A missing compiler and a compile error look alike from here, so with
    FLOWREG_REQUIRE_EXTENSION set both fail the build instead.
    """

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all (or, when required, a failed compile)
            if REQUIRE_EXTENSION:
                print("flowreg: FLOWREG_REQUIRE_EXTENSION is set, so no fallback", file=sys.stderr)
                raise
            print(FALLBACK_NOTE.format(exc), file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # the compiler failed
            if REQUIRE_EXTENSION:
                raise
            print(FALLBACK_NOTE.format(exc), file=sys.stderr)


def extensions():
    if NO_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    if sys.platform == "win32":
        cflags = ["/O2"]
    else:
        # -g0: Python's own CFLAGS ask for debug info, 1.4 MB of a 1.6 MB module
        cflags = ["-O0", "-g3", "-UNDEBUG"] if DEBUG else ["-O3", "-g0"]
    import Cython

    ext = Extension(
        "flowreg._registry",
        ["flowreg/_registry.pyx"],
        include_dirs=["flowreg"],
        depends=["flowreg/_ids.h", "flowreg/_rwlock.h"],
        extra_compile_args=cflags,
        # reported by `flowreg info`
        define_macros=[
            ("FLOWREG_CYTHON_VERSION", f'"{Cython.__version__}"'),
            ("FLOWREG_CFLAGS", '"{}"'.format(" ".join(cflags))),
        ],
    )
    return cythonize([ext], language_level=3, annotate=DEBUG)


setup(ext_modules=extensions(), cmdclass={"build_ext": optional_build_ext})
