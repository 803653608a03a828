"""Mapper registry: ``@mapper("Op", since=N)`` registers one function per ONNX op.

A mapper is ``fn(ctx, *inputs, **attributes)``: inputs are the lowered values (None for
an absent optional input), attributes are the ONNX attributes as keyword arguments with
the spec's defaults in the signature, so an attribute the mapper does not declare is
reported as unsupported instead of silently ignored.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

_REGISTRY: dict[tuple[str, str], list["MapperEntry"]] = {}


@dataclass
class MapperEntry:
    op_type: str
    domain: str
    since: int
    fn: Callable
    attributes: frozenset[str]


def mapper(op_type: str, since: int = 1, domain: str = ""):
    def register(fn: Callable) -> Callable:
        params = inspect.signature(fn).parameters.values()
        attrs = frozenset(p.name for p in params if p.kind == p.KEYWORD_ONLY)
        entries = _REGISTRY.setdefault((domain, op_type), [])
        entries.append(MapperEntry(op_type, domain, since, fn, attrs))
        entries.sort(key=lambda e: e.since)
        return fn

    return register


def lookup(domain: str, op_type: str, opset: int) -> MapperEntry | None:
    """The newest mapper registered for ``op_type`` whose ``since`` <= ``opset``."""
    _load_all()
    domain = "" if domain == "ai.onnx" else domain
    found = None
    for entry in _REGISTRY.get((domain, op_type), []):
        if entry.since <= opset:
            found = entry
    return found


def registered_ops() -> dict[tuple[str, str], list[MapperEntry]]:
    _load_all()
    return dict(_REGISTRY)


_LOADED = False


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import pkgutil

    import onnx2tflite.op_mappers as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("registry", "helpers"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")
