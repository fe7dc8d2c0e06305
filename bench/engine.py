"""The billing engine under load: many live calls with 1-minute windows on PostgreSQL, the
simulated provider answering after 50 ms, one or two worker processes pacing provider calls
under a ceiling, while another process (standing in for the API instances) puts the calls
live.

Time is real: every process reads one clock, the calls' start moment plus the real seconds
since the run began. The workers run the worker's own loop (a pass, then the polling
interval's pause; a long pass looks again for calls that fell due meanwhile), and the API
instance puts a share of the calls live every half second, each at its own moment, as
parties connect. A renewal hold's lateness = the moment the provider answered it − the
moment it became due (a hold due but not decided by the end of the run counts as late by at
least run end − due). A run takes as long as the minutes it covers.

(Until the eleventh pass of issue 15 the clock was a test clock stepped every half second,
each worker process running one pass per step while the clock stood still. That made the
calls of a step go live at the same instant, so their renewals fell due in clumps, and a
pass could not see what fell due while it ran: both made lateness worse than real time
shows. bench/HISTORY.md has the figures of both.)
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from bench.stack import (
    DSN,
    copy_database,
    drop_database,
    machine_busy_seconds,
    postgres_cpu_seconds,
    recreate_database,
)
from vidivo.app import AppContext, build_context
from vidivo.auth import service as auth_service
from vidivo.calls.models import BillingWindow, CallSession
from vidivo.calls.schemas import SessionStart
from vidivo.calls.terms import MIN_RENEWAL_LEAD_MS
from vidivo.core.clock import Clock, TestClock
from vidivo.core.config import Settings
from vidivo.links.models import Link
from vidivo.migrate import upgrade_to_head
from vidivo.models import load_all_models
from vidivo.payments.provider import Hold, HoldRequest
from vidivo.payouts import service as payouts

load_all_models()
WINDOW_MINUTES = 1
POLL_SECONDS = 0.5  # the worker's polling interval
JOIN_EVERY_SECONDS = 0.5  # the API instance puts a share of the calls live this often
JOIN_BATCHES = int(WINDOW_MINUTES * 60 / JOIN_EVERY_SECONDS)  # spread over the first window


@dataclass
class Scenario:
    sessions: int
    minutes: int
    ceiling: int
    concurrency: int
    latency_ms: int = 50
    workers: int = 1  # worker processes


@dataclass
class Recorder:
    """The moments (`time.monotonic()`) at which each renewal hold was answered."""

    answered: list[tuple[str, int, float]] = field(default_factory=list)
    calls: int = 0


def _settings(
    folder: Path, scenario: Scenario, *, latency_ms: int, ceiling: int, database_url: str = DSN
) -> Settings:
    return Settings(
        data_dir=folder,
        database_url=database_url,
        test_clock=True,
        worker=False,
        simulated_latency_ms=latency_ms,
        provider_max_requests_per_second=ceiling,
        worker_concurrency=scenario.concurrency,
        log_level="WARNING",
    )


def _instrument(context: AppContext, recorder: Recorder) -> None:
    provider = context.payments
    place_hold = provider.place_hold
    capture_hold = provider.capture_hold
    cancel_hold = provider.cancel_hold

    async def recorded_hold(request: HoldRequest, *, idempotency_key: str) -> Hold:
        hold = await place_hold(request, idempotency_key=idempotency_key)
        recorder.calls += 1
        window = int(request.metadata["window"])
        recorder.answered.append((request.metadata["session_id"], window, time.monotonic()))
        return hold

    async def counted_capture(*args: object, **kwargs: object) -> Hold:
        recorder.calls += 1
        return await capture_hold(*args, **kwargs)  # type: ignore[arg-type]

    async def counted_cancel(*args: object, **kwargs: object) -> Hold:
        recorder.calls += 1
        return await cancel_hold(*args, **kwargs)  # type: ignore[arg-type]

    provider.place_hold = recorded_hold  # type: ignore[method-assign]
    provider.capture_hold = counted_capture  # type: ignore[method-assign,assignment]
    provider.cancel_hold = counted_cancel  # type: ignore[method-assign,assignment]


async def _started_calls(
    folder: Path, scenario: Scenario, clock: TestClock, *, database_url: str = DSN
) -> list[str]:
    """Start `sessions` calls through the service layer, accepted by the host."""
    settings = _settings(folder, scenario, latency_ms=0, ceiling=10_000)
    setup = build_context(settings.model_copy(update={"database_url": database_url}), clock)
    async with setup.session_factory() as db:
        host = await auth_service.create_user(
            db, setup.clock, setup.settings, email="engine@example.com",
            password="bench password 123", display_name="Engine Host", verified=True,
        )  # fmt: skip
        await db.commit()
        await payouts.connect_simulated(db, setup.payments, clock, host)
        db.add(
            Link(
                short_code="enginebench",
                host_id=host.id,
                rate_cents=100,
                window_size_minutes=WINDOW_MINUTES,
                use_count=0,
                is_active=True,
                created_at=clock.now(),
            )
        )
        await db.commit()
    gate = asyncio.Semaphore(64)
    body = SessionStart(
        guest_name="Load", guest_email="load@example.com", payment_method_id="pm_card_visa"
    )

    async def one() -> str:
        async with gate:
            started = await setup.starts.start("enginebench", body)
            return started.session.id

    ids = await asyncio.gather(*(one() for _ in range(scenario.sessions)))
    async with setup.session_factory() as db:
        await db.execute(update(CallSession).values(host_accepted_at=clock.now()))
        await db.commit()
    await setup.engine.dispose()
    return list(ids)


async def _join(
    context: AppContext, session_ids: list[str], gate: asyncio.Semaphore | None = None
) -> None:
    """Both parties open their sockets: the calls go live now, at most 32 at a time (or as
    many as `gate`, shared by batches that overlap, lets in)."""

    async def both(session_id: str) -> None:
        await context.calls.connected(session_id, "host")
        await context.calls.connected(session_id, "guest")

    gate = gate or asyncio.Semaphore(32)

    async def gated(session_id: str) -> None:
        async with gate:
            await both(session_id)

    await asyncio.gather(*(gated(i) for i in session_ids))


class RunClock:
    """The run's clock in every process: the calls' start moment, then real time from the
    moment the run began (`began`, a `time.monotonic()` in shared memory, one clock for
    every process on the machine; 0 until the run begins)."""

    def __init__(self, start: datetime, began: Synchronized[float]) -> None:
        self._start = start
        self._began = began

    def now(self) -> datetime:
        return self.at(time.monotonic())

    def elapsed(self) -> float:
        """Seconds since the run began."""
        return (self.now() - self._start).total_seconds()

    def at(self, moment: float) -> datetime:
        """The run's time at a `time.monotonic()` moment."""
        began = self._began.value
        return self._start + timedelta(seconds=max(0.0, moment - began) if began else 0.0)


def _process_main(
    role: str,
    commands: Connection,
    folder: str,
    scenario: Scenario,
    start: datetime,
    began: Synchronized[float],
    database_url: str,
) -> None:
    run = _worker_loop if role == "worker" else _api_instance
    asyncio.run(run(commands, Path(folder), scenario, RunClock(start, began), database_url))


def _context(folder: Path, scenario: Scenario, clock: Clock, database_url: str) -> AppContext:
    settings = _settings(
        folder,
        scenario,
        latency_ms=scenario.latency_ms,
        ceiling=scenario.ceiling,
        database_url=database_url,
    )
    return build_context(settings, clock)


async def _worker_loop(
    commands: Connection, folder: Path, scenario: Scenario, clock: Clock, database_url: str
) -> None:
    """A worker process: the billing worker's own loop from "go" to "stop", then the renewal
    holds it placed (session, window, moment answered) and its figures."""
    context = _context(folder, scenario, clock, database_url)
    recorder = Recorder()
    _instrument(context, recorder)
    rss_start = _rss_mib()
    commands.send("ready")
    await asyncio.to_thread(commands.recv)  # "go"
    cpu_before = _cpu_seconds()
    loop = asyncio.create_task(context.worker.run_forever(POLL_SECONDS))
    await asyncio.to_thread(commands.recv)  # "stop"
    # A pass cancelled gives back the leases of the calls it took up; a claim cancelled on
    # its way keeps its leases until they run out (the run's database is dropped after).
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    commands.send(
        {
            "answered": recorder.answered,
            "cpu_seconds": _cpu_seconds() - cpu_before,
            "provider_calls": recorder.calls,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_start_mib": rss_start,
        }
    )
    await context.engine.dispose()


async def _api_instance(
    commands: Connection, folder: Path, scenario: Scenario, clock: RunClock, database_url: str
) -> None:
    """The API instance the parties' sockets reach: from "go", puts batch n of the calls it
    was sent live `n × JOIN_EVERY_SECONDS` later (both parties connected; a batch late
    behind a busy machine starts late, beside the ones still joining), then says so."""
    context = _context(folder, scenario, clock, database_url)
    batches: list[list[str]] = await asyncio.to_thread(commands.recv)
    commands.send("ready")
    await asyncio.to_thread(commands.recv)  # "go"
    cpu_before = _cpu_seconds()
    gate = asyncio.Semaphore(32)  # one instance's share of the pool, however late the batches
    joining = []
    for n, batch in enumerate(batches):
        # Each batch's moment on the run's clock, the one its lateness is measured against.
        await asyncio.sleep(max(0.0, n * JOIN_EVERY_SECONDS - clock.elapsed()))
        joining.append(asyncio.create_task(_join(context, batch, gate)))
    await asyncio.gather(*joining)
    commands.send({"cpu_seconds": _cpu_seconds() - cpu_before})
    await asyncio.to_thread(commands.recv)  # "stop"
    await context.engine.dispose()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Processes:
    """The run's processes on the run's clock: `workers` worker processes running the
    worker's loop and one API instance putting the calls live in `batches`."""

    def __init__(
        self, workers: int, folder: Path, scenario: Scenario, clock_start: datetime,
        began: Synchronized[float], database_url: str,
    ) -> None:  # fmt: skip
        spawn = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for role in ["api"] + ["worker"] * workers:
            ours, theirs = spawn.Pipe()
            process = spawn.Process(
                target=_process_main,
                args=(role, theirs, str(folder), scenario, clock_start, began, database_url),
            )
            process.start()
            theirs.close()  # the child's end: a child that dies is then an EOF here, not a hang
            self._pipes.append(ours)
            self._processes.append(process)
        self._api, self._workers = self._pipes[0], self._pipes[1:]

    @staticmethod
    async def _answers(pipes: list[Connection]) -> list[Any]:
        return list(await asyncio.gather(*(asyncio.to_thread(p.recv) for p in pipes)))

    async def ready(self, batches: list[list[str]]) -> None:
        self._api.send(batches)
        await self._answers(self._pipes)

    def go(self) -> None:
        for pipe in self._pipes:
            pipe.send("go")

    async def joined(self) -> dict[str, float]:
        """The API instance's figures, once every call it was sent is live."""
        answer: dict[str, float] = await asyncio.to_thread(self._api.recv)
        return answer

    async def finish(self) -> list[dict[str, Any]]:
        """The workers' figures and the holds they placed."""
        for pipe in self._pipes:
            pipe.send("stop")
        workers = await self._answers(self._workers)
        for process in self._processes:
            await asyncio.to_thread(process.join)
        return workers

    def terminate(self) -> None:
        """The processes still running stopped (a run that failed)."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()


async def prepare_calls(folder: Path, scenario: Scenario, clock_start: datetime) -> float:
    """The scenario's calls started and accepted, in `DSN`: the template every run copies;
    the seconds it took."""
    await recreate_database()
    await asyncio.to_thread(upgrade_to_head, DSN)
    started = time.monotonic()
    await _started_calls(folder, scenario, TestClock(clock_start))
    return time.monotonic() - started


async def run_scenario(scenario: Scenario, folder: Path, clock_start: datetime) -> dict[str, float]:
    """One run over a fresh copy of the prepared calls."""
    database_url = await copy_database(f"{scenario.workers}w")
    began = multiprocessing.get_context("spawn").Value("d", 0.0, lock=False)
    clock = RunClock(clock_start, began)
    processes = Processes(scenario.workers, folder, scenario, clock_start, began, database_url)
    context = _context(folder, scenario, clock, database_url)  # for reading the outcome
    async with context.session_factory() as db:
        ids = list(await db.scalars(select(CallSession.id).order_by(CallSession.id)))
    # Calls go live spread over the first window, as real calls start at any moment.
    batches = [ids[i::JOIN_BATCHES] for i in range(JOIN_BATCHES)]
    try:
        await processes.ready(batches)
        lead = min(WINDOW_MINUTES * 60, MIN_RENEWAL_LEAD_MS / 1000)
        busy_before, postgres_before = machine_busy_seconds(), postgres_cpu_seconds()
        began.value = real_started = time.monotonic()
        processes.go()
        await asyncio.sleep(scenario.minutes * 60)
        run_end = clock.now()  # renewals due by now are the run's
        api = await processes.joined()
        # Rates are taken over the whole time the workers ran: until they are told to stop.
        stopped, real_seconds = clock.now(), time.monotonic() - real_started
        busy_after, postgres_after = machine_busy_seconds(), postgres_cpu_seconds()
        stats = await processes.finish()
    finally:
        processes.terminate()
    effective = {
        (session_id, number): clock.at(answered)
        for s in stats
        for session_id, number, answered in s["answered"]
    }
    async with context.session_factory() as db:
        rows = (await db.execute(select(CallSession.id, CallSession.went_live_at))).all()
    went_live = {row[0]: row[1] for row in rows}
    # How far behind its batch's moment a call went live: a busy API instance puts calls live
    # late, and fewer renewals then fall due within the run.
    slots = {i: n * JOIN_EVERY_SECONDS for n, batch in enumerate(batches) for i in batch}
    lags = [(at - clock_start).total_seconds() - slots[i] for i, at in went_live.items() if at]
    join_lag = max(lags, default=float("nan"))
    lateness, ended_uncovered, undecided = [], 0, 0
    for session_id, start in went_live.items():
        if start is None:
            continue
        number = 2
        while True:
            # Window n is due `lead` before window n-1's paid minutes run out.
            covered_until = start + timedelta(seconds=(number - 1) * WINDOW_MINUTES * 60)
            due = covered_until - timedelta(seconds=lead)
            if due > run_end:
                break
            decided = effective.get((session_id, number))
            if decided is None or decided > run_end:
                undecided += 1  # not decided by the run's end
            if decided is None:  # nor by the time the workers stopped: late at least this
                decided = stopped
            lateness.append(max(0.0, (decided - due).total_seconds()))
            if decided > covered_until:
                ended_uncovered += 1
            number += 1
    async with context.session_factory() as db:
        windows_total = await db.scalar(select(func.count()).select_from(BillingWindow))
    await context.engine.dispose()
    await drop_database(database_url)
    cpu = sum(s["cpu_seconds"] for s in stats)
    calls = sum(s["provider_calls"] for s in stats)
    lateness.sort()
    return {
        "real_seconds": real_seconds,
        "renewals": len(lateness),
        "undecided": undecided,
        "p50_late": statistics.median(lateness) if lateness else float("nan"),
        # Nearest rank: the smallest lateness that 99 % of the renewals did not exceed.
        "p99_late": lateness[math.ceil(len(lateness) * 0.99) - 1] if lateness else float("nan"),
        "max_late": lateness[-1] if lateness else float("nan"),
        "uncovered": ended_uncovered,
        "provider_calls": calls,
        "calls_per_second": calls / real_seconds,
        "transitions_per_second": (windows_total or 0) / real_seconds,
        "cpu_percent": 100 * cpu / real_seconds,
        "api_cpu_percent": 100 * api["cpu_seconds"] / real_seconds,
        "postgres_cpu_percent": 100 * (postgres_after - postgres_before) / real_seconds,
        # Of all cores: 200 % on two. Idle seconds count too, so a core half idle shows.
        "machine_busy_percent": 100
        * len(os.sched_getaffinity(0))
        * (busy_after[0] - busy_before[0])
        / (busy_after[0] - busy_before[0] + busy_after[1] - busy_before[1]),
        "max_rss_mib": max(s["max_rss_mib"] for s in stats),
        "kib_per_live_call": 1024
        * sum(s["max_rss_mib"] - s["rss_start_mib"] for s in stats)
        / scenario.sessions,
        "cpu_ms_per_call": 1000 * cpu / max(calls, 1),
        "join_lag_max": join_lag,
    }


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(*, quick: bool) -> list[str]:
    from bench.engine_rate import measure_rate, rate_lines

    rates = [
        ("PostgreSQL", asyncio.run(measure_rate(300 if quick else 2000, 64, DSN))),
        (
            "SQLite (embedded default)",
            asyncio.run(measure_rate(100 if quick else 300, 16, "sqlite")),
        ),
    ]
    # The 10,000 one-minute calls with the ceiling lifted, on one worker process and
    # on two (the target allows two), each run over a copy of the same calls.
    base = (
        Scenario(1000, 1, 10_000, 64, latency_ms=0) if quick else Scenario(10_000, 2, 10_000, 200)
    )
    runs = [replace(base, workers=count) for count in (1, 2)]
    lines = [
        "Provider actions a second, one worker process, simulated provider at 0 ms "
        "(a burst: every call's capture and next hold due at once):",
        "",
        *rate_lines(rates),
        "",
        "| live calls | run (real time) | provider ceiling | worker processes | worker concurrency "
        "| renewal holds decided of due | late p50 s | late p99 s "
        "| windows ended before the next hold | provider calls/s | CPU ms per provider call "
        "| workers' CPU % (all processes) | API instance CPU % | PostgreSQL CPU % "
        "| machine busy % (100 a core) | worker max RSS MiB | KiB per live call |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder, clock_start = Path(scratch), datetime.now(UTC)
        setup_seconds = asyncio.run(prepare_calls(folder, base, clock_start))
        for scenario in runs:
            r = asyncio.run(run_scenario(scenario, folder, clock_start))
            lines.append(
                f"| {scenario.sessions:,} | {scenario.minutes} min | {scenario.ceiling}/s "
                f"| {scenario.workers} | {scenario.concurrency} "
                f"| {r['renewals'] - r['undecided']:,} of {r['renewals']:,} "
                f"| {r['p50_late']:.2f} | {r['p99_late']:.2f} | {r['uncovered']:,} "
                f"| {r['calls_per_second']:.0f} | {r['cpu_ms_per_call']:.2f} "
                f"| {r['cpu_percent']:.0f} | {r['api_cpu_percent']:.0f} "
                f"| {r['postgres_cpu_percent']:.0f} | {r['machine_busy_percent']:.0f} "
                f"| {r['max_rss_mib']:.0f} "
                f"| {r['kib_per_live_call']:.1f} |"
            )
            print(lines[-1], flush=True)
            verdicts.append(
                f"{scenario.sessions:,} calls, ceiling {scenario.ceiling}/s, "
                f"{scenario.workers} worker process{'es' if scenario.workers > 1 else ''}: "
                "every window had its next hold decided before it ran out: "
                f"{'yes' if r['uncovered'] == 0 else 'NO'}; p99 lateness < 1 s: "
                f"{'met' if r['p99_late'] < 1 else 'NOT met'} ({r['p99_late']:.2f} s); "
                f"the last call to go live did so {r['join_lag_max']:.2f} s after its moment."
            )
    lines += [
        "",
        f"Setting the calls up (started through the service, accepted by the host) took "
        f"{setup_seconds:.0f} s, once: each run works on a copy of that database.",
    ]
    pg = rates[0][1]
    verdicts.insert(
        0,
        f"≥ 500 provider actions/s per worker process on PostgreSQL at 0 ms: "
        f"{'met' if pg['actions_per_second'] >= 500 else 'NOT met'} "
        f"({pg['actions_per_second']:.0f}/s, {pg['cpu_ms_per_action']:.2f} CPU ms per action).",
    )
    return [
        *lines,
        "",
        *[f"- {v}" for v in verdicts],
        "",
        "Each call with 1-minute windows needs two provider calls a minute (the next hold and "
        "the finished window's capture): 10,000 calls need 333 calls/s in steady state, which "
        "no pacing under Stripe's ~100/s live limit can give. The default ceiling of 90/s "
        "carries about 2,700 such calls per API key (more with longer windows: 10-minute "
        "windows need a tenth of that); beyond it, ask Stripe for a higher limit and raise "
        "`VIDIVO_PROVIDER_MAX_REQUESTS_PER_SECOND`. The 10,000-call run shows the first "
        "minutes of that load, while the calls are still going live (their joins run in a "
        "process of their own standing in for an API instance, not in the workers' CPU). "
        "Lateness: when a renewal hold was answered against when it fell due (its window's "
        "end less the renewal lead). KiB per live call: the worker processes' peak RSS over "
        "their RSS before the calls went live, summed, divided by the calls (a worker keeps "
        "no state per call between passes; this is what a pass over all of them costs).",
    ]
