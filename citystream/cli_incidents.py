"""Commands of the incidents domain: ``citystream eval incidents`` and ``citystream bench incidents``."""

from __future__ import annotations

__all__ = ["register"]

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)


def _group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-command group ``name`` of ``app`` (shared with other domains), created if missing."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


def _table(title: str, rows: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    return t


def register(app: typer.Typer, settings_of: Any) -> None:
    """Add ``eval incidents`` and ``bench incidents``; ``settings_of(**overrides)`` builds the settings."""
    evals = _group(app, "eval", "Score detectors against ground truth or labelled data.")
    bench = _group(app, "bench", "Benchmarks that print throughput figures.")

    @evals.command("incidents")
    def eval_incidents(
        recording: Annotated[Path, typer.Argument(help="A simulator recording (with ground_truth.jsonl.gz).")],
        partitions: Annotated[int | None, typer.Option(help="Partitions to route cases over, as the pipeline would (CITYSTREAM_PARTITIONS).")] = None,
        show: Annotated[int, typer.Option(help="List at most this many missed or false items.")] = 10,
    ) -> None:
        """Run the recording's case events through the incident stream's own per-partition code (case flows,
        then duplicate linking) with a heartbeat at the recording's end, and score against the ground truth:
        every deadline breach must be found with its exact breach time, and nothing else. Exit code 1 if not."""
        from citystream.incidents_eval import run_recording, score_breaches, score_links, truth_of
        from replay.recording import Recording, RecordingError
        from streams.agents.incidents_setup import incident_setup

        settings = settings_of(partitions=partitions)
        try:
            rec = Recording.open(recording)
            _, truth = truth_of(recording)
        except (RecordingError, FileNotFoundError) as exc:
            err.print(f"[red]cannot evaluate:[/] {exc}")
            raise typer.Exit(2) from None
        if "incident_events" not in rec.feeds:
            err.print(f"[red]{recording} has no incident_events feed[/]")
            raise typer.Exit(2)
        run = run_recording(rec, incident_setup(settings))
        b, links = score_breaches(truth, run.breaches()), score_links(truth, run.links())
        rejects = Counter(r.reason for r in run.rejects)
        console.print(_table(f"citystream eval incidents {recording} ({settings.partitions} partitions)", [
            ("case events", run.events), ("transitions applied", run.counts["applied"]),
            ("dead letters", ", ".join(f"{k} {v}" for k, v in sorted(rejects.items())) or "0"),
            ("deadline breaches in truth", b.truth), ("breaches detected", b.detected),
            ("exact matches (case, step, start, breach time to the ms)", b.matched),
            ("missed breaches", len(b.missed)), ("false breaches", len(b.false)),
            ("duplicate links in truth", links.truth), ("links found", links.detected),
            ("links matching the truth", links.matched),
        ]))
        for label, items in (("missed", b.missed), ("false", b.false), ("links missed", links.missed),
                             ("links not in truth", links.false)):  # fmt: skip
            for item in items[:show]:
                console.print(f"  {label}: {item}")
        raise typer.Exit(0 if b.perfect else 1)

    @bench.command("incidents")
    def bench_incidents(
        hours: Annotated[float, typer.Option(help="Event-time length of the simulated case feed.")] = 1.0,
        per_hour: Annotated[float, typer.Option(help="New cases per hour (Xiamen: ~17; a load test needs far more).")] = 3000.0,
        seed: Annotated[int, typer.Option(help="Simulator seed.")] = 5,
        workdir: Annotated[Path | None, typer.Option(help="Where the recording, broker log and ClickHouse go (default: a temp dir, removed at the end).")] = None,
    ) -> None:
        """Simulate a case feed, then measure incident events/s: in-process (the agent's pure code) and end to end
        (embedded Tansu broker → track_incidents / link_duplicates → store_incident_updates → chDB), with the
        replay at --speed max while the worker runs. Prints one table of figures from this run."""
        from citystream.incidents_bench import run_bench

        settings = settings_of(metrics_port=0)
        figures = run_bench(settings, hours=hours, per_hour=per_hour, seed=seed, workdir=workdir, console=console)
        console.print(_table("citystream bench incidents", figures))
