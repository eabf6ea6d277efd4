"""Offline evaluation harnesses (they read files; the detectors they score live in ``models/``).

* :mod:`.nab`: NAB standard-profile score at a fixed threshold and at NAB's optimized threshold;
* :mod:`.skab`: SKAB point-wise precision/recall/F1, segments found, delay, false alarms;
* :mod:`.truth`: recall per anomaly type, false alarms per sensor-day and median delay against injected
  ground truth (the simulator's recordings or :mod:`.synthetic` streams);
* :mod:`.sensors`: the whole sensor monitor (rules, model, offline) on a simulator recording.
"""

from __future__ import annotations

__all__: list[str] = []
