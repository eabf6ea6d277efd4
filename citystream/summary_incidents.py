"""Demo summary sections of the incidents domain."""

from __future__ import annotations

__all__ = ["SECTIONS"]

from citystream.summary import Section

SECTIONS: list[Section] = []
