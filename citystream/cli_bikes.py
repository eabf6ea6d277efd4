"""Commands of the bikes domain: ``citystream eval bikes`` and ``citystream bench bikes``."""

from __future__ import annotations

__all__ = ["register"]

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _simulated(hours: float, bikes: int, seed: int, batched: bool = False) -> Path:
    from citystream.embedded import scratch_dir
    from replay.simulate import simulate

    out = scratch_dir("citystream-bikes-") / "sim"  # gone when the command ends
    with console.status(f"simulating {hours:g} h of {bikes:,} bikes (seed {seed}{', operator batches' if batched else ''})"):
        simulate(out, hours=hours, bikes=bikes, sensors=0, seed=seed, incidents_per_hour=0.0,
                 batch_operator_fixes=batched)
    return out


def register(app: typer.Typer, settings_of: Any) -> None:
    """Add ``eval bikes`` and ``bench bikes`` to the shared ``eval``/``bench`` groups."""
    from citystream.cli import bench_app, eval_app, simulator_recording

    @eval_app.command("bikes")
    def eval_bikes(
        recording: Annotated[Path | None, typer.Argument(help="A simulator recording with ground_truth.jsonl.gz and "
                                                              "geography.geojson; default: simulate one.")] = None,
        hours: Annotated[float, typer.Option(help="Hours to simulate when no recording is given.")] = 2.0,
        bikes: Annotated[int, typer.Option(help="Bikes to simulate when no recording is given.")] = 3000,
        seed: Annotated[int, typer.Option(help="Simulator seed when no recording is given.")] = 11,
        partitions: Annotated[int, typer.Option(help="Partitions to split the fixes over, as the pipeline does.")] = 4,
        pipeline: Annotated[bool, typer.Option(help="Also replay it through the embedded pipeline (Tansu, worker, "
                                                    "chDB) and score the violations stored in ClickHouse.")] = False,
    ) -> None:
        """Precision and recall of no_parking and outside_fence violations, and their opened-time error against
        one GPS reporting interval, on a simulated recording with ground truth. Runs the recording through the
        agents' own model (one BikeSupervisor per partition, in-process); --pipeline also end to end."""
        from citystream.bikes_eval import evaluate_recording
        from streams.agents.bikes_geo import load_bike_setup

        rec = recording or _simulated(hours, bikes, seed)
        simulator_recording(rec, ("ground_truth.jsonl.gz", "geography.geojson"), "RECORDING")
        settings = settings_of(geography=rec / "geography.geojson", partitions=partitions)
        setup = load_bike_setup(settings)
        t = time.perf_counter()
        with console.status("replaying the recording through the supervisors"):
            scores, facts = evaluate_recording(rec, setup.config, setup.index, partitions)
        _print_scores(f"bike supervision (model) on {rec}: {facts['fixes']:,} fixes in {time.perf_counter() - t:.1f} s",
                      scores, facts["interval_ms"])
        if pipeline:
            from citystream.bikes_bench import score_through_pipeline

            with console.status("replaying the recording through the embedded pipeline"):
                scores, facts = score_through_pipeline(settings, rec)
            _print_scores(f"bike supervision (embedded pipeline) on {rec}: {facts['fixes']:,} fixes, "
                          f"{facts['seconds']:.1f} s", scores, facts["interval_ms"])

    @bench_app.command("bikes")
    def bench_bikes(
        bikes: Annotated[int, typer.Option(
            help="Fleet size of the simulated recordings (100,000 bikes x 0.5 h: 1.17M fixes, long enough that the "
            "pipeline's fixed costs, joining the groups and the final drain into ClickHouse, weigh little; 30,000: "
            "349k fixes, a few seconds of which are those costs).")] = 100_000,
        hours: Annotated[float, typer.Option(help="Event-time length of the simulated recordings.")] = 0.5,
        partitions: Annotated[int, typer.Option(help="Partitions of the topics.")] = 4,
        tracked: Annotated[int, typer.Option(help="Bikes tracked by the supervisor in the memory figure.")] = 150_000,
        modes: Annotated[str, typer.Option(help="Comma-separated: single (one fix per message), batched "
                                                "(operator batches).")] = "single,batched",
        workers: Annotated[str, typer.Option(help="Worker processes, comma-separated layouts to run one after "
                                                  "the other (e.g. 1,3): 1 = one --role all worker; N > 1 = one "
                                                  "--role sinks worker (chDB is single-process) and N-1 --role "
                                                  "streams workers sharing the partitions (two cores: 3 keeps "
                                                  "both busy).")] = "1,3",
        baseline: Annotated[bool, typer.Option(help="Also run the reference job per mode: a raw aiokafka geofence "
                                                    "loop, vectorized, on the same broker and recording (after the "
                                                    "first layout's workers stopped), and print each pipeline "
                                                    "figure as a ratio of it.")] = True,
        cost_split: Annotated[bool, typer.Option(help="Instead of the figures above, per mode: run the last layout of "
                                                      "--workers four times, with the real bike supervisor and with "
                                                      "three stand-ins that take part of its work away (its rules' "
                                                      "CPU; that and its per-bike state; nearly all its outputs, by "
                                                      "supervising 1 bike in 100), and print each run's fixes/s and "
                                                      "CPU µs per fix against the full run's: where a fix's CPU "
                                                      "goes.")] = False,
    ) -> None:
        """GPS fixes/s through the bike agents end to end (embedded Tansu -> worker -> ClickHouse rows, violations
        detected), with one fix per message and with operator batches, per worker layout, timed from partition
        assignment to drained (every lag 0), with the moments every fix, and the last row of any table, was stored
        (the rest of the window is the offset commits and the drain check); the per-bike violations
        stored next to the pure model's on the same recording (every layout must match it); each process's CPU
        microseconds per fix (workers by role, the broker); memory per tracked bike (tracemalloc on the
        supervisor state) at --tracked bikes; and the reference job's fixes/s on the same recording (a raw
        aiokafka geofence loop: decode, STRtree lookup, count per zone), with the pipeline's figure as a ratio of
        it. Prints the figures of this run: on a shared machine compare layouts, modes and the reference within
        one run (the figures of separate runs can differ by 2x)."""
        try:
            layouts = [int(w) for w in workers.split(",") if w.strip()]
        except ValueError:
            raise typer.BadParameter(f"not a comma-separated list of worker counts: {workers!r}",
                                     param_hint="--workers") from None
        if not layouts or min(layouts) < 1:
            raise typer.BadParameter("worker counts are 1 or more", param_hint="--workers")
        from citystream.bikes_bench import (
            memory_per_bike,
            model_violations,
            pipeline_throughput,
            supervisor_throughput,
        )

        table = Table(title="citystream bench bikes", title_justify="left")
        for c in ("figure", "value", "detail"):
            table.add_column(c)
        settings = settings_of(partitions=partitions)
        if cost_split:
            _cost_split(table, settings, [m.strip() for m in modes.split(",") if m.strip()], layouts[-1], hours, bikes)
            console.print(table)
            return
        for mode in [m.strip() for m in modes.split(",") if m.strip()]:
            rec = _simulated(hours, bikes, seed=1, batched=mode == "batched")
            with console.status(f"{mode}: the pure model on {rec}"):
                model, model_rate = model_violations(settings, rec)
            reference = None
            for n in layouts:
                with console.status(f"{mode}: replaying {rec} into the embedded pipeline, {n} worker process(es)"
                                    + (", then the reference job" if baseline and reference is None else "")):
                    run = pipeline_throughput(settings, rec, workers=n, baseline=baseline and reference is None)
                reference = reference or run.baseline
                _row(table, mode, n, run, model, reference)
            if reference is not None:
                table.add_row(f"reference job, {mode}", f"{reference.fixes_per_s:,.0f} fixes/s",
                              f"raw aiokafka geofence, vectorized (getmany, orjson, one STRtree lookup per batch, "
                              f"count per zone; no state, output or ClickHouse): {reference.fixes:,} fixes in "
                              f"{reference.seconds:.1f} s, same broker and recording; CPU µs per fix "
                              f"{reference.cpu_s * 1e6 / max(reference.fixes, 1):.1f} (its process)")
            table.add_row(f"supervisor model on the recording, {mode}", f"{model_rate:,.0f} fixes/s",
                          f"in process, one supervisor per partition ({partitions}), batches of 5,000 fixes, decoding "
                          f"not timed: per-bike rules for the fixes where something happens to their bike")
        with console.status("supervisor alone (in-process)"):
            rate, n = supervisor_throughput(settings)
        table.add_row("supervisor model alone", f"{rate:,.0f} fixes/s", f"{n:,} fixes, batches of 5,000, vectorized, "
                      "a synthetic steady state (few events: the model's ceiling)")
        with console.status(f"memory of {tracked:,} tracked bikes"):
            per_bike, row = memory_per_bike(settings, tracked)
        table.add_row("memory per tracked bike", f"{per_bike:,.0f} B", f"tracemalloc over {tracked:,} bikes "
                      f"(state row {row} B + id and index)")
        console.print(table)


def _row(table: Table, mode: str, workers: int, run: Any, model: int, reference: Any = None) -> None:
    """One end-to-end figure of ``bench bikes`` (and its ratio to the reference job of the same mode)."""
    label = f"end to end, {mode}" + (f", {workers} workers" if workers > 1 else "")
    stored = (f"{run.violations:,} violations ({run.violation_rows:,} rows written), of which {run.per_bike:,} per "
              f"bike (pure model: {model:,}), {run.fix_rows:,} fix rows; worker peak RSS {run.peak_rss_mb:,.0f} MB")
    if not run.timed:
        table.add_row(label, "not timed",
                      f"all {run.fixes:,} fixes were stored before every worker held its partitions (while the "
                      f"group formed): too few to time {workers} workers, replay more (--bikes, --hours); {stored}")
        return
    fix_rows_at, rows_at, to_rows = run.fix_rows_s, run.rows_s, run.fixes_per_s_to_rows
    cores = os.cpu_count() or 1
    bound = run.cpu_bound(cores)
    table.add_row(label, f"{run.fixes_per_s:,.0f} fixes/s"
                  + (f"\n= {run.fixes_per_s / reference.fixes_per_s:.2g} × reference" if reference else ""),
                  f"{run.fixes:,} fixes in {run.messages:,} messages, {run.seconds:.1f} s"
                  + (f" after {run.before_t0:,} stored during the group's rebalance" if run.before_t0 else "")
                  + f"; {workers} worker process{'es' if workers > 1 else ''}; {stored}; CPU µs per fix: "
                  + ", ".join(f"{name} {us:.1f}" for name, us in run.cpu_us_per_fix())
                  + (f" ({run.cpu_us_total:.1f} in all: at most {bound:,.0f} fixes/s on "
                     f"{cores} cores with none ever idle)" if bound else "")
                  + f"; cores busy {run.cores_busy:.2f} of {cores}"
                  + (f"; every fix a row after {fix_rows_at:.1f} s" if fix_rows_at is not None else "")
                  + (f"; the last row of any table after {rows_at:.1f} s ({to_rows:,.0f} fixes/s to it), the rest of "
                     "the window the offset commits and the drain check" if to_rows else ""))


def _cost_split(table: Table, settings: Any, modes: list[str], workers: int, hours: float, bikes: int) -> None:
    """``bench bikes --cost-split``: the full pipeline, then each stand-in of ``COST_SPLIT``, per mode."""
    from citystream.bikes_bench import COST_SPLIT, cost_split

    cores = os.cpu_count() or 1
    for mode in modes:
        rec = _simulated(hours, bikes, seed=1, batched=mode == "batched")
        with console.status(f"{mode}: the pure model's events, then {len(COST_SPLIT) + 1} runs of {workers} worker "
                            "process(es): the full pipeline and each stand-in for the supervisor"):
            runs = cost_split(settings, rec, workers)
        full = runs[0][2].cpu_us_total
        for label, what, run, model in runs:
            label = f"{mode}, {workers} worker{'s' if workers > 1 else ''}: {label}"
            if not run.timed:
                table.add_row(label, "not timed",
                              f"all {run.fixes:,} fixes were stored while the group formed: replay more (--bikes, "
                              f"--hours); {run.per_bike:,} per-bike violations stored (pure model: {model:,})")
                continue
            bound = run.cpu_bound(cores)
            table.add_row(label, f"{run.fixes_per_s:,.0f} fixes/s",
                          (f"{what}; " if what else "") + f"{run.fixes:,} fixes, {run.seconds:.1f} s; "
                          + "CPU µs per fix: " + ", ".join(f"{name} {us:.1f}" for name, us in run.cpu_us_per_fix())
                          + f" ({run.cpu_us_total:.1f} in all" + (f", {run.cpu_us_total - full:+.1f} against the "
                                                                  "full pipeline" if what else "")
                          + (f"; at most {bound:,.0f} fixes/s on {cores} cores with none ever idle" if bound else "")
                          + f"); cores busy {run.cores_busy:.2f}"
                          + (f"; {run.fixes_per_s_to_rows:,.0f} fixes/s to the last row" if run.fixes_per_s_to_rows
                             else "")
                          + f"; {run.per_bike:,} per-bike violations stored (pure model on the fixes it sees: {model:,})")


def _print_scores(title: str, scores: dict[str, Any], interval_ms: int) -> None:
    table = Table(title=title, title_justify="left")
    for c in ("kind", "found", "right", "precision", "truth", "found", "recall", "opened err max",
              f"err <= {interval_ms // 1000} s"):
        table.add_column(c, no_wrap=True)
    table.caption = "truth: violations lasting at least the grace period; opened error: |detected - true lock time|"
    for kind, s in scores.items():
        table.add_row(kind, f"{s.detected:,}", f"{s.matched:,}", f"{s.precision:.2%}", f"{s.expected:,}",
                      f"{s.found:,}", f"{s.recall:.2%}", f"{s.error_max_s:.1f} s", f"{s.within(interval_ms):.2%}")
    console.print(table)
