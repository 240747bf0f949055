"""Build the teardown_ref C extension; everything else is declared in pyproject.toml."""

import os
from glob import glob

from setuptools import Extension, setup

# -Werror is on for our own builds (Makefile, CI); a user's compiler may warn differently.
werror = ["-Werror"] if os.environ.get("TEARDOWN_REF_WERROR") == "1" else []
extra = os.environ.get("TEARDOWN_REF_CFLAGS", "").split()

setup(
    ext_modules=[
        Extension(
            "teardown_ref",
            sources=sorted(glob("impl/*.c")),
            include_dirs=["impl"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", *werror, *extra],
            extra_link_args=extra,
        )
    ],
)
