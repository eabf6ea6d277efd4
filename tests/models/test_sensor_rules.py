"""Threshold rules (hysteresis, day/night noise limits in Asia/Shanghai, config), rule alerts, and the
validation reasons of readings."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from models.sensors import (
    KINDS,
    ThresholdConfig,
    ThresholdRule,
    default_rules,
    rule_events,
    rules_for,
    validate_reading,
)

SHANGHAI = timezone(timedelta(hours=8))
T0 = 1_795_244_400_000  # 15:00 in Xiamen


def transitions(kind: str, metric: str, values: list[float], cfg: ThresholdConfig | None = None,
                t0: int = T0, step: int = 60_000) -> list[tuple[str, str, int]]:
    rules = rules_for(kind, default_rules(cfg))
    return [(e.condition, e.status, i) for i, v in enumerate(values)
            for e in rule_events(rules, "S-1", {"ts": t0 + step * i, metric: v})]


def test_tilt_hovering_at_the_limit_does_not_flap() -> None:
    hover = [1.0, 5.2, 4.9, 5.1, 4.95, 5.05, 4.8, 5.3, 4.6]  # never twice in a row at or below 4.5
    assert transitions("billboard_tilt", "tilt_deg", hover) == [("billboard_tilt", "open", 1)]
    assert transitions("billboard_tilt", "tilt_deg", [*hover, 4.4, 4.7, 4.3, 4.2]) == [
        ("billboard_tilt", "open", 1), ("billboard_tilt", "close", 12)]


def test_signed_tilt_counts_by_its_size_and_angle_is_configurable() -> None:
    assert transitions("billboard_tilt", "tilt_deg", [0.5, -5.5])[0] == ("billboard_tilt", "open", 1)
    cfg = ThresholdConfig(tilt_deg=8.0, tilt_off_deg=7.0)
    assert transitions("billboard_tilt", "tilt_deg", [0.5, 6.0, 7.9], cfg) == []
    assert transitions("billboard_tilt", "tilt_deg", [0.5, 8.5, 6.9, 6.8], cfg) == [
        ("billboard_tilt", "open", 1), ("billboard_tilt", "close", 3)]


def test_gas_warning_then_alarm_with_severities() -> None:
    rules = rules_for("gas")
    evs = [e for i, v in enumerate([1.0, 11.0, 21.0, 19.0, 7.0, 7.5]) for e in rule_events(
        rules, "GAS-1", {"ts": T0 + 30_000 * i, "lel_pct": v}, 24.4, 118.1)]
    assert [(e.condition, e.status, e.severity, e.source) for e in evs] == [
        ("gas_warning", "open", "warning", "rule:gas_warning"), ("gas_alarm", "open", "critical", "rule:gas_alarm"),
        ("gas_warning", "close", "warning", "rule:gas_warning"), ("gas_alarm", "close", "critical", "rule:gas_alarm")]
    alarm_open, alarm_close = evs[1], evs[3]
    assert (alarm_open.ts_ms, alarm_open.value, alarm_open.threshold) == (T0 + 60_000, 21.0, 20.0)
    assert alarm_close.opened_ms == alarm_open.opened_ms and alarm_close.closed_ms == T0 + 150_000
    assert (alarm_open.sensor_id, alarm_open.kind, alarm_open.metric, alarm_open.lat) == ("GAS-1", "gas", "lel_pct", 24.4)


def test_manhole_drainage_and_dust() -> None:
    assert transitions("manhole_cover", "cover_open", [0, 1, 1, 0, 0]) == [("cover_open", "open", 1),
                                                                           ("cover_open", "close", 4)]
    assert transitions("drainage_level", "level_m", [0.4, 1.3, 1.1, 1.1], ThresholdConfig()) == [
        ("water_level", "open", 1), ("water_level", "close", 3)]
    assert transitions("drainage_level", "level_m", [0.4, 1.3], ThresholdConfig(drainage_warning_m=2.0)) == []
    assert transitions("site_dust", "pm10_ugm3", [80, 151, 140, 120, 110]) == [("site_dust", "open", 1),
                                                                              ("site_dust", "close", 4)]  # 140 > 135
    assert transitions("air_quality", "pm10_ugm3", [80, 999]) == []  # no hard threshold for air quality


@pytest.mark.parametrize(("local", "limit"), [("05:59", 55.0), ("06:00", 70.0), ("21:59", 70.0), ("22:00", 55.0),
                                              ("23:30", 55.0), ("03:00", 55.0), ("12:00", 70.0)])
def test_noise_limit_follows_shanghai_day_and_night(local: str, limit: float) -> None:
    h, m = map(int, local.split(":"))
    ts = datetime(2026, 11, 21, h, m, tzinfo=SHANGHAI)
    spec = default_rules()["site_noise"][0]
    assert spec.limit_at(int(ts.timestamp() * 1000)) == limit
    rule = ThresholdRule(spec)
    rule.learn_one({"ts": ts, "laeq_db": 60.0})  # an aware datetime works as well as epoch ms
    assert rule.is_open is (limit == 55.0)


def test_noise_opens_at_night_and_closes_by_day_rules() -> None:
    night = int(datetime(2026, 11, 21, 22, 30, tzinfo=SHANGHAI).timestamp() * 1000)
    assert transitions("site_noise", "laeq_db", [50, 58, 52, 52.5], t0=night) == [("site_noise", "open", 1),
                                                                                   ("site_noise", "close", 3)]
    day = int(datetime(2026, 11, 21, 9, 0, tzinfo=SHANGHAI).timestamp() * 1000)
    assert transitions("site_noise", "laeq_db", [58, 69.9, 62], t0=day) == []


def test_score_one_is_pure_and_learn_one_moves_the_state() -> None:
    rule = ThresholdRule(default_rules()["gas"][1])
    x = {"ts": T0, "lel_pct": 25.0}
    before = copy.deepcopy(x)
    assert rule.score_one(x) == pytest.approx(1.25) and rule.transition(x) == "open"
    assert x == before and not rule.is_open
    rule.learn_one(x)
    assert rule.is_open and rule.opened_ms == T0 and rule.transition(x) is None
    assert rule.score_one({"ts": T0}) == 0.0  # a reading without the metric


def test_kinds_cover_the_schema_with_units_and_ranges() -> None:
    assert set(KINDS) == {"billboard_tilt", "manhole_cover", "drainage_level", "gas", "site_noise", "site_dust",
                          "air_quality", "bridge_health"}
    assert KINDS["billboard_tilt"]["tilt_deg"].lo == -90 and KINDS["gas"]["lel_pct"].hi == 100
    assert KINDS["site_noise"]["laeq_db"].unit == "dB(A)" and KINDS["drainage_level"]["level_m"].lo == -5


OK = {"sensor_id": "GAS-1", "kind": "gas", "ts": T0, "metrics": {"lel_pct": 3.0}}


@pytest.mark.parametrize(("change", "reason"), [
    ({"kind": "ufo"}, "unknown_kind: unknown sensor kind 'ufo'"),
    ({"metrics": {}}, "missing_field: metrics must name at least one metric (expected lel_pct)"),
    ({"metrics": None}, "missing_field: missing metrics"),
    ({"metrics": {"lel_ppm": 3.0}}, "unknown_metric: gas has no metric 'lel_ppm'"),
    ({"metrics": {"lel_pct": "3"}}, "wrong_type: lel_pct must be a number, got str"),
    ({"metrics": {"lel_pct": True}}, "wrong_type: lel_pct must be a number, got bool"),
    ({"metrics": {"lel_pct": float("nan")}}, "not_finite: lel_pct is nan"),
    ({"metrics": {"lel_pct": 130.0}}, "out_of_range: lel_pct=130.0 outside the physical range [0, 100] % LEL"),
    ({"kind": "manhole_cover", "metrics": {"cover_open": 0.5}}, "out_of_range: cover_open=0.5 outside 0 or 1"),
    ({"ts": "2026-11-21T07:00:00"}, "bad_timestamp: naive timestamp"),
    ({"ts": datetime(2026, 11, 21, 7)}, "bad_timestamp: naive timestamp"),  # noqa: DTZ001 - the invalid input
])
def test_validation_reasons(change: dict, reason: str) -> None:
    got = validate_reading({**OK, **change})
    assert got is not None and got.startswith(reason), got


def test_valid_readings_pass() -> None:
    assert validate_reading(OK) is None
    assert validate_reading({**OK, "ts": datetime(2026, 11, 21, 15, tzinfo=SHANGHAI)}) is None
    assert validate_reading({**OK, "kind": "billboard_tilt", "metrics": {"tilt_deg": -3.5}}) is None
