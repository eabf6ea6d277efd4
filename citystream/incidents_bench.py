"""``citystream bench incidents``: incident events per second, in-process and end to end.

End to end (:mod:`citystream.e2e_bench`) = the embedded Tansu broker, one ``--role all`` worker in this
process (``track_incidents``, ``link_duplicates``, ``store_incident_updates``) and chDB: the clock runs from
the first message produced (replay at --speed max, then a heartbeat per partition at the feed's end) until
ClickHouse holds every transition and link the feed yields.
"""

from __future__ import annotations

__all__ = ["run_bench"]

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from citystream.config import Settings
from citystream.e2e_bench import run_end_to_end
from citystream.embedded import scratch_dir
from citystream.incidents_eval import run_recording
from replay.recording import Recording
from replay.simulate import simulate
from streams.agents.incidents_setup import incident_setup


def run_bench(settings: Settings, *, hours: float, per_hour: float, seed: int, workdir: Path | None,
              console: Console) -> list[tuple[str, Any]]:  # fmt: skip
    """Run the benchmark; returns ``(figure, value)`` rows."""
    work = workdir or scratch_dir("citystream-bench-incidents-")  # scratch: removed when the command ends
    with console.status(f"simulating {hours} h of cases at {per_hour:,.0f}/h ..."):
        sim = simulate(work / "rec", hours=hours, bikes=0, sensors=0, seed=seed, incidents_per_hour=per_hour,
                       overwrite=True)  # fmt: skip
    rec = Recording.open(work / "rec")
    events, end_ts = rec.records, sim.end_ts
    t = time.perf_counter()
    run = run_recording(rec, incident_setup(settings))
    in_process_s = time.perf_counter() - t
    expected = (run.counts["applied"], len(run.links()))
    figures: list[tuple[str, Any]] = [
        ("case events", events), ("transitions applied", expected[0]), ("duplicate links", expected[1]),
        ("in-process (CaseFlow + ReportLinker, one core)", f"{events / in_process_s:,.0f} events/s"),
    ]
    counts = "SELECT (SELECT count() FROM incident_cases FINAL), (SELECT count() FROM incident_transitions FINAL), " \
             "(SELECT count() FROM incident_breaches FINAL), (SELECT count() FROM incident_duplicates FINAL)"
    progress = "SELECT (SELECT count() FROM incident_transitions), (SELECT count() FROM incident_duplicates)"
    e2e = run_end_to_end(settings, rec, ["incident_events"], progress_sql=progress, rows_sql=counts,
                         done=lambda stored: stored[0] >= expected[0] and stored[1] >= expected[1],
                         end_ts=end_ts, workdir=work, console=console,
                         what=f"{events:,} events")
    figures += [
        ("replay --speed max into Tansu", f"{events / e2e.produce_s:,.0f} events/s"),
        ("end to end (broker → agents → ClickHouse)",
         f"{events / e2e.total_s:,.0f} events/s ({events:,} in {e2e.total_s:.1f} s)"),
        ("rows stored (cases, transitions, breaches, duplicates)", ", ".join(f"{r:,}" for r in e2e.rows)),
    ]
    return figures
