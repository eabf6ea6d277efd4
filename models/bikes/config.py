"""Hyperparameters of the shared-bike supervision rules (one frozen object, passed explicitly)."""

from __future__ import annotations

__all__ = ["SupervisionConfig", "DAY_MS", "MINUTE_MS"]

from collections.abc import Mapping
from dataclasses import dataclass, field

MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SupervisionConfig:
    """Rule settings; durations in epoch milliseconds, distances in metres.

    Parameters
    ----------
    grace_ms
        A bike parked in a no-parking zone, or outside every fence in a fence-required area, for this
        long is in violation. The violation's ``opened_ts`` is the lock time (as the ground truth
        counts it); it is *reported* once the grace has elapsed in event time.
    allowed_lateness_ms
        Fixes are held back and applied in per-bike time order once event time passes them by this
        much, so disorder within it changes nothing. A fix older than its bike's newest fix minus
        this is late: counted and dropped.
    fence_tolerance_m, search_radius_m
        A bike this close to a fence is parked in it; the distance to the nearest fence is reported
        up to ``search_radius_m`` (beyond: ``inf``).
    no_parking_tolerance_m
        A bike this close to a no-parking zone is parked in it, unless a fence is nearer (a fix votes
        for its nearest zone; ties go to the fence).
    move_threshold_m
        A locked bike whose fix is this far from where it locked has been moved (a truck, a thief or
        a glitch): it is parked anew there. Smaller drifts are GPS noise.
    confirm_parking, confirm_radius_m, confirm_wait_ms
        With ``confirm_parking``, a parked bike's place is decided only once two of its position
        samples (its locked fixes, and the fix of its unlock) lie within ``confirm_radius_m`` of each
        other: one multipath fix can neither make a parking violation nor move a parked bike. Every
        sample votes (fence > no-parking zone > fence-required area > free), so a bike any of whose
        samples lies in a fence is in that fence. A bike with no confirming sample is decided
        ``confirm_wait_ms`` after its grace, on what it sent. Without it, the lock fix alone decides
        and one fix beyond ``move_threshold_m`` moves the bike (for feeds with clean positions).
    zombie_after_ms
        A bike locked and not moved for this long is a zombie (僵尸车).
    max_speed_kmh, jump_min_m, drop_jumps
        A fix implying more than ``max_speed_kmh`` since the bike's previous fix, over more than
        ``jump_min_m``, is an ``impossible_jump`` GPS fault; with ``drop_jumps`` it is not applied.
    report_parkings, occupancy_all_zones
        Also emit a :class:`~models.bikes.events.Parked` per decided parking, and occupancy deltas
        for no-parking zones and fence-required areas (the bikes outside fences), not only fences.
    registered_operators
        Operators licensed in the city; a bike of any other is a black bike (黑车). None: no check.
    unattributed_operator
        The operator name a feed puts on fixes it cannot attribute (``citystream import dcic``: the DCIC data
        name no operator). Not knowing the operator is no evidence of an unlicensed one: such bikes are never
        black bikes (and, having no quota, never over one). None: every name is taken at its word.
    quotas
        Fleet quota per operator: distinct active bikes per local day (pass it to ``FleetCounter``;
        the supervisor itself only emits the first-activity marks).
    utc_offset_ms
        Offset of the local day used for fleet counting and black-bike days (Xiamen: UTC+8).

    Example
    -------
    >>> cfg = SupervisionConfig(registered_operators=frozenset({"meituan", "hellobike"}))
    >>> cfg.grace_ms, cfg.zombie_after_ms // DAY_MS, cfg.local_day(1_608_508_800_000)
    (300000, 7, 18617)
    """

    grace_ms: int = 5 * MINUTE_MS
    allowed_lateness_ms: int = 5 * MINUTE_MS
    fence_tolerance_m: float = 3.0
    search_radius_m: float = 50.0
    no_parking_tolerance_m: float = 0.0
    move_threshold_m: float = 20.0
    confirm_parking: bool = False
    confirm_radius_m: float = 20.0
    confirm_wait_ms: int = 10 * MINUTE_MS
    zombie_after_ms: int = 7 * DAY_MS
    max_speed_kmh: float = 60.0
    jump_min_m: float = 200.0
    drop_jumps: bool = True
    report_parkings: bool = False
    occupancy_all_zones: bool = False
    registered_operators: frozenset[str] | None = None
    unattributed_operator: str | None = None
    quotas: Mapping[str, int] = field(default_factory=dict, hash=False)
    utc_offset_ms: int = 8 * 3_600_000

    def __post_init__(self) -> None:
        for name in ("grace_ms", "allowed_lateness_ms", "zombie_after_ms", "confirm_wait_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_speed_kmh <= 0 or self.move_threshold_m <= 0 or self.confirm_radius_m <= 0:
            raise ValueError("max_speed_kmh, move_threshold_m and confirm_radius_m must be > 0")
        if self.fence_tolerance_m < 0 or self.no_parking_tolerance_m < 0:
            raise ValueError("tolerances must be >= 0")

    def local_day(self, ts_ms: int) -> int:
        """Days since 1970-01-01 in local time."""
        return (ts_ms + self.utc_offset_ms) // DAY_MS

    def day_end_ms(self, day: int) -> int:
        """Epoch ms at which local ``day`` ends."""
        return (day + 1) * DAY_MS - self.utc_offset_ms
