"""Agents of the sensors domain (stream agents and their sinks). Registered for every role; see streams/app.py."""

from __future__ import annotations

__all__ = ["register"]

from streams.app import Pipeline


def register(pipe: Pipeline) -> None:
    """Add this domain's agents for the pipeline's role (none yet)."""
