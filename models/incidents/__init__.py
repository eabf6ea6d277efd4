"""City-management cases (受理 → 立案 → 派遣 → 处置 → 反馈 → 核查 → 结案) as pure logic.

Modules: :mod:`.taxonomy` (categories), :mod:`.channels`, :mod:`.lifecycle` (state machine),
:mod:`.reorder` (event-time reorder buffer), :mod:`.deadlines` and :mod:`.deadline_tracker`
(time limits and breaches), :mod:`.duplicates`, :mod:`.privacy`, :mod:`.kpi`, and
:mod:`.processor`, which composes reorder → apply → duplicates → deadlines for one partition.
The stream agents run :mod:`.flow` (decode/validate :mod:`.events`, :mod:`.attribution`, the
processor, output :mod:`.rows`) per partition of ``incident.events`` and :mod:`.linking` per
partition of the report stream.
"""

from __future__ import annotations

__all__ = [
    "Applied",
    "Attributor",
    "CaseFlow",
    "ReportLinker",
    "decode_event",
    "Breach",
    "CaseBuffer",
    "CaseState",
    "CategoryTable",
    "DeadlinePolicy",
    "DeadlineTracker",
    "DuplicateLinker",
    "IncidentProcessor",
    "Late",
    "Outcome",
    "apply",
    "due_at",
    "hash_phone",
    "load_categories",
    "mask_phone",
    "scrub_text",
]

from models.incidents.attribution import Attributor
from models.incidents.deadline_tracker import Breach, DeadlineTracker
from models.incidents.deadlines import DeadlinePolicy, due_at
from models.incidents.duplicates import DuplicateLinker
from models.incidents.events import decode_event
from models.incidents.flow import CaseFlow
from models.incidents.lifecycle import CaseState, Outcome, apply
from models.incidents.linking import ReportLinker
from models.incidents.privacy import hash_phone, mask_phone, scrub_text
from models.incidents.processor import Applied, IncidentProcessor
from models.incidents.reorder import CaseBuffer, Late
from models.incidents.taxonomy import CategoryTable, load_categories
