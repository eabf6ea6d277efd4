"""Demo summary sections of the sensors domain."""

from __future__ import annotations

__all__ = ["SECTIONS"]

from citystream.summary import Section

SECTIONS: list[Section] = []
