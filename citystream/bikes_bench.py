"""Bike supervision measured end to end on the embedded stack, and its memory per tracked bike.

``pipeline_throughput`` loads a recording's GPS feed into a fresh embedded broker, then starts a real
``citystream worker --role all`` process and times it from partition assignment until every fix is a
ClickHouse row, violations are stored and every consumer lag is 0 (read from the worker's Prometheus
metrics). With ``baseline``, the raw aiokafka geofence job (:mod:`citystream.geofence_baseline`) then reads
the same topic on the same broker, so the pipeline's figure comes with a ratio measured in the same run.
``score_through_pipeline`` does the same and scores the violations read back from ClickHouse.

Each run works in a scratch directory (broker log, workers' logs, chDB), removed afterwards; kept, and named
in the error, when the run fails.
"""

from __future__ import annotations

__all__ = ["PipelineRun", "pipeline_throughput", "score_through_pipeline", "supervisor_throughput",
           "memory_per_bike", "model_violations", "cost_split", "COST_SPLIT"]

import gc
import os
import shutil
import signal
import subprocess
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from citystream.config import Settings
from citystream.embedded import TansuBroker, free_port
from citystream.geofence_baseline import BaselineRun, run_baseline
from citystream.workers import WorkerProcess, cpu_seconds, metric_sum, query_chdb
from models.bikes import BikeSupervisor, Event, Violation
from models.bikes.bench import bench_process, synthetic_fleet
from models.gps import FixBatch
from replay.produce import produce_recording
from replay.recording import Recording
from replay.simulate.truth import read_truth
from streams.agents.bikes_geo import load_bike_setup
from streams.topics import FEEDS, ensure_topics

_VIOLATIONS = ("SELECT kind, subject_id, toUnixTimestamp64Milli(opened_at), toUnixTimestamp64Milli(reported_at), "
               "status FROM bike_violations FINAL")


@dataclass(frozen=True)
class PipelineRun:
    """One end-to-end run: fixes and messages replayed, seconds from assignment to drained, rows stored."""

    fixes: int
    messages: int
    seconds: float
    before_t0: int  # fixes stored before every worker held its partitions (not timed)
    violation_rows: int  # rows written (a batch delivered again after a rebalance writes its rows again)
    fix_rows: int
    peak_rss_mb: float = 0.0  # the largest worker process's peak resident memory (VmHWM)
    violations: int = 0  # distinct violations stored (FINAL), read back after the workers stopped
    per_bike: int = 0  # of which per-bike kinds (the supervisor's; the rest are the fence and fleet stages')
    cpu_s: tuple[tuple[str, float], ...] = ()  # (process, CPU seconds in the timed window): each worker's role, "broker"
    baseline: BaselineRun | None = None  # the raw aiokafka geofence job on the same topic, after the workers
    #: At each scrape from assignment to drained: (seconds since assignment, fix rows stored since, rows of every
    #: table stored since).
    progress: tuple[tuple[float, float, float], ...] = ()

    @property
    def fix_rows_s(self) -> float | None:
        """Seconds from assignment until every fix was a ClickHouse row (the first scrape that saw it).

        >>> PipelineRun(1000, 1000, 5.0, 0, 0, 1000, progress=((0.5, 0, 0), (1.0, 600, 610), (1.5, 1000, 1020),
        ...                                                      (2.0, 1000, 1030), (2.5, 1000, 1030))).fix_rows_s
        1.5
        """
        return next((t for t, fix_rows, _ in self.progress if fix_rows >= self.fixes - self.before_t0), None)

    @property
    def rows_s(self) -> float | None:
        """Seconds from assignment until the last row of any table was stored (the first scrape that saw the final
        count): the end of "broker to ClickHouse rows". The rest of :attr:`seconds` is bookkeeping: the workers'
        offset commits (every second) and the lag metrics' refresh, which the drain check waits for.

        >>> PipelineRun(1000, 1000, 5.0, 0, 0, 1000, progress=((0.5, 0, 0), (1.0, 600, 610), (1.5, 1000, 1020),
        ...                                                      (2.0, 1000, 1030), (2.5, 1000, 1030))).rows_s
        2.0
        """
        if not self.progress:
            return None
        final = self.progress[-1][2]
        return next(t for t, _, rows in self.progress if rows >= final)

    @property
    def fixes_per_s_to_rows(self) -> float | None:
        """Fixes per second from assignment to the last row stored (:attr:`rows_s`)."""
        return (self.fixes - self.before_t0) / self.rows_s if self.rows_s else None

    @property
    def fixes_per_s(self) -> float:
        return (self.fixes - self.before_t0) / max(self.seconds, 1e-9)

    @property
    def timed(self) -> bool:
        """Whether any fix was stored inside the timed window. A recording small enough for the first workers of
        a layout to store it all while the group still forms (seconds on Tansu) gives no figure for the layout.

        >>> PipelineRun(1000, 1000, 2.0, 400, 0, 1000).timed, PipelineRun(1000, 1000, 2.0, 1000, 0, 1000).timed
        (True, False)
        """
        return self.fixes > self.before_t0

    @property
    def cores_busy(self) -> float:
        """CPU seconds of the timed processes (workers, broker) per second of the timed window: how much of the
        machine's cores the pipeline kept busy (below the core count: stages waited on each other).

        >>> PipelineRun(1000, 1000, 2.0, 0, 0, 0, cpu_s=(("all", 1.5), ("broker", 0.5))).cores_busy
        1.0
        """
        return sum(cpu for _, cpu in self.cpu_s) / max(self.seconds, 1e-9)

    def cpu_us_per_fix(self) -> list[tuple[str, float]]:
        """Per process, CPU microseconds per fix timed (where a fix's cost goes, whatever the cores)."""
        timed = max(self.fixes - self.before_t0, 1)
        return [(name, cpu * 1e6 / timed) for name, cpu in self.cpu_s]

    @property
    def cpu_us_total(self) -> float:
        """CPU microseconds per fix timed, summed over the processes."""
        return sum(us for _, us in self.cpu_us_per_fix())

    def cpu_bound(self, cores: int) -> float | None:
        """Fixes per second that ``cores`` could carry at this run's CPU per fix (:attr:`cpu_us_total`) with
        none of them ever idle: the most this layout can reach on the machine, whatever the waits.

        >>> PipelineRun(1000, 1000, 1.0, 0, 0, 0, cpu_s=(("sinks", 0.004), ("streams", 0.006))).cpu_bound(2)
        200000.0
        """
        total = self.cpu_us_total
        return cores * 1e6 / total if total > 0 else None


def _count_fixes(rec: Recording) -> int:
    n = 0
    for m in rec.iter_feed("bike_gps"):
        doc = orjson.loads(m.value)
        n += len(doc["fixes"]) if isinstance(doc, dict) and "fixes" in doc else len(doc) if isinstance(doc, list) else 1
    return n


_sum = metric_sum  # over several workers' samples (a worker label tells them apart)


@contextmanager
def _scratch() -> Iterator[Path]:
    """A scratch directory, removed after a run that went well (kept for its logs when it failed)."""
    work = Path(tempfile.mkdtemp(prefix="citystream-bikes-run-"))
    try:
        yield work
    except BaseException as e:
        e.add_note(f"the run's broker and worker logs are kept in {work}")
        raise
    shutil.rmtree(work, ignore_errors=True)


def _run(settings: Settings, rec: Recording, timeout_s: float, work: Path, workers: int = 1,
         baseline: bool = False, worker_env: dict[str, str] | None = None, violations: bool = True
         ) -> tuple[PipelineRun, str]:
    """Replay ``rec``'s GPS feed, run the workers until drained; returns the run and its chDB DSN (in ``work``).

    ``workers`` = 1: one ``--role all`` worker. More: one ``--role sinks`` worker (chDB is single-process) and
    ``workers - 1`` ``--role streams`` workers in one group, sharing the partitions. ``baseline``: then run the
    reference geofence job on the same topic (the workers stopped). ``worker_env``: more of the workers' settings.
    ``violations``: the run stores some (drained means they are stored too)."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    dsn = f"chdb://{work / 'clickhouse'}"
    fixes = _count_fixes(rec)
    roles = ["all"] if workers <= 1 else ["sinks", *["streams"] * (workers - 1)]
    ports = [free_port() for _ in roles]
    with TansuBroker(log_path=work / "tansu.log") as broker:
        s = Settings(**{**settings.model_dump(), "broker": broker.url, "topic_prefix": prefix, "app_id": prefix})
        ensure_topics(s)
        stats = produce_recording(broker.bootstrap, rec.merged(["bike_gps"]), lambda f: s.topic(FEEDS[f]))
        procs: list[WorkerProcess] = []
        try:
            for i, (role, port) in enumerate(zip(roles, ports, strict=True)):
                env = dict(os.environ)
                env.update({
                    "CITYSTREAM_BROKER": broker.url, "CITYSTREAM_CLICKHOUSE_DSN": dsn,
                    "CITYSTREAM_TOPIC_PREFIX": prefix, "CITYSTREAM_APP_ID": prefix,
                    "CITYSTREAM_PARTITIONS": str(s.partitions),
                    "CITYSTREAM_DATA_DIR": str(work / f"var{i}"), "CITYSTREAM_MONITOR_INTERVAL_S": "0.5",
                    "CITYSTREAM_GEOGRAPHY": str(rec.path / "geography.geojson"),
                    "CITYSTREAM_STANDBY_REPLICAS": "0",  # two cores: no worker replays another's changelog
                    **(worker_env or {}),
                })
                procs.append(WorkerProcess.start(role, env, work / f"worker{i}.log", port))
            pids = [(role, p.proc.pid) for role, p in zip(roles, procs, strict=True)]
            if broker.process is not None:
                pids.append(("broker", broker.process.pid))
            t0, t1, before, m, cpu, progress = _wait(procs, fixes, timeout_s, pids, violations)
            peak_mb = max(p.peak_rss_mb() for p in procs)
            for p in procs:
                if crash := p.crashed():  # a crashed agent stops acking: "idle" would pass for drained
                    raise RuntimeError(f"an agent crashed: {crash}")
        finally:
            for p in procs:
                if p.proc.poll() is None:
                    p.proc.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.proc.wait(30)
                except subprocess.TimeoutExpired:
                    p.proc.kill()
        base = run_baseline(broker.bootstrap, s.topic(FEEDS["bike_gps"]), fixes, rec.path / "geography.geojson",
                            timeout_s) if baseline else None
    kinds = ", ".join(f"'{k}'" for k in PER_BIKE_KINDS)
    distinct, per_bike = (rows[0][0] for rows in query_chdb(dsn, [
        "SELECT count() FROM bike_violations FINAL",
        f"SELECT count() FROM bike_violations FINAL WHERE kind IN ({kinds})"]))
    run = PipelineRun(fixes, stats.total, t1 - t0, int(before),
                      int(_sum(m, "citystream_sink_rows_total", table="bike_violations")),
                      int(_sum(m, "citystream_sink_rows_total", table="bike_fixes")), peak_mb, int(distinct),
                      int(per_bike), cpu_s=cpu, baseline=base, progress=progress)
    return run, dsn


#: ``thinned:N`` of the cost split's frame: the supervisor sees the fixes of 1 bike in N.
THINNED = 100

#: Violation kinds the bike supervisor decides per bike (the pure model's, :func:`model_violations`).
PER_BIKE_KINDS = ("no_parking", "outside_fence", "zombie", "black_bike")


def model_violations(settings: Settings, recording: Path) -> tuple[int, float]:
    """Distinct per-bike violations of the recording through the pure model (one supervisor per partition, as
    ``citystream.bikes_eval.supervise``): what every pipeline run should store, whatever its layout; and the
    model's fixes/s on it (batches of 5,000 fixes split per partition, decoding not timed)."""
    from citystream.bikes_eval import read_fix_batches, supervise
    from streams.agents.bikes_geo import load_bike_setup

    rec = Recording.open(recording)
    setup = load_bike_setup(Settings(**{**settings.model_dump(), "geography": rec.path / "geography.geojson"}))
    batches = list(read_fix_batches(rec))
    started = time.perf_counter()
    events, _ = supervise(batches, setup.config, setup.index, partitions=settings.partitions)
    rate = sum(len(b) for b in batches) / max(time.perf_counter() - started, 1e-9)
    return _distinct_violations(events), rate


def _distinct_violations(events: Iterable[Event]) -> int:
    from streams.agents.bikes_rows import output_rows

    return len({r["violation_id"] for r in output_rows(list(events)) if r["t"] == "violation"})


def _wait(procs: list[WorkerProcess], fixes: int, timeout_s: float, pids: list[tuple[str, int]],
          violations: bool = True) -> tuple[float, float, float, dict, tuple[tuple[str, float], ...], tuple[tuple[float, float, float], ...]]:
    """(assigned at, drained at, fix rows stored when assigned, last metrics of all workers, CPU seconds each of
    ``pids`` used from assigned to drained, :attr:`PipelineRun.progress`).

    Assigned: every worker holds partitions (with several workers, after the group's rebalance; fixes stored
    before are not timed). Drained: every fix and (``violations``) some violations stored, then settled for 1 s (the drain
    time is when it first settled)."""
    deadline = time.monotonic() + timeout_s
    t0 = done_at = None
    stored_at_t0 = rows_at_t0 = 0.0
    cpu0 = cpu1 = [0.0] * len(pids)
    progress: list[tuple[float, float, float]] = []
    m: dict = {}
    ports = [p.metrics_port for p in procs]
    while time.monotonic() < deadline:
        for p in procs:
            if p.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {p.proc.returncode}: {p.tail(600)}")
        try:
            each = [p.metrics() for p in procs]
        except OSError:
            time.sleep(0.2)
            continue
        m = {}
        for i, one in enumerate(each):  # one key space: the workers' series apart by a worker label
            m.update({(name, (*labels, ("worker", str(i)))): v for (name, labels), v in one.items()})
        now = time.monotonic()
        fix_rows, all_rows = _sum(m, "citystream_sink_rows_total", table="bike_fixes"), _sum(m, "citystream_sink_rows_total")
        if t0 is None and all(_sum(m, "citystream_assigned_partitions", worker=str(i)) > 0 for i in range(len(ports))):
            t0, stored_at_t0, rows_at_t0 = now, fix_rows, all_rows
            cpu0 = [cpu_seconds(pid) for _, pid in pids]
        if t0 is not None and done_at is None:
            progress.append((now - t0, fix_rows - stored_at_t0, all_rows - rows_at_t0))
        stored = fix_rows >= fixes and (not violations or _sum(m, "citystream_sink_rows_total",
                                                               table="bike_violations") > 0)
        # Settled: every lag is 0, or no worker finished a message for 3 s (a Faust commit can stall after
        # all the work is done; the same rule as the integration harness).
        settled = _sum(m, "citystream_consumer_lag") == 0 or min(
            _sum(m, "citystream_idle_seconds", worker=str(i)) for i in range(len(ports))) >= 3
        if t0 is not None and stored and settled:
            if done_at is None:
                done_at, cpu1 = now, [cpu_seconds(pid) for _, pid in pids]
            if now - done_at >= 1.0:  # stable: nothing more arrives downstream
                cpu = tuple((name, b - a) for (name, _), a, b in zip(pids, cpu0, cpu1, strict=True))
                return t0, done_at, stored_at_t0, m, cpu, tuple(progress)
        else:
            done_at = None
        time.sleep(0.5)  # each scrape costs the worker CPU (the exposition of every metric)
    raise TimeoutError(f"the pipeline did not drain within {timeout_s:.0f} s; {_stall_report(m, len(ports), fixes)}")


def _stall_report(m: dict, workers: int, fixes: int) -> str:
    """What the workers' last metrics say about a run that did not drain: rows stored, and per worker its lag,
    idle seconds and each bike partition's supervision gauges (watermark, held fixes, sources it waits for).

    >>> m = {("citystream_sink_rows_total", (("table", "bike_fixes"), ("worker", "0"))): 10.0,
    ...      ("citystream_consumer_lag", (("partition", "1"), ("topic", "t"), ("worker", "0"))): 3.0,
    ...      ("citystream_bike_supervision", (("measure", "held_fixes"), ("partition", "1"), ("worker", "0"))): 7.0}
    >>> _stall_report(m, 1, 12)
    'stored 10 of 12 fixes and 0 violation rows; worker 0: lag 3, idle 0 s, partition 1 held_fixes 7'
    """
    parts = [f"stored {_sum(m, 'citystream_sink_rows_total', table='bike_fixes'):.0f} of {fixes} fixes and "
             f"{_sum(m, 'citystream_sink_rows_total', table='bike_violations'):.0f} violation rows"]
    for i in range(workers):
        gauges = sorted((dict(labels)["partition"], dict(labels)["measure"], v) for (name, labels), v in m.items()
                        if name == "citystream_bike_supervision" and ("worker", str(i)) in labels)
        parts.append(f"worker {i}: lag {_sum(m, 'citystream_consumer_lag', worker=str(i)):.0f}, idle "
                     f"{_sum(m, 'citystream_idle_seconds', worker=str(i)):.0f} s"
                     + "".join(f", partition {p} {k} {v:.0f}" for p, k, v in gauges))
    return "; ".join(parts)


def pipeline_throughput(settings: Settings, recording: Path, timeout_s: float = 900.0, workers: int = 1,
                        baseline: bool = False) -> PipelineRun:
    """GPS fixes/s of the whole pipeline on a recording (see the module docstring)."""
    with _scratch() as work:
        return _run(settings, Recording.open(recording), timeout_s, work, workers, baseline)[0]


#: ``bench bikes --cost-split``: (label, ``CITYSTREAM_BENCH_SUPERVISOR`` with ``{events}`` for the events file, what
#: the stand-in takes away; see :mod:`models.bikes.whatif`).
COST_SPLIT = (
    ("the supervisor's rules free", "precomputed:{events}",
     "its events precomputed by the pure model and released by event time; every output and per-bike state entry "
     "still sent, keyed, counted and stored"),
    ("... and no per-bike state", "precomputed-stateless:{events}",
     "the same outputs, no bike_state changelog entries"),
    (f"the frame: 1 bike in {THINNED} supervised", f"thinned:{THINNED}",
     f"the real model fed the fixes of 1 bike in {THINNED}: almost no detections, parkings, counts or state entries; the "
     "ingest, bike.fixes, zone counting, the raw-fix sink and every hop as in the full run"),
)


def cost_split(settings: Settings, recording: Path, workers: int = 3, timeout_s: float = 900.0
               ) -> list[tuple[str, str, PipelineRun, int]]:
    """The full pipeline on ``recording`` and then again with each stand-in of :data:`COST_SPLIT` for the bike
    supervisor: (label, what it takes away, run, the per-bike violations the pure model finds on what that
    supervisor sees) per run, the full one first. What the pipeline costs without the rules' CPU, without their
    state, and without their outputs, in one process layout and one sitting."""
    from citystream.bikes_eval import read_fix_batches, supervise_partitions
    from models.bikes.whatif import dump_events, supervisor_factory

    rec = Recording.open(recording)
    out = []
    with _scratch() as work:
        setup = load_bike_setup(Settings(**{**settings.model_dump(), "geography": rec.path / "geography.geojson"}))
        batches = list(read_fix_batches(rec))
        events, _ = supervise_partitions(batches, setup.config, setup.index, settings.partitions)
        dump_events(work / "events.jsonl", events)
        everything = _distinct_violations(e for part in events for e in part)
        thinned_events, _ = supervise_partitions(batches, setup.config, setup.index, settings.partitions, make=(
            supervisor_factory(f"thinned:{THINNED}", setup.config, setup.index)))  # the workers' own stand-in
        thinned = _distinct_violations(e for part in thinned_events for e in part)
        runs = [("the full pipeline", "", "", everything)] + [
            (label, spec.format(events=work / "events.jsonl"), what, thinned if spec.startswith("thinned") else everything)
            for label, spec, what in COST_SPLIT]
        for i, (label, spec, what, model) in enumerate(runs):
            (work / str(i)).mkdir()
            run, _ = _run(settings, rec, timeout_s, work / str(i), workers,
                          worker_env={"CITYSTREAM_BENCH_SUPERVISOR": spec}, violations=model > 0)
            out.append((label, what, run, model))
    return out


def score_through_pipeline(settings: Settings, recording: Path, timeout_s: float = 900.0
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay a simulated recording through the embedded pipeline and score the stored violations.

    The stream's event time stops ``allowed_lateness`` behind the newest fix, so the scoring horizon is
    that much before the end of the recording (see :mod:`citystream.bikes_eval`).
    """
    from citystream.bikes_eval import score_violations

    rec = Recording.open(recording)
    with _scratch() as work:
        run, dsn = _run(settings, rec, timeout_s, work)
        rows = query_chdb(dsn, [_VIOLATIONS])[0]
    found = [Violation("open", k, subject, reported, opened, "", 0.0) for k, subject, opened, reported, _ in rows]
    head, truth = read_truth(rec.path / str(rec.extra.get("ground_truth", "ground_truth.jsonl.gz")))
    cfg = load_bike_setup(settings).config
    end = int(head["end_ts"])
    horizon = end - cfg.allowed_lateness_ms
    cutoff = horizon - cfg.grace_ms - (cfg.confirm_wait_ms if cfg.confirm_parking else 0)
    interval = int(head.get("gps_interval_s", 30)) * 1000
    scores = score_violations(found, truth, cutoff, end, cfg.grace_ms, interval)
    return scores, {"fixes": run.fixes, "seconds": run.seconds, "interval_ms": interval}


def supervisor_throughput(settings: Settings, bikes: int = 10_000, steps: int = 20) -> tuple[float, int]:
    """Fixes/s of ``BikeSupervisor.process`` alone (no broker), on a synthetic fleet parking at fences of
    the configured geography: the model's ceiling."""
    setup = load_bike_setup(settings)
    fences = [z for z in setup.index.zones if z.kind == "parking_fence"]
    c = np.array([z.geometry.centroid.coords[0] for z in fences])
    feed = synthetic_fleet(setup.index, (c[:, 0], c[:, 1]), bikes, steps)
    rate, _ = bench_process(lambda: BikeSupervisor(setup.config, setup.index), feed, warmup=bikes)
    return rate, len(feed)


def memory_per_bike(settings: Settings, n: int = 150_000, seed: int = 0) -> tuple[float, int]:
    """Bytes per tracked bike of a supervisor holding ``n`` bikes (tracemalloc: rows, ids, index), and the
    bytes of one state row."""
    setup = load_bike_setup(settings)
    sup = BikeSupervisor(setup.config, setup.index)
    rng = np.random.default_rng(seed)
    lon0, lat0 = setup.index.projection.lon0, setup.index.projection.lat0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ids = [f"{('MT', 'HB', 'QJ')[i % 3]}-{i:07d}" for i in range(n)]
        ops = [("meituan", "hellobike", "qingju")[i % 3] for i in range(n)]
        batch = FixBatch(ids, ops, 1_793_577_600_000 + np.arange(n, dtype=np.int64),
                         lat0 + rng.uniform(-0.05, 0.05, n), lon0 + rng.uniform(-0.05, 0.05, n), rng.random(n) < 0.8)
        del ids, ops
        sup.process(batch)
        sup.advance_to(1_793_577_600_000 + n + 3_600_000)  # nothing left held back: the steady state
        del batch
        gc.collect()
        per_bike = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    return per_bike, sup.states.data.dtype.itemsize
