"""The steps run for one interpreter, each giving a `Verdict`: venv, build, tests, audit.

Every step is a bounded child (`run_bounded`: own process group, killed on timeout) whose
full output goes to a log file next to the interpreter's reports; the verdict carries the
one line that matters and the path of that log.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from teardown_audit.matrix.interpreters import Interpreter
from teardown_audit.matrix.snapshot import copy_files, walk_files
from teardown_audit.proc import RunResult, run_bounded
from teardown_audit.verdict import ERROR, FAIL, Verdict, errored, failed, passed

# What each matrix venv gets before the build; mirrors the Makefile's $(VENV)/.tools without
# ruff (linting is interpreter-independent and done once by `make lint`).
TOOLS = ("setuptools>=64", "wheel", "pytest>=8.3,<9")
TOOLS_STAMP = ".matrix-tools"
BUILD_STAMP = ".matrix-build"
ACTIONLINT_DIR = "matrix-actionlint"
# What a build needs from the checkout (pyproject's readme is part of the metadata).
SOURCES = ("pyproject.toml", "setup.py", "README.md", "impl", "harness")
# Bounds are for a loaded 2-core machine; a debug build runs the suite in about the same time
# (the suite mostly waits), so one bound fits every interpreter.
TIMEOUTS = {"venv": 900.0, "build": 900.0, "tests": 2400.0, "audit": 900.0, "killmatrix": 1800.0}
# The suite's own flags, as in `make test`: a leaked resource is an error, not a warning.
PYTEST_FLAGS = ("-X", "dev", "-W", "error::ResourceWarning", "-m", "pytest", "-q")


@dataclass
class StepContext:
    interp: Interpreter
    repo: str  # the run's snapshot of the checkout (snapshot.py), copied to `src`
    venv: str  # .venv/matrix-<tag>-<source>
    reports: str  # reports/matrix/<tag>-<source>
    timeouts: Mapping[str, float] = field(default_factory=lambda: dict(TIMEOUTS))
    pytest_args: Sequence[str] = ()
    audit_args: Sequence[str] = ()

    @property
    def src(self) -> str:
        """This interpreter's copy of the snapshot: its build directory and the suite's cwd."""
        return os.path.join(self.venv, "src")

    @property
    def python(self) -> str:
        return os.path.join(self.venv, "bin", "python")

    @property
    def venv_root(self) -> str:
        return os.path.dirname(self.venv)

    def log(self, step: str) -> str:
        return os.path.join(self.reports, "logs", f"{step}.log")

    def env(self) -> dict[str, str]:
        """The caller's environment, minus anything that would make the child use another
        interpreter's packages; the venv's bin first on PATH (teardown-audit, python)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        }
        env["PATH"] = os.path.join(self.venv, "bin") + os.pathsep + env.get("PATH", "")
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        # One actionlint venv for every interpreter's suite (tests/test_matrix.py), not one
        # per copy of the checkout.
        env.setdefault("TEARDOWN_ACTIONLINT_VENV", os.path.join(self.venv_root, ACTIONLINT_DIR))
        return env


def run_step(
    ctx: StepContext,
    step: str,
    argv: Sequence[str],
    cwd: Optional[str] = None,
    extra_env: Optional[Mapping[str, str]] = None,
) -> RunResult:
    os.makedirs(os.path.dirname(ctx.log(step)), exist_ok=True)
    env = {**ctx.env(), **(extra_env or {})}
    result = run_bounded(argv, timeout=ctx.timeouts[step], env=env, cwd=cwd)
    with open(ctx.log(step), "a") as f:
        f.write(f"$ {shlex.join(result.argv)}\n# {result.verdict} in {result.elapsed:.1f} s\n")
        f.write(result.stdout + result.stderr + "\n")
    return result


def why(result: RunResult) -> str:
    """One line: the hang diagnosis, the signal, or the last line the child wrote."""
    if result.timed_out:
        diagnosis = result.hang.diagnosis if result.hang is not None else "no diagnosis"
        return f"hang: no result within {result.elapsed:.0f} s — {diagnosis}"
    lines = [ln for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
    return f"{result.verdict}: {lines[-1].strip() if lines else 'no output'}"


def _verdict_for(ctx: StepContext, step: str, result: RunResult, reason: str) -> Verdict:
    evidence = [f"log: {ctx.log(step)}"]
    if result.returncode == 0:
        return passed(step, reason, evidence=evidence)
    return failed(step, why(result), evidence=evidence, repro=shlex.join(result.argv))


def venv_step(ctx: StepContext) -> Verdict:
    """A venv of the interpreter with the build and test tools; reused when already made."""
    start = time.monotonic()
    stamp = os.path.join(ctx.venv, TOOLS_STAMP)
    if _read(stamp) == " ".join(TOOLS) and os.access(ctx.python, os.X_OK):
        return passed("venv", f"reused {ctx.venv}", elapsed=time.monotonic() - start)
    if os.path.isdir(ctx.venv):
        shutil.rmtree(ctx.venv)  # a half-made venv from an interrupted run
    made = run_step(ctx, "venv", [ctx.interp.path, "-m", "venv", ctx.venv])
    if made.returncode == 0:
        made = run_step(ctx, "venv", [ctx.python, "-m", "pip", "install", "-q", *TOOLS])
    verdict = _verdict_for(ctx, "venv", made, f"made {ctx.venv} with {', '.join(TOOLS)}")
    if verdict.ok:
        with open(stamp, "w") as f:
            f.write(" ".join(TOOLS))
    verdict.elapsed = time.monotonic() - start
    return verdict


def build_key(ctx: StepContext, files: Sequence[str]) -> str:
    """What the installed build depends on: the sources' names and content, the compiler
    flags from the environment, the interpreter. Equal keys mean an identical build."""
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0")
        with open(os.path.join(ctx.repo, rel), "rb") as f:
            digest.update(f.read() + b"\0")
    digest.update(os.environ.get("TEARDOWN_REF_CFLAGS", "").encode() + b"\0")
    digest.update(ctx.interp.executable.encode())
    return digest.hexdigest()


def build_step(ctx: StepContext) -> Verdict:
    """Build teardown_ref with -Werror from a private copy of the sources (its own build
    directory: concurrent builds of other interpreters, or edits in the checkout, cannot mix
    into it) and install it non-editable, as `pip install .` does for a user. Skipped when
    the installed build has the same `build_key` (reruns cost seconds, not a compile)."""
    start = time.monotonic()
    stamp = os.path.join(ctx.venv, BUILD_STAMP)
    files = walk_files(ctx.repo)
    # The suite runs in this copy too (tests of the same snapshot as the build).
    if os.path.isdir(ctx.src):
        shutil.rmtree(ctx.src)
    copy_files(ctx.repo, ctx.src, files)
    key = build_key(ctx, [f for f in files if f.split(os.sep)[0] in SOURCES])
    if _read(stamp) == key:
        return passed("build", f"reused: sources and flags unchanged ({key[:12]})")
    if os.path.exists(stamp):
        os.unlink(stamp)  # from here on the installed build no longer matches the sources
    src = ctx.src
    pip = [ctx.python, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps"]
    werror = {"TEARDOWN_REF_WERROR": "1"}
    result = run_step(ctx, "build", [*pip, "--force-reinstall", src], extra_env=werror)
    if result.returncode == 0:
        # Installed is not enough: it must import, from the venv and not from the checkout.
        check = "import teardown_ref, teardown_audit; print(teardown_ref.__file__)"
        result = run_step(ctx, "build", [ctx.python, "-I", "-c", check])
    verdict = _verdict_for(ctx, "build", result, "teardown_ref built with -Werror and imported")
    if verdict.ok:
        with open(stamp, "w") as f:
            f.write(key)
    verdict.elapsed = time.monotonic() - start
    return verdict


def tests_step(ctx: StepContext) -> Verdict:
    start = time.monotonic()
    junit = os.path.join(ctx.reports, "pytest.xml")
    argv = [ctx.python, *PYTEST_FLAGS, f"--junitxml={junit}", *ctx.pytest_args]
    result = run_step(ctx, "tests", argv, cwd=ctx.src)
    summary = _pytest_summary(result.stdout)
    evidence = [f"log: {ctx.log('tests')}", f"junit: {junit}"]
    if result.returncode == 0:
        verdict = passed("tests", summary or "pytest passed", evidence=evidence)
    elif result.timed_out or result.returncode is None or result.returncode < 0:
        verdict = failed("tests", why(result), evidence=evidence, repro=shlex.join(argv))
    else:
        # pytest: 1 tests failed, 5 no tests ran (as bad as a failure for a gate), 2-4 usage.
        first = _failed_tests(junit)
        reason = summary or why(result)
        if result.returncode == 5:
            reason = "no tests ran: " + reason
        if first:
            reason += f" (first: {first[0]})"
        verdict = failed("tests", reason, evidence=evidence + first, repro=shlex.join(argv))
    verdict.elapsed = time.monotonic() - start
    return verdict


def audit_step(ctx: StepContext) -> list[Verdict]:
    """`teardown-audit audit` in the venv; each of its checks becomes a row of the matrix."""
    start = time.monotonic()
    report = os.path.join(ctx.reports, "audit.json")
    if os.path.exists(report):
        os.unlink(report)  # a stale report must not pass for this run's
    argv = [
        os.path.join(ctx.venv, "bin", "teardown-audit"),
        "audit",
        "--json",
        report,
        "--junit",
        os.path.join(ctx.reports, "audit.xml"),
        *ctx.audit_args,
    ]
    result = run_step(ctx, "audit", argv)
    try:
        with open(report) as f:
            verdicts = [Verdict.from_dict(v) for v in json.load(f)["verdicts"]]
    except (OSError, ValueError, KeyError, TypeError):
        verdicts = []
    if not verdicts or result.returncode not in (0, 1):
        reason = "no verdicts: " + why(result)
        log = [f"log: {ctx.log('audit')}"]
        elapsed = time.monotonic() - start
        return [errored("audit", reason, evidence=log, repro=shlex.join(argv), elapsed=elapsed)]
    if result.returncode == 1 and all(v.ok for v in verdicts):
        # The exit status and the report disagree: trust neither.
        reason = "audit exited 1 but reported no failing check"
        verdicts.append(errored("audit", reason, evidence=[f"log: {ctx.log('audit')}"]))
    for v in verdicts:
        if v.status in (FAIL, ERROR):
            v.evidence = [f"log: {ctx.log('audit')}", *v.evidence]
    return verdicts


def _pytest_summary(stdout: str) -> Optional[str]:
    """pytest's closing line, e.g. '159 passed in 107.78s (0:01:47)'."""
    for line in reversed(stdout.splitlines()):
        text = line.strip().strip("=").strip()
        if " in " in text and any(w in text for w in ("passed", "failed", "error", "no tests")):
            return text
    return None


def _failed_tests(junit: str) -> list[str]:
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            out.append(f"{case.get('classname')}::{case.get('name')}")
    return out[:10]


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
