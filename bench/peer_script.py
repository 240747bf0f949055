"""The peer's command language: the subset of teardown_ref's that the benchmarks and audits use.

`name --key value ... | name2 ...` pipelines separated by `;` or newlines; a pipeline passes each
command's stdout as the next one's stdin. Kept apart from `peer.py` so the teardown code stays
short; it makes no thread or Python-callback decision.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


class ScriptError(ValueError):
    """A syntax error or an unexpected argument (exit 2)."""


@dataclass(frozen=True)
class Command:
    name: str
    params: dict[str, str]
    args: tuple[str, ...]  # positional words: Bash's argv; a ScriptedTool rejects them


def _command(words: list[str]) -> Command:
    if not words:
        raise ScriptError("empty command")
    name, rest = words[0], words[1:]
    params: dict[str, str] = {}
    args: list[str] = []
    while rest:
        word = rest.pop(0)
        if not word.startswith("--") or len(word) == 2:
            args.append(word)
            continue
        key, sep, value = word[2:].partition("=")
        if not sep:
            value = rest.pop(0) if rest and not rest[0].startswith("--") else "true"
        params[key] = value
    return Command(name, params, tuple(args))


def parse(script: str) -> list[list[Command]]:
    """Pipelines of commands; ScriptError on a syntax error."""
    # Newlines separate pipelines like ';' (a quoted newline is not kept: the subset's limit).
    lexer = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars="|;")
    lexer.whitespace_split = True
    pipelines: list[list[Command]] = []
    pipeline: list[Command] = []
    words: list[str] = []
    try:
        tokens = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise ScriptError(str(exc)) from None
    for token in [*tokens, ";"]:
        if token in ("|", ";"):
            if words:
                pipeline.append(_command(words))
            elif token == "|" or pipeline:
                raise ScriptError(f"syntax error near {token!r}")
            words = []
            if token != "|" and pipeline:
                pipelines.append(pipeline)
                pipeline = []
        else:
            words.append(token)
    return pipelines
