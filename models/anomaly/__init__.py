"""Online anomaly detection for sensor streams: ``make_detector(kind, **params)`` is the stable interface.

See ``docs/anomaly.md`` for the detectors compared, and why the city's sensor kinds get
:class:`ParametricDetector` and streams of unknown nature (``generic``) the calibrated :class:`SensorDetector`.
"""

from __future__ import annotations

__all__ = ["make_detector", "SensorDetector", "ParametricDetector", "RiverCandidate", "TailModel", "KIND_DEFAULTS",
           "CANDIDATES"]

from models.anomaly.calibration import TailModel
from models.anomaly.candidates import RiverCandidate
from models.anomaly.detector import SensorDetector
from models.anomaly.factory import CANDIDATES, KIND_DEFAULTS, make_detector
from models.anomaly.parametric import ParametricDetector
