"""Validation, threshold rules with hysteresis, alerts → incidents, offline, and restart equivalence."""

from __future__ import annotations

import pickle

import orjson
import pytest

from models.sensors import MonitorConfig, Reading, SensorMonitor, decode_reading
from models.sensors.partition import PartitionMonitors

T0 = 1_795_244_400_000  # 15:00 in Xiamen
CFG = MonitorConfig()


def msg(**over: object) -> bytes:
    base = {"sensor_id": "GAS-1", "kind": "gas", "ts": T0, "lat": 24.4, "lon": 118.1, "metrics": {"lel_pct": 1.0}}
    return orjson.dumps({**base, **over})


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{", "invalid_json"), (b"[1]", "not_an_object"), (msg(kind="ufo"), "unknown_kind"),
    (msg(metrics={"lel_ppm": 3}), "unknown_metric"), (msg(metrics={"lel_pct": 120}), "out_of_range"),
    (msg(metrics={"lel_pct": "3"}), "wrong_type"), (msg(ts="2026-11-21T07:00:00"), "bad_timestamp"),
    (msg().replace(b"1.0}", b"1e999}"), "invalid_json"), (msg(sensor_id=None), "missing_field"),
])
def test_invalid_readings_have_reasons(raw: bytes, reason: str) -> None:
    got = decode_reading(raw)
    assert getattr(got, "reason", None) == reason, got


def test_key_must_match_sensor_id() -> None:
    assert decode_reading(msg(), "GAS-2").reason == "key_mismatch"
    assert isinstance(decode_reading(msg(), "GAS-1"), Reading)


def test_a_reading_dated_after_its_message_allows_is_clock_ahead() -> None:
    got = decode_reading(msg(ts=T0 + 1), None, latest=T0)
    assert got.reason == "clock_ahead" and "GAS-1 dated" in got.detail  # type: ignore[union-attr]
    assert isinstance(decode_reading(msg(), None, latest=T0), Reading)  # at the limit itself
    assert isinstance(decode_reading(msg(ts=T0 + 10**9), None, latest=None), Reading)  # check off
    assert decode_reading(msg(kind="ufo", ts=T0 + 1), None, latest=T0).reason == "unknown_kind"  # type: ignore[union-attr]


def run(kind: str, metric: str, values: list[float], t0: int = T0, step: int = 60_000) -> list[tuple[str, str, int]]:
    m = SensorMonitor("S-1", kind)
    out = []
    for i, v in enumerate(values):
        up = m.process(Reading("S-1", kind, t0 + step * i, 24.4, 118.1, {metric: v}), CFG)
        out += [(a.condition, a.status, i) for a, _ in up.alerts if a.source.startswith("rule")]
    return out


def test_rules_open_on_first_breach_and_do_not_flap() -> None:
    assert run("billboard_tilt", "tilt_deg", [1, 5.2, 4.9, 5.1, 4.8, 4.4, 4.3]) == [
        ("billboard_tilt", "open", 1), ("billboard_tilt", "close", 6)]
    assert run("drainage_level", "level_m", [0.5, 1.25, 1.18, 1.21, 1.1, 1.1]) == [
        ("water_level", "open", 1), ("water_level", "close", 5)]
    assert [c for c, s, _ in run("gas", "lel_pct", [1, 12, 22, 5, 5]) if s == "open"] == ["gas_warning", "gas_alarm"]
    assert run("manhole_cover", "cover_open", [0, 1, 0, 0]) == [("cover_open", "open", 1), ("cover_open", "close", 3)]


def test_noise_limits_follow_day_and_night_in_xiamen() -> None:
    day = T0 - 6 * 3_600_000  # 09:00 local
    night = T0 + 8 * 3_600_000  # 23:00 local
    assert run("site_noise", "laeq_db", [60, 62], day) == []
    assert run("site_noise", "laeq_db", [50, 60], night)[0] == ("site_noise", "open", 1)


def test_one_incident_per_sensor_and_subcategory() -> None:
    m = SensorMonitor("GAS-1", "gas")
    reports = []
    for i, v in enumerate([1, 12, 25, 25, 1, 1, 1, 13]):
        reports += m.process(Reading("GAS-1", "gas", T0 + 30_000 * i, 24.4, 118.1, {"lel_pct": v}), CFG).incidents
    # warning then alarm share one case (one subcategory); it resolves when both cleared, and a new breach
    # opens a new case
    assert [(r["transition"], r.get("subcategory"), r["ts"]) for r in reports] == [
        ("report", "E2106", T0 + 30_000), ("resolve", None, T0 + 150_000), ("report", "E2106", T0 + 210_000)]
    assert reports[0]["case_id"] == reports[1]["case_id"] != reports[2]["case_id"]


def test_offline_alert_opens_at_the_deadline_and_closes_on_the_next_reading() -> None:
    pm = PartitionMonitors(CFG)
    ups = []
    for i in range(60):
        ups.append(pm.process(Reading("A", "gas", T0 + 30_000 * i, 24.4, 118.1, {"lel_pct": 1.0 + 0.01 * (i % 4)})))
        if i < 20 or i > 40:
            ups.append(pm.process(Reading("B", "gas", T0 + 30_000 * i + 1, 24.4, 118.1, {"lel_pct": 1.0})))
    alerts = [(a.sensor_id, a.condition, a.status, a.opened_ms) for u in ups for a, _ in u.alerts]
    deadline = T0 + 30_000 * 19 + 1 + 300_000
    assert ("B", "offline", "open", deadline) in alerts and ("B", "offline", "close", deadline) in alerts
    assert not [a for a in alerts if a[0] == "A"]


def test_restart_from_pickled_state_gives_identical_scores() -> None:
    readings = [Reading(f"S{j}", "gas", T0 + 30_000 * i + j, 24.4, 118.1, {"lel_pct": 1.0 + 0.1 * ((i * (j + 3)) % 7)})
                for i in range(300) for j in range(3)]
    straight = PartitionMonitors(CFG)
    expected = [straight.process(r).score for r in readings]
    first = PartitionMonitors(CFG)
    got = [first.process(r).score for r in readings[:400]]
    restored = PartitionMonitors(CFG, [pickle.loads(pickle.dumps(m)) for m in first.take_changed()])
    got += [restored.process(r).score for r in readings[390:]][10:]  # re-delivered readings are skipped
    assert [restored.process(r).score for r in readings[380:390]] == [None] * 10
    assert got == expected
