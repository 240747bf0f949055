"""Parsing sanitizer output into reports: TSan, ASan, LSan and UBSan logs, valgrind XML.

A run writes one log per process (TSan/ASan `log_path=DIR/NAME` gives `NAME.<pid>`; valgrind
`--xml-file=DIR/vg.%p.xml`), so reports from grandchildren (exit scripts, audit children) are
never lost in a captured stderr. Parsing is pure text → `Report`; judging is in `judge.py`.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Frame:
    function: str
    file: Optional[str]  # source path when the object has debug info (may be relative to the
    # build's directory: setuptools compiles `impl/x.c`; judge.py resolves it against `ours`)
    line: Optional[int]
    obj: Optional[str]  # the shared object (or executable) the frame is in

    def where(self) -> str:
        if self.file and self.line:
            return f"{self.function} {self.file}:{self.line}"
        return f"{self.function} ({self.obj or '?'})"


@dataclass
class Section:
    """One stack of a report: the access/allocation it describes and its frames."""

    title: str  # e.g. "Write of size 1 at 0x... by thread T3", "freed by thread T0 here:"
    frames: list[Frame] = field(default_factory=list)


@dataclass
class Report:
    tool: str  # tsan | asan | lsan | ubsan | memcheck | helgrind
    kind: str  # "data race", "heap-use-after-free", "Direct leak", "InvalidRead", ...
    headline: str  # the report's first line, verbatim (trimmed)
    sections: list[Section] = field(default_factory=list)
    log: str = ""  # the file the report came from
    pid: Optional[int] = None

    @property
    def frames(self) -> list[Frame]:
        return [f for s in self.sections for f in s.frames]


# `#3 0x7f.. in func /path/file.c:12:5 (obj+0x1)` (ASan/UBSan/LSan) or
# `#3 func /path/file.c:12 (obj+0x1)` (TSan). The file part may be missing: `func (obj+0x1)`.
_FRAME = re.compile(
    r"^\s*#\d+\s+(?:0x[0-9a-f]+\s+)?(?:in\s+)?(?P<func>.+?)"
    r"(?:\s+(?P<file>[^\s:()]+\.\w+):(?P<line>\d+)(?::\d+)?)?"
    r"(?:\s+\((?P<obj>[^()]+?)\+0x[0-9a-f]+\))?\s*$"
)
# A frame with no function name at all: `#4 0x5555 (/usr/bin/python3.11+0x1234)`.
_BARE_FRAME = re.compile(r"^\s*#\d+\s+0x[0-9a-f]+\s+\((?P<obj>[^()]+?)\+0x[0-9a-f]+\)\s*$")
_PID_LOG = re.compile(r"\.(\d+)$")

_TSAN_HEAD = re.compile(r"^WARNING: ThreadSanitizer: (?P<kind>[^(]+?)\s*(?:\(pid=\d+\))?$")
_ASAN_HEAD = re.compile(r"^==\d+==ERROR: AddressSanitizer: (?P<kind>[\w-]+)")
_LSAN_HEAD = re.compile(r"^(?P<kind>Direct|Indirect) leak of (?P<bytes>\d+) byte")
_UBSAN_HEAD = re.compile(r"^(?P<file>/?[^\s:]+):(?P<line>\d+):\d+: runtime error: (?P<what>.+)$")
_OTHER_ERR = re.compile(r"^==\d+==ERROR: (?P<tool>\w+Sanitizer): (?P<kind>.+)$")


def parse_frame(line: str) -> Optional[Frame]:
    m = _BARE_FRAME.match(line)
    if m:
        return Frame("??", None, None, m.group("obj"))
    m = _FRAME.match(line)
    if not m:
        return None
    return Frame(
        m.group("func").strip(),
        m.group("file"),
        int(m.group("line")) if m.group("line") else None,
        m.group("obj"),
    )


def parse_sanitizer_text(text: str, log: str = "") -> list[Report]:
    """Reports in a TSan/ASan/LSan/UBSan log (several kinds may share one process's log)."""
    pid_m = _PID_LOG.search(log)
    pid = int(pid_m.group(1)) if pid_m else None
    reports: list[Report] = []
    current: Optional[Report] = None
    section: Optional[Section] = None
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        head = _match_head(stripped)
        if head is not None:
            current = Report(head[0], head[1], stripped, [], log, pid)
            section = Section(stripped)
            current.sections.append(section)
            reports.append(current)
            continue
        if current is None:
            continue
        if stripped.startswith("SUMMARY:") or stripped.startswith("=" * 18):
            current, section = None, None  # the end of a report (each LSan record has a head)
            continue
        frame = parse_frame(line)
        if frame is not None and section is not None:
            section.frames.append(frame)
        elif stripped and not stripped.startswith("#") and section is not None:
            # A new stack: "Previous read of ... by thread T1:", "freed by thread T0 here:"...
            if stripped.endswith(":") or section.frames:
                section = Section(stripped)
                current.sections.append(section)
    return [r for r in reports if r.frames or r.tool == "ubsan"]


def _match_head(line: str) -> Optional[tuple[str, str]]:
    m = _TSAN_HEAD.match(line)
    if m:
        return "tsan", m.group("kind").strip()
    m = _ASAN_HEAD.match(line)
    if m:
        return "asan", m.group("kind")
    m = _LSAN_HEAD.match(line)
    if m:
        return "lsan", f"{m.group('kind')} leak"
    m = _UBSAN_HEAD.match(line)
    if m:
        return "ubsan", m.group("what").split(":")[0]
    m = _OTHER_ERR.match(line)
    if m and "LeakSanitizer" not in m.group("tool"):  # LSan's header precedes its records
        return m.group("tool").lower(), m.group("kind")
    return None


def parse_valgrind_xml(text: str, log: str = "") -> list[Report]:
    """Errors in one valgrind `--xml=yes` file (memcheck or helgrind)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        # A process killed mid-run leaves the XML unterminated: close it and retry once.
        try:
            root = ET.fromstring(text + "</valgrindoutput>")
        except ET.ParseError as exc:
            raise ValueError(f"{log or 'valgrind xml'}: not valgrind XML ({exc})") from None
    tool = (root.findtext("tool") or "valgrind").strip()
    pid_text = root.findtext("pid")
    pid = int(pid_text) if pid_text and pid_text.isdigit() else None
    reports = []
    for err in root.iter("error"):
        kind = (err.findtext("kind") or "?").strip()
        what = err.findtext("what") or err.findtext("xwhat/text") or kind
        report = Report(tool, kind, " ".join(what.split()), [], log, pid)
        titles = [report.headline] + [
            " ".join((a.findtext("text") or "").split()) for a in err.findall("auxwhat")
        ]
        for i, stack in enumerate(err.findall("stack")):
            title = titles[i] if i < len(titles) else "stack"
            report.sections.append(Section(title, [_xml_frame(f) for f in stack.findall("frame")]))
        reports.append(report)
    return reports


def _xml_frame(frame: ET.Element) -> Frame:
    directory, name = frame.findtext("dir"), frame.findtext("file")
    line = frame.findtext("line")
    path = os.path.join(directory, name) if directory and name else name
    return Frame(
        frame.findtext("fn") or "??",
        path,
        int(line) if line and line.isdigit() else None,
        frame.findtext("obj"),
    )


def parse_log_file(path: str) -> list[Report]:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith(".xml"):
        return parse_valgrind_xml(text, path)
    return parse_sanitizer_text(text, path)


def parse_log_dir(directory: str) -> list[Report]:
    """Every report in every log of a run, in file-name order (stable across runs)."""
    reports: list[Report] = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            reports.extend(parse_log_file(path))
    return reports
