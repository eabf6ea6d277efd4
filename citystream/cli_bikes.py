"""Commands of the bikes domain (evaluation, benchmarks)."""

from __future__ import annotations

__all__ = ["register"]

from typing import Any

import typer


def register(app: typer.Typer, settings_of: Any) -> None:
    """Add this domain's commands to ``app`` (none yet)."""
