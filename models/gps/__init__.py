"""Decode and validate shared-bike GPS messages into columnar batches.

A message on the GPS topic is one fix, an operator batch ``{"operator": ..., "fixes": [...]}`` or a
bare array of fixes (see ``docs/schemas.md``). Decoding yields a :class:`FixBatch` of the valid fixes
(numpy columns, so geometry and counting run vectorized) and one :class:`DeadLetter` per bad fix or
bad message, each with a reason code and a human-readable detail.

Modules: ``batch`` (:class:`FixBatch`), ``checks`` (the validation rules, fix by fix and column-wise) and
``decode`` (messages to batches and dead letters). :class:`~models.dead_letter.DeadLetter` is shared with the
other feeds (``models.dead_letter``).
"""

from __future__ import annotations

__all__ = ["DeadLetter", "FixBatch", "decode_gps", "decode_gps_many", "decode_gps_origins", "REASONS"]

from models.dead_letter import DeadLetter
from models.gps.batch import FixBatch
from models.gps.checks import REASONS
from models.gps.decode import decode_gps, decode_gps_many, decode_gps_origins
