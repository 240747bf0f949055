"""The sanitizer tools: how to build for each, and the environment a run under each needs.

TSan and ASan instrument only the extension: CPython itself is the ordinary release build, so
the sanitizer runtime must be the first library loaded (LD_PRELOAD of gcc's runtime; without it
TSan fails with "cannot allocate memory in static TLS block" and ASan refuses to start).
valgrind needs no rebuild, but gets `-g -O1` objects so that its stacks have file:line.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from teardown_audit.proc import run_bounded

GCC_TIMEOUT = 60.0
# Exit status of a TSan process that reported something (TSan's default; set explicitly so a
# report is never mistaken for a test failure or the other way round).
TSAN_EXITCODE = 66

# Every build: debug info for file:line frames, frame pointers for full stacks, -O1 so that the
# instrumented code stays close to the source without being as slow as -O0.
_DEBUG = ("-g", "-O1", "-fno-omit-frame-pointer")


@dataclass(frozen=True)
class Tool:
    name: str
    cflags: tuple[str, ...]  # compile and link flags of the instrumented build
    runtime: Optional[str]  # gcc runtime to LD_PRELOAD (None: not an instrumenting tool)
    marker: Optional[bytes]  # a string the instrumented extension's ELF must contain
    valgrind_tool: Optional[str] = None  # memcheck | helgrind

    @property
    def instruments(self) -> bool:
        return self.runtime is not None


TOOLS: dict[str, Tool] = {
    "tsan": Tool("tsan", ("-fsanitize=thread", *_DEBUG), "libtsan.so.2", b"libtsan.so"),
    # UBSan rides along with ASan: one build, one run. -fno-sanitize-recover makes a UB report
    # fatal like an ASan one, so the first is never buried under later noise.
    "asan": Tool(
        "asan",
        ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", *_DEBUG),
        "libasan.so.8",
        b"libasan.so",
    ),
    "valgrind": Tool("valgrind", _DEBUG, None, None, "memcheck"),
    "helgrind": Tool("helgrind", _DEBUG, None, None, "helgrind"),
}


class ToolUnavailable(Exception):
    """The tool cannot run on this machine (runtime or binary missing); one line."""


def get_tool(name: str) -> Tool:
    try:
        return TOOLS[name]
    except KeyError:
        raise ValueError(f"unknown sanitizer tool {name!r} (one of {', '.join(TOOLS)})") from None


def runtime_path(tool: Tool) -> str:
    """The absolute path of the tool's gcc runtime (what LD_PRELOAD must name)."""
    assert tool.runtime is not None
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ToolUnavailable(f"{tool.name}: gcc not found (needed to locate {tool.runtime})")
    result = run_bounded(
        [gcc, f"-print-file-name={tool.runtime}"], timeout=GCC_TIMEOUT, capture_stacks=False
    )
    path = os.path.realpath(result.stdout.strip())
    # gcc prints the bare name back when it does not know the file.
    if (
        result.returncode != 0
        or not os.path.isabs(result.stdout.strip())
        or not os.path.exists(path)
    ):
        raise ToolUnavailable(
            f"{tool.name}: gcc has no {tool.runtime} (Debian: apt-get install "
            f"{'libtsan2' if tool.name == 'tsan' else 'libasan8 libubsan1'})"
        )
    return path


def valgrind_path() -> str:
    path = shutil.which("valgrind")
    if path is None:
        raise ToolUnavailable("valgrind not found (Debian: apt-get install valgrind)")
    return path


def _options(**kv: object) -> str:
    return ":".join(f"{k}={v}" for k, v in kv.items())


def run_env(
    tool: Tool, log_dir: str, suppressions: Optional[str], base: Mapping[str, str]
) -> dict[str, str]:
    """The environment of a process (and all its children) run under `tool`."""
    env = dict(base)
    if tool.runtime is not None:
        preload = [runtime_path(tool)] + [p for p in env.get("LD_PRELOAD", "").split() if p]
        env["LD_PRELOAD"] = " ".join(preload)
    if tool.name == "tsan":
        opts = _options(
            log_path=os.path.join(log_dir, "tsan"),  # one file per process: tsan.<pid>
            halt_on_error=0,  # every report of the run, not only the first
            exitcode=TSAN_EXITCODE,
            second_deadlock_stack=1,
            history_size=4,  # deeper access history: fewer "failed to restore the stack"
            # Thread leaks are judged by the harness, exactly and while the interpreter is
            # alive (stats(), /proc/self/task). TSan's own check runs at process exit, where the
            # protocol's exit regime deliberately joins nothing: a worker that finished while
            # its joiner was between `joining = true` and pthread_join when exit() ran is
            # reported as "thread leak" (measured: 2-7 per ref-test run). Races stay reported.
            report_thread_leaks=0,
        )
        if suppressions:
            opts += ":" + _options(suppressions=os.path.abspath(suppressions))
        env["TSAN_OPTIONS"] = opts
    elif tool.name == "asan":
        # detect_leaks=1 with leak_check_at_exit=0: leak checking is on, but runs only where the
        # workload asks for it (__lsan_do_recoverable_leak_check, after the drops, interpreter
        # alive: every live object is then reachable from the interpreter). At exit CPython
        # deliberately frees little and the protocol's exit regime leaks references on purpose,
        # so an at-exit check would report hundreds of blocks that are not leaks.
        env["ASAN_OPTIONS"] = _options(
            log_path=os.path.join(log_dir, "asan"),
            detect_leaks=1,
            leak_check_at_exit=0,
            abort_on_error=0,
            print_suppressions=0,
        )
        if suppressions:
            env["LSAN_OPTIONS"] = _options(suppressions=os.path.abspath(suppressions))
        # log_path is honoured only if libubsan is initialised early; see run.py for stderr.
        env["UBSAN_OPTIONS"] = _options(
            log_path=os.path.join(log_dir, "ubsan"), print_stacktrace=1, halt_on_error=1
        )
    if tool.name in ("asan", "valgrind", "helgrind"):
        # Python objects through malloc: ASan/memcheck see every object's lifetime, and LSan can
        # scan them (pymalloc arenas are mmap'd, so pointers kept only there would look leaked).
        env["PYTHONMALLOC"] = "malloc"
    return env


def valgrind_argv(
    tool: Tool, log_dir: str, suppressions: Optional[str], leaks: bool = True
) -> list[str]:
    """The valgrind prefix: XML per process (parsed), text log next to it (for humans)."""
    assert tool.valgrind_tool is not None
    argv = [
        valgrind_path(),
        f"--tool={tool.valgrind_tool}",
        "--xml=yes",
        f"--xml-file={os.path.join(log_dir, 'vg.%p.xml')}",
        f"--log-file={os.path.join(log_dir, 'text', 'vg.%p.log')}",
        "--fullpath-after=",  # absolute source paths: attribution and quoting need them
        "--num-callers=40",
        "--child-silent-after-fork=yes",
        "--error-limit=no",
    ]
    if tool.valgrind_tool == "memcheck" and not leaks:
        argv.append("--leak-check=no")  # memory errors only (see specs/sanitizers.md, 3.13)
    elif tool.valgrind_tool == "memcheck":
        argv += [
            "--leak-check=full",
            "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite",
        ]
    if suppressions:
        argv.append(f"--suppressions={os.path.abspath(suppressions)}")
    return argv
