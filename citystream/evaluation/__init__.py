"""Offline evaluation of detectors: NAB scoring and the simulator's ground truth."""

from __future__ import annotations

__all__: list[str] = []
