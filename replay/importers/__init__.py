"""Importers: turn public data files into recordings (``replay/recording.py`` format).

Each importer streams its input, sorts it by event time with bounded memory, counts the rows it
could not use by reason (never dropping them silently) and returns an :class:`ImportSummary`.
"""

from __future__ import annotations

__all__ = ["ImportSummary", "import_dcic", "import_series"]

from replay.importers.common import ImportSummary
from replay.importers.dcic import import_dcic
from replay.importers.series import import_series
