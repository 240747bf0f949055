"""Probes: thread list/count from /proc/self/task, classified fd snapshots and readable diffs."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from teardown_audit.probes import (
    classify_fd_target,
    fd_diff,
    fd_snapshot,
    list_threads,
    live_threads,
    summarize_growth,
    thread_count,
)


@pytest.mark.parametrize(
    ("link", "kind"),
    [
        ("anon_inode:[eventpoll]", "eventpoll"),
        ("socket:[12345]", "socket"),
        ("pipe:[999]", "pipe"),
        ("anon_inode:[eventfd]", "eventfd"),
        ("/tmp/some file.log", "file"),
        ("anon_inode:[timerfd]", "other"),
        ("/dev/null", "file"),
    ],
)
def test_classify_fd_target(link, kind):
    assert classify_fd_target(link) == kind


def test_thread_list_has_names_and_states_and_sees_a_new_thread():
    me = threading.get_native_id()
    assert any(t.tid == me and t.state in "RS" for t in list_threads())
    before = thread_count()
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert thread_count() == before + 1
        assert worker.native_id in {t.tid for t in live_threads()}
    finally:
        stop.set()
        worker.join()


def test_fd_diff_names_an_unclosed_asyncio_loop_per_cycle():
    before = fd_snapshot()
    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        diff = fd_diff(before, fd_snapshot(), cycles=2)
        assert diff.by_kind == {"eventpoll": 2, "socket": 4}
        assert (
            diff.summary() == "+3 fds per cycle: 1 eventpoll, 2 socket — an asyncio loop not closed"
        )
    finally:
        for loop in loops:
            loop.close()
    assert fd_diff(before, fd_snapshot()).summary() == "no fd change"


def test_fd_diff_names_pipes_and_files(tmp_path):
    before = fd_snapshot()
    r, w = os.pipe()
    path = tmp_path / "held.txt"
    f = open(path, "w")
    try:
        diff = fd_diff(before, fd_snapshot())
        assert diff.by_kind == {"pipe": 2, "file": 1}
        summary = diff.summary()
        assert summary.startswith("+3 fds: 2 pipe, 1 file — ")
        assert "a pipe not closed" in summary and str(path) in summary
        assert {fd.kind for fd in diff.opened} == {"pipe", "file"}
    finally:
        os.close(r)
        os.close(w)
        f.close()


@pytest.mark.skipif(not hasattr(os, "eventfd"), reason="os.eventfd needs Python 3.10+")
def test_fd_diff_names_an_eventfd():
    before = fd_snapshot()
    fd = os.eventfd(0)
    try:
        assert fd_diff(before, fd_snapshot()).summary() == (
            "+1 fds: 1 eventfd — an eventfd (worker wake-up) not closed"
        )
    finally:
        os.close(fd)


def test_summary_without_even_division_reports_totals():
    assert summarize_growth({"socket": 3}, cycles=2) == "+3 fds over 2 cycles: 3 socket"
    assert summarize_growth({}, cycles=5) == "no fd change"
