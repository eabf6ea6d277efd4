"""Online anomaly detection for sensor streams: ``make_detector(kind, **params)`` is the stable interface.

See ``docs/anomaly.md`` for the detectors compared and why :class:`SensorDetector` was chosen.
"""

from __future__ import annotations

__all__ = ["make_detector", "SensorDetector", "RiverHST", "RiverGaussian", "KIND_DEFAULTS", "CANDIDATES"]

from models.anomaly.candidates import RiverGaussian, RiverHST
from models.anomaly.detector import SensorDetector
from models.anomaly.factory import CANDIDATES, KIND_DEFAULTS, make_detector
