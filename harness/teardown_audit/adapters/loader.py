"""Turn a --target text into an Adapter: a built-in name, `module:object`, or a .py file path."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from teardown_audit.adapters.base import Adapter, TargetError
from teardown_audit.adapters.builtin import BUILTIN

# A target file defines its adapter under one of these names (or name it: `file.py:obj`).
DEFAULT_ATTRS = ("ADAPTER", "adapter")


def load_adapter(spec: str) -> Adapter:
    """Resolve and load a target; raise TargetError (or TargetUnavailable) with one line."""
    adapter = resolve_adapter(spec)
    adapter.load()
    return adapter


def resolve_adapter(spec: str) -> Adapter:
    """Like load_adapter, but without importing the extension itself (for built-ins)."""
    spec = spec.strip()
    if not spec:
        raise TargetError("empty target name")
    if spec in BUILTIN:
        adapter = BUILTIN[spec]()
        adapter.spec = spec
        return adapter
    location, _, attr = spec.partition(":")
    if location.endswith(".py") or os.sep in location:
        path = os.path.abspath(location)
        module = _import_file(path)
        spec = f"{path}:{attr}" if attr else path
    elif attr:
        module = _import_module(location)
    else:
        known = ", ".join(sorted(BUILTIN))
        raise TargetError(
            f"unknown target {spec!r}: expected one of {known}, module:object, "
            "or a path to a .py file"
        )
    adapter = _adapter_from(module, attr, spec)
    adapter.spec = spec
    return adapter


def _import_file(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise TargetError(f"target file not found: {path}")
    directory, filename = os.path.split(path)
    name = filename[: -len(".py")] if filename.endswith(".py") else filename
    existing = sys.modules.get(name)
    if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") != path:
        raise TargetError(f"target file {path} clashes with already imported module {name!r}")
    # Imported by its own name from its own directory, so exit scripts can `import` it the same way.
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return _import_module(name, shown=path)


def _import_module(name: str, shown: str | None = None) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name and shown is None:
            raise TargetError(f"target module {name!r} not found") from None
        raise TargetError(f"import error in target {shown or name!r}: {exc}") from None
    except SystemExit as exc:
        raise TargetError(f"target {shown or name!r} called exit({exc.code}) on import") from None
    except BaseException as exc:  # a target's import may raise anything; report it in one line
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = _innermost_location(exc)
        raise TargetError(
            f"import error in target {shown or name!r}: {type(exc).__name__}: {exc}{where}"
        ) from None


def _innermost_location(exc: BaseException) -> str:
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f" ({os.path.basename(tb.tb_frame.f_code.co_filename)} line {tb.tb_lineno})"


def _adapter_from(module: ModuleType, attr: str, spec: str) -> Adapter:
    names = (attr,) if attr else DEFAULT_ATTRS
    for candidate in names:
        obj = getattr(module, candidate, None)
        if obj is None:
            continue
        if isinstance(obj, type) and issubclass(obj, Adapter):
            try:
                obj = obj()
            except Exception as exc:
                raise TargetError(f"target {spec!r}: {candidate}() failed: {exc}") from None
        if not isinstance(obj, Adapter):
            raise TargetError(
                f"target {spec!r}: {candidate} is a {type(obj).__name__}, "
                "not a teardown_audit Adapter"
            )
        return obj
    wanted = attr or " or ".join(DEFAULT_ATTRS)
    raise TargetError(f"target {spec!r} defines no adapter named {wanted}")
