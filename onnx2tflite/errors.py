"""User-facing errors. Every message names what is wrong, where, and what to do."""
from __future__ import annotations

from dataclasses import dataclass


class ConversionError(Exception):
    """Base class of every error the converter raises on bad input."""


class InputShapeError(ConversionError):
    """Graph inputs have dynamic dimensions and no override was given."""


class Unsupported(Exception):
    """Raised by a mapper that cannot lower a node; the driver adds the node context."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class UnsupportedNode:
    op_type: str
    name: str
    opset: int
    reason: str

    def __str__(self) -> str:
        return f"  {self.op_type} (opset {self.opset}) node '{self.name}': {self.reason}"


class UnsupportedModelError(ConversionError):
    """One report listing every node the converter could not lower."""

    def __init__(self, source: str, nodes: list[UnsupportedNode]):
        self.source = source
        self.nodes = nodes
        lines = [f"{source}: {len(nodes)} node(s) cannot be converted:"]
        lines += [str(n) for n in nodes]
        lines.append("No output was written. Supported operators: see README.md (Supported).")
        super().__init__("\n".join(lines))
