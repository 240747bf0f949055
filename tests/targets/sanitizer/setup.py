"""Build broken_memory (test-only): a project the sanitizer builder instruments like a user's."""

from setuptools import Extension, setup

setup(
    name="broken-memory",
    version="0",
    ext_modules=[
        Extension(
            "broken_memory",
            sources=["broken_memory.c"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Werror"],
        )
    ],
)
