"""``citystream simulate``: a deterministic Xiamen-like city generator with ground truth.

Entry point :func:`simulate` (in :mod:`.run`); modules by concept: :mod:`.geography` (zones),
:mod:`.bikes` (fleet state machine), :mod:`.sensors`, :mod:`.incidents`, :mod:`.truth`.
"""

from __future__ import annotations

__all__ = ["simulate", "SimulationSummary", "DEFAULT_START"]

from replay.simulate.run import DEFAULT_START, SimulationSummary, simulate
