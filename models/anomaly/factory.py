"""``make_detector``: the stable entry point used by the agents and by outside evaluation harnesses."""

from __future__ import annotations

__all__ = ["make_detector", "KIND_DEFAULTS", "CANDIDATES"]

from typing import Any

from models.anomaly.candidates import RiverGaussian, RiverHST
from models.anomaly.detector import SensorDetector

#: Hyperparameters per sensor kind: ``horizon`` = readings in 14 days at the kind's reporting interval, so
#: a score of 0.9 means "rarer than about once in 140 days of this sensor's normal readings".
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "generic": {},
    "billboard_tilt": {"horizon": 40320.0},
    "gas": {"horizon": 40320.0},
    "bridge_health": {"horizon": 40320.0},
    "manhole_cover": {},
    "drainage_level": {},
    "site_noise": {},
    "site_dust": {},
    "air_quality": {},
}

#: Other detectors of the comparison (``docs/anomaly.md``), by name.
CANDIDATES: dict[str, type] = {"robust": SensorDetector, "hst": RiverHST, "gaussian": RiverGaussian}


def make_detector(kind: str = "generic", **params: Any) -> Any:
    """A fresh detector for one sensor of ``kind`` (or one of :data:`CANDIDATES` by name).

    The object has ``score_one(x) -> float`` in [0, 1] (computed before learning ``x``; ``x`` is not
    modified), ``learn_one(x) -> None`` and ``expected_interval_s``; ``x`` holds ``"ts"`` (aware datetime or
    epoch ms) and numeric metrics. It pickles, and is deterministic for a ``seed``. Unknown kinds get the
    generic defaults; ``params`` override the defaults.

    Example
    -------
    >>> d = make_detector("billboard_tilt", seed=1)
    >>> for i in range(100):
    ...     d.learn_one({"ts": 30_000 * i, "tilt_deg": 0.8 + 0.01 * (i % 5)})
    >>> d.score_one({"ts": 3_000_000, "tilt_deg": 0.82}) < 0.5, d.score_one({"ts": 3_000_000, "tilt_deg": 6.0}) > 0.9
    (True, True)
    >>> type(make_detector("hst", seed=3)).__name__
    'RiverHST'
    """
    if kind in CANDIDATES and kind != "robust":
        return CANDIDATES[kind](**params)
    return SensorDetector(**{**KIND_DEFAULTS.get(kind, {}), **params})
