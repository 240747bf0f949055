"""Which interpreters a run covers: supported ones, `--python` subsets, one build per
(X.Y, ABI flags) unless asked for all, and a deterministic `--shard i/n` of that list."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from teardown_audit.matrix.interpreters import MIN_SUPPORTED, Interpreter, same_binary


@dataclass
class Selection:
    interpreters: list[Interpreter] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out, and why


def parse_shard(text: str) -> tuple[int, int]:
    """ "i/n" (1-based) -> (i, n); ValueError with one line otherwise."""
    head, sep, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index = count = 0
    if not sep or not 1 <= index <= count:
        raise ValueError(f"shard must be i/n with 1 <= i <= n, got {text!r}")
    return index, count


def shard(items: Sequence[Interpreter], index: int, count: int) -> list[Interpreter]:
    """Round-robin over the sorted list: every machine computes the same split from the same
    discovery, and the shards are disjoint and cover everything."""
    if not 1 <= index <= count:
        raise ValueError(f"shard must be i/n with 1 <= i <= n, got {index}/{count}")
    return list(items[index - 1 :: count])


def _exact(name: str, interp: Interpreter) -> bool:
    """A name that picks one build: its tag, its version, or a path to it."""
    if os.sep in name:
        return same_binary(name, interp.path) or same_binary(name, interp.executable)
    return name in (interp.tag, interp.version, interp.label)


def _family(name: str, interp: Interpreter) -> bool:
    """A name that picks a family: 3.11, 3.11d, 3.13t."""
    debug_alias = interp.flavour.replace("d", "-debug") if interp.debug else None
    return name in (interp.flavour, debug_alias)


def select(
    found: Sequence[Interpreter],
    names: Sequence[str] = (),
    exclude: Sequence[str] = (),
    all_builds: bool = False,
) -> Selection:
    sel = Selection()
    pool = []
    for interp in found:
        if not interp.supported:
            sel.notes.append(
                f"{interp.label} ({interp.path}): below Python %d.%d, not in the matrix"
                % MIN_SUPPORTED
            )
        else:
            pool.append(interp)
    explicit: list[Interpreter] = []
    family: list[Interpreter] = []
    for name in names:
        exact = [i for i in pool if _exact(name, i)]
        fam = [i for i in pool if _family(name, i)]
        if not exact and not fam:
            known = ", ".join(i.label for i in pool) or "none"
            raise ValueError(f"--python {name}: no such interpreter (found: {known})")
        explicit += exact
        family += fam
    if not names:
        family = pool
    kept = {id(i): i for i in explicit}
    best: dict[str, Interpreter] = {}
    for interp in family:
        if all_builds:
            kept[id(interp)] = interp
            continue
        # One build per (X.Y, ABI flags): the newest patch release; ties keep discovery order
        # (pyenv before the system's), so the choice is the same on every run.
        current = best.get(interp.flavour)
        if current is None or interp.version_key > current.version_key:
            best[interp.flavour] = interp
    for interp in best.values():
        kept[id(interp)] = interp
    for interp in family:
        if id(interp) not in kept:
            chosen = best[interp.flavour]
            sel.notes.append(
                f"{interp.label} ({interp.path}): same X.Y and ABI flags as {chosen.label};"
                f" --all-builds or --python {interp.tag} includes it"
            )
    # Excluded last: an interpreter run elsewhere (`make test` runs $(PYTHON) itself) still
    # stands for its (X.Y, ABI flags) family, so no sibling build is picked in its place.
    for interp in found:
        if id(interp) in kept and any(same_binary(x, interp.executable) for x in exclude):
            del kept[id(interp)]
            sel.notes.append(f"{interp.label} ({interp.path}): excluded (--skip-python)")
    sel.interpreters = [i for i in found if id(i) in kept]
    return sel
