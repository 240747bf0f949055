"""teardown_ref's bashkit-compatible API: commands, pipes, exit codes, errors, bad arguments."""

from __future__ import annotations

import asyncio
import contextvars
import math

import pytest
import teardown_ref
from ref_support import assert_all_released, async_echo, echo_params

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@pytest.fixture
def tool():
    tool = teardown_ref.ScriptedTool("api", timeout_seconds=10)
    tool.add_tool("sync", "plain callback", echo_params)
    tool.add_tool("aio", "async callback", async_echo)
    return tool


@pytest.mark.parametrize("name", ["sync", "aio"])
def test_params_from_flags(tool, name):
    result = tool.execute_sync(f"{name} --city Paris --units=metric --verbose")
    assert result.exit_code == 0 and result.success and result.error is None
    expected = "[('city', 'Paris'), ('units', 'metric'), ('verbose', True)]"
    assert result.stdout == f"params={expected} stdin=None\n"
    assert result.stderr == ""


def test_quoting_like_a_posix_shell(tool):
    result = tool.execute_sync("""sync --a 'x  y' --b "q\\"z" --c w\\ v --d ''""")
    assert result.stdout == (
        "params=[('a', 'x  y'), ('b', 'q\"z'), ('c', 'w v'), ('d', '')] stdin=None\n"
    )


def test_pipe_feeds_stdout_into_stdin(tool):
    result = tool.execute_sync("echo hello world | aio --k v | cat")
    assert result.exit_code == 0
    assert result.stdout == "params=[('k', 'v')] stdin='hello world\\n'\n"


def test_sequence_runs_every_pipeline_and_keeps_last_status(tool):
    result = tool.execute_sync("false; echo one\necho two; true")
    assert (result.exit_code, result.stdout) == (0, "one\ntwo\n")


def test_unknown_command_is_127(tool):
    result = tool.execute_sync("nope --x 1")
    assert result.exit_code == 127
    assert result.stderr == "nope: command not found\n"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo 'open", "unterminated single quote"),
        ('echo "open', "unterminated double quote"),
        ("echo a | | b", "missing command before '|'"),
        ("echo a |", "missing command after '|'"),
        ("; echo a", "unexpected ';'"),
        ("echo a > file", "unsupported operator '>'"),
        ("echo a || echo b", "unsupported operator '||'"),
    ],
)
def test_syntax_errors_are_exit_2(tool, script, message):
    result = tool.execute_sync(script)
    assert result.exit_code == 2, result
    assert result.stderr == f"syntax error: {message}\n"


def test_unexpected_positional_argument_is_exit_2(tool):
    result = tool.execute_sync("sync stray")
    assert result.exit_code == 2
    assert result.stderr == "sync: unexpected argument 'stray'\n"


def test_callback_exception_is_exit_1_with_type_and_message():
    tool = teardown_ref.ScriptedTool("errors")

    def boom(params, stdin):
        raise KeyError("missing thing")

    async def aboom(params, stdin):
        raise ValueError("bad value")

    tool.add_tool("boom", "", boom)
    tool.add_tool("aboom", "", aboom)
    assert tool.execute_sync("boom").stderr == "boom: KeyError: 'missing thing'\n"
    result = tool.execute_sync("aboom")
    assert (result.exit_code, result.stderr) == (1, "aboom: ValueError: bad value\n")


@pytest.mark.parametrize("value", [42, None, b"bytes"])
def test_non_str_return_is_exit_1(value):
    tool = teardown_ref.ScriptedTool("types")
    tool.add_tool("ret", "", lambda params, stdin: value)
    result = tool.execute_sync("ret")
    assert result.exit_code == 1
    assert result.stderr == f"ret: callback returned {type(value).__name__}, expected str\n"


def test_callback_accepted_as_keyword_and_tool_wins_over_builtin():
    tool = teardown_ref.ScriptedTool("kw")
    tool.add_tool("echo", "shadows the builtin", callback=lambda params, stdin: "mine\n")
    assert tool.execute_sync("echo").stdout == "mine\n"
    assert tool.name == "kw"
    assert "ScriptedTool 'kw' with 1 tools" in repr(tool)


def test_bash_custom_builtins_get_name_argv_stdin():
    seen = []

    def record(ctx):
        seen.append((ctx.name, ctx.argv, ctx.stdin))
        return f"{len(ctx.argv)}\n"

    async def arecord(ctx):
        await asyncio.sleep(0)
        return record(ctx)

    bash = teardown_ref.Bash(custom_builtins={"rec": record, "arec": arecord})
    result = bash.execute_sync("rec a 'b c'; echo x | arec --flag")
    assert (result.exit_code, result.stdout) == (0, "2\n1\n")
    assert seen == [("rec", ["a", "b c"], None), ("arec", ["--flag"], "x\n")]
    assert bash.name is None


def test_execute_async_runs_on_the_callers_loop():
    loops = []

    async def where(params, stdin):
        loops.append(asyncio.get_running_loop())
        return "here\n"

    tool = teardown_ref.ScriptedTool("aio")
    tool.add_tool("where", "", where)

    async def main():
        result = await tool.execute("where | cat")
        return result, asyncio.get_running_loop()

    result, caller_loop = asyncio.run(main())
    assert (result.exit_code, result.stdout) == (0, "here\n")
    assert loops == [caller_loop]


def test_execute_async_without_running_loop_raises():
    tool = teardown_ref.ScriptedTool("noloop")
    with pytest.raises(RuntimeError, match="no running event loop"):
        tool.execute("echo x")


def test_execute_async_syntax_error_resolves_at_once():
    tool = teardown_ref.ScriptedTool("aio")

    async def main():
        return await tool.execute("echo 'x")

    assert asyncio.run(main()).exit_code == 2


def test_context_variables_visible_on_every_path():
    async def show(params, stdin):
        return request_id.get() + "\n"

    tool = teardown_ref.ScriptedTool("ctx")
    tool.add_tool("show", "", show)
    tool.add_tool("show_sync", "", lambda params, stdin: request_id.get() + "\n")
    bash = teardown_ref.Bash(custom_builtins={"show": lambda ctx: request_id.get() + "\n"})
    token = request_id.set("sync-path")
    try:
        assert tool.execute_sync("show; show_sync").stdout == "sync-path\nsync-path\n"
        assert bash.execute_sync("show").stdout == "sync-path\n"
    finally:
        request_id.reset(token)

    async def main():
        request_id.set("async-path")
        awaited = await tool.execute("show")
        in_loop = tool.execute_sync("show")  # running-loop path: helper thread, fresh loop
        return awaited.stdout, in_loop.stdout, bash.execute_sync("show").stdout

    assert asyncio.run(main()) == ("async-path\n", "async-path\n", "async-path\n")


def test_running_loop_path_uses_a_fresh_private_loop():
    """execute_sync inside a running loop (Jupyter) must neither deadlock nor reuse it."""
    bash = teardown_ref.Bash(custom_builtins={"id": lambda ctx: "ok\n"})

    async def main():
        return bash.execute_sync("id").stdout

    assert asyncio.run(main()) == "ok\n"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeout_seconds": -1}, ValueError, "finite number >= 0"),
        ({"timeout_seconds": math.nan}, ValueError, "finite number >= 0"),
        ({"timeout_seconds": math.inf}, ValueError, "finite number >= 0"),
        ({"timeout_seconds": "5"}, TypeError, "must be a number or None, not str"),
        ({"timeout_seconds": True}, TypeError, "not bool"),
    ],
)
def test_bad_timeouts_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        teardown_ref.ScriptedTool("t", **kwargs)
    with pytest.raises(error, match=match):
        teardown_ref.Bash(**kwargs)


def test_bad_names_and_callbacks_raise():
    with pytest.raises(ValueError, match="must not be empty"):
        teardown_ref.ScriptedTool("")
    with pytest.raises(TypeError, match="must be a str"):
        teardown_ref.ScriptedTool(3)
    tool = teardown_ref.ScriptedTool("t")
    with pytest.raises(ValueError, match="must not be empty"):
        tool.add_tool("", "d", echo_params)
    with pytest.raises(ValueError, match="one word"):
        tool.add_tool("two words", "d", echo_params)
    with pytest.raises(TypeError, match="must be callable"):
        tool.add_tool("x", "d", "not callable")
    with pytest.raises(TypeError, match="description must be a str"):
        tool.add_tool("x", 5, echo_params)
    with pytest.raises(TypeError, match="commands must be a str"):
        tool.execute_sync(b"echo")
    with pytest.raises(ValueError, match="NUL"):
        tool.execute_sync("echo \0")
    with pytest.raises(TypeError, match="must be callable"):
        teardown_ref.Bash(custom_builtins={"x": 1})
    with pytest.raises(TypeError, match="must be a dict"):
        teardown_ref.Bash(custom_builtins=[("x", echo_params)])
    with pytest.raises(TypeError):
        teardown_ref.ExecResult()
    del tool
    assert_all_released("after rejected constructions")


def test_exit_result_fields():
    tool = teardown_ref.ScriptedTool("fields")
    result = tool.execute_sync("echo hi")
    assert (result.exit_code, result.stdout, result.stderr, result.error) == (0, "hi\n", "", None)
    assert result.success is True
    assert repr(result) == "ExecResult(exit_code=0, stdout='hi\\n', stderr='', error=None)"
    with pytest.raises(AttributeError):
        result.exit_code = 1


def test_stats_and_exit_flag_introspection():
    stats = teardown_ref.stats()
    assert {"tools", "workers", "pool_threads", "open_loops", "inflight"} <= set(stats)
    assert teardown_ref.interpreter_at_exit() is False
