"""Commands of the sensors domain: ``citystream eval sensors`` and ``citystream bench sensors``."""

from __future__ import annotations

__all__ = ["register"]

import functools
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
_NAB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "anomaly" / "nab_artificial"


def _simulated(hours: float, sensors: int, seed: int) -> Path:
    from citystream.embedded import scratch_dir
    from replay.simulate import simulate

    out = scratch_dir("citystream-sensors-") / "sim"  # gone when the command ends
    with console.status(f"simulating {hours:g} h of {sensors} sensors (seed {seed})"):
        simulate(out, hours=hours, bikes=0, sensors=sensors, seed=seed, incidents_per_hour=0.0)
    return out


def register(app: typer.Typer, settings_of: Any) -> None:
    """Add ``eval sensors`` and ``bench sensors`` to the shared ``eval``/``bench`` groups."""
    from citystream.cli import bench_app, eval_app, simulator_recording

    @eval_app.command("sensors")
    def eval_sensors(
        recording: Annotated[Path | None, typer.Option(help="A simulator recording with ground_truth.jsonl.gz; "
                                                            "default: simulate one.")] = None,
        hours: Annotated[float, typer.Option(help="Hours to simulate when no recording is given.")] = 72.0,
        warmup_hours: Annotated[float, typer.Option(
            help="Learning period at the start: anomalies starting in it and alerts opened in it are not scored "
                 "(threshold breaches are); false alarms count per sensor-day after it.")] = 24.0,
        sensors: Annotated[int, typer.Option(help="Sensors to simulate when no recording is given.")] = 60,
        seed: Annotated[int, typer.Option(help="Simulator seed.")] = 11,
        nab: Annotated[Path, typer.Option(help="A NAB-style corpus: data/ and combined_windows.json (beside it or "
                                               "under labels/, as in a checkout of the NAB repository); skipped "
                                               "when absent. Default: NAB's artificial files in ../shared.")] = _NAB,
    ) -> None:
        """Per anomaly type recall, false alarms per sensor-day and median detection delay of the sensor monitor
        (rules + anomaly model + offline) on a simulated recording; NAB standard score on NAB artificial."""
        from citystream.evaluation.sensors import evaluate_recording

        rec = simulator_recording(recording, ("ground_truth.jsonl.gz",), "--recording") if recording else (
            _simulated(hours, sensors, seed))
        t = time.perf_counter()
        with console.status("scoring the recording"):
            ev = evaluate_recording(rec, warmup_h=warmup_hours)
        table = Table(title=f"sensor monitor on {rec} ({ev.readings:,} readings, {ev.sensor_days:.1f} sensor-days "
                            f"scored after {warmup_hours:g} h of learning)",
                      title_justify="left")
        for col in ("truth type", "found", "total", "recall", "median delay s"):
            table.add_column(col, justify="right" if col != "truth type" else "left")
        for typ, found, total, recall, med in ev.rows():
            table.add_row(typ, str(found), str(total), f"{recall:.3f}", "-" if med is None else f"{med:.0f}")
        console.print(table)
        first = sum(ev.first_reading) / len(ev.first_reading) if ev.first_reading else 0.0
        console.print(f"threshold breaches alerted on their first breaching reading: {first:.3f}")
        console.print(f"false alarms: {ev.false_alarms} = {ev.false_alarms_per_sensor_day:.2f} per sensor-day "
                      f"({', '.join(f'{k} {v}' for k, v in sorted(ev.false_by.items(), key=lambda x: -x[1]))})")
        console.print(f"scored in {time.perf_counter() - t:.1f} s")
        from citystream.evaluation.nab import load_corpus, run_detector, windows_path
        from models.anomaly import make_detector

        if windows_path(nab) is None:
            console.print(f"no NAB corpus at {nab} (combined_windows.json beside data/ or under labels/): skipped")
            return
        skipped: list[str] = []
        corpus = load_corpus(nab, skipped=skipped)
        if skipped:
            console.print(f"NAB: {len(skipped)} labelled files not under {nab / 'data'}, left out: "
                          f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
        table = Table(title=f"NAB {nab.name} ({len(corpus)} files), standard profile (threshold 0.9)",
                      title_justify="left")
        for col in ("detector", "NAB score", "TP", "FP", "FN"):
            table.add_column(col)
        for name, kind in (("robust (generic)", "generic"), ("parametric (sensor kinds)", "parametric"),
                           ("hst", "hst"), ("gaussian", "gaussian")):
            with console.status(f"NAB: {name}"):
                r = run_detector(corpus, functools.partial(make_detector, kind, seed=1))[0.9]
            table.add_row(name, f"{r['score']:.1f}", str(r["tp"]), str(r["fp"]), str(r["fn"]))
        console.print(table)

    @bench_app.command("sensors")
    def bench_sensors(
        hours: Annotated[float, typer.Option(help="Hours of telemetry to simulate.")] = 6.0,
        sensors: Annotated[int, typer.Option(help="Sensors to simulate.")] = 200,
        seed: Annotated[int, typer.Option(help="Simulator seed.")] = 3,
        end_to_end: Annotated[bool, typer.Option(help="Also run the feed through the embedded broker, the "
                                                      "worker's agents and chDB, timed until every reading is a "
                                                      "ClickHouse row.")] = True,
    ) -> None:
        """Readings/s through decode + validate + rules + model + alerts (the agent's per-reading path, in
        process) and end to end (embedded broker → agents → ClickHouse rows), and bytes per sensor model."""
        import gzip
        import pickle

        import orjson

        from models.sensors import MonitorConfig, Reading, decode_reading
        from models.sensors.partition import PartitionMonitors

        rec = _simulated(hours, sensors, seed)
        with gzip.open(rec / "sensor_telemetry.jsonl.gz", "rb") as fh:
            msgs = [orjson.loads(line) for line in fh]
        raw = [(m["k"], m["v"].encode()) for m in msgs]
        pm = PartitionMonitors(MonitorConfig())
        t = time.perf_counter()
        for key, value in raw:
            r = decode_reading(value, key)
            if isinstance(r, Reading):
                pm.process(r)
        dt = time.perf_counter() - t
        sizes = sorted(len(pickle.dumps(m, protocol=5)) for m in pm.monitors.values())
        table = Table(title=f"bench sensors ({len(raw):,} readings of {len(sizes)} sensors)", title_justify="left")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_row("readings/s (decode → score → alerts)", f"{len(raw) / dt:,.0f}")
        table.add_row("bytes per sensor state, median", f"{sizes[len(sizes) // 2]:,}")
        table.add_row("bytes per sensor state, max", f"{sizes[-1]:,}")
        table.add_row("10,000 sensors (max), MB", f"{sizes[-1] * 10_000 / 1e6:.1f}")
        if end_to_end:
            from citystream.e2e_bench import run_end_to_end
            from replay.recording import Recording

            rows = sum(len(r.metrics) for key, value in raw if isinstance(r := decode_reading(value, key), Reading))
            e2e = run_end_to_end(settings_of(metrics_port=0), Recording.open(rec), ["sensor_telemetry"], workdir=rec.parent,
                                 progress_sql="SELECT count() FROM sensor_readings", done=lambda c: c[0] >= rows,
                                 rows_sql="SELECT (SELECT count() FROM sensor_readings FINAL), "
                                          "(SELECT count() FROM sensor_alerts FINAL)",
                                 console=console, what=f"{len(raw):,} readings")
            table.add_row("replay --speed max into Tansu, readings/s", f"{len(raw) / e2e.produce_s:,.0f}")
            table.add_row("end to end (broker → agents → ClickHouse), readings/s",
                          f"{len(raw) / e2e.total_s:,.0f} ({len(raw):,} in {e2e.total_s:.1f} s)")
            table.add_row("rows stored (sensor_readings, sensor_alerts)", ", ".join(f"{r:,}" for r in e2e.rows))
        console.print(table)
