"""Agents of the incidents domain. Registered for every role; see streams/app.py.

Streams role: ``track_incidents`` (:mod:`.incidents_cases`, the case lifecycle, deadlines, attribution,
privacy) and ``link_duplicates`` (:mod:`.incidents_links`). Sinks role: ``store_incident_updates``
(:mod:`.incidents_sinks`).
"""

from __future__ import annotations

__all__ = ["register"]

from streams.agents import incidents_cases, incidents_links, incidents_sinks
from streams.app import Pipeline


def register(pipe: Pipeline) -> None:
    """Add this domain's agents for the pipeline's role."""
    incidents_cases.register(pipe)
    incidents_links.register(pipe)
    incidents_sinks.register(pipe)
