"""How fast one worker process advances provider actions, and what each one costs.

A burst, not a schedule: `sessions` calls go live, their first renewals are decided, then
the clock jumps one window ahead so every call has the same two actions due at once (the
used-up window's capture and the next window's hold), and one `run_due()` works them off.
The simulated provider answers at once (0 ms): what is left is our own CPU and database work.
Statements are counted with a SQLAlchemy cursor listener, split between the engine's own
tables and the simulated provider's (`sim_*`), which a real Stripe would not cost us;
transactions are those that sent a BEGIN and a COMMIT (autocommitted statements send neither).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.engine import Recorder, Scenario, _instrument, _join, _settings, _started_calls
from bench.stack import recreate_database
from vidivo.app import build_context
from vidivo.core.clock import TestClock
from vidivo.migrate import upgrade_to_head


@dataclass
class StatementCount:
    ours: int = 0
    simulated: int = 0
    transactions: int = 0  # committed or rolled back; an autocommitted statement is none
    by_kind: dict[str, int] = field(default_factory=dict)
    _listeners: list[tuple[Any, str, Any]] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        def count(statement: str) -> None:
            if "sim_" in statement:
                self.simulated += 1
            else:
                self.ours += 1
                kind = statement.split(None, 1)[0].upper()
                self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

        sync = engine.sync_engine

        def executed(*args: Any) -> None:
            count(str(args[2]))

        listeners: list[tuple[Any, str, Any]] = [(sync, "before_cursor_execute", executed)]

        # Statements sent on asyncpg's own connection, past SQLAlchemy (`DriverStatement`);
        # SQLAlchemy's BEGIN and COMMIT are counted as transactions below.
        def sent_by_the_driver(query: Any) -> None:
            if not query.query.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                count(query.query)

        def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
            if hasattr(record.driver_connection, "add_query_logger"):
                record.driver_connection.add_query_logger(sent_by_the_driver)

        def checkin(_dbapi: Any, record: Any) -> None:
            if hasattr(record.driver_connection, "remove_query_logger"):
                record.driver_connection.remove_query_logger(sent_by_the_driver)

        def ended(connection: Any) -> None:  # autocommitted: no BEGIN nor COMMIT was sent
            if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                self.transactions += 1

        listeners += [
            (sync.pool, "checkout", checkout),
            (sync.pool, "checkin", checkin),
            (sync, "commit", ended),
            (sync, "rollback", ended),
        ]
        for target, name, listener in listeners:
            event.listen(target, name, listener)
        self._listeners = listeners

    def detach(self) -> None:
        """Counting stops. Called with every connection back in the pool, where each one's
        query logger was taken off at its checkin."""
        for target, name, listener in self._listeners:
            event.remove(target, name, listener)
        self._listeners = []

    def round_trips(self) -> int:
        """Every statement, and each transaction's BEGIN and COMMIT (asyncpg sends both)."""
        return self.ours + self.simulated + 2 * self.transactions

    def reset(self) -> None:
        self.ours = self.simulated = self.transactions = 0
        self.by_kind = {}


def _profiler() -> cProfile.Profile | None:
    if not os.environ.get("BENCH_PROFILE"):
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def measure_rate(sessions: int, concurrency: int, database_url: str) -> dict[str, float]:
    """Provider actions a second (and CPU seconds, statements, transactions per action) of
    one worker process working off a burst of due actions."""
    if database_url.startswith("postgresql"):
        await recreate_database()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if database_url == "sqlite":  # the embedded default: a file in the data folder
            database_url = f"sqlite:///{folder / 'vidivo.sqlite3'}"
        scenario = Scenario(sessions, 1, 10_000, concurrency, latency_ms=0)
        await asyncio.to_thread(upgrade_to_head, database_url)
        clock = TestClock()
        ids = await _started_calls(folder, scenario, clock, database_url=database_url)
        settings = _settings(folder, scenario, latency_ms=0, ceiling=10_000)
        context = build_context(settings.model_copy(update={"database_url": database_url}), clock)
        recorder = Recorder()
        _instrument(context, recorder)
        await _join(context, ids)
        await context.worker.run_due()  # the second windows' holds, due at once
        # The statements of a burst are counted in one burst and its speed is timed in the
        # next, of the same shape: the counting (an event per statement and checkout, a
        # query logger on asyncpg's connections) costs CPU no worker spends.
        counter = StatementCount()
        counter.attach(context.engine)
        clock.advance(61)  # every first window used up, every third window's hold due
        recorder.calls = 0
        await context.worker.run_due()
        counted = max(recorder.calls, 1)
        assert context.engine.sync_engine.pool.checkedout() == 0  # no query logger left behind
        counter.detach()
        rss_before = _rss_mib()
        clock.advance(60)  # every second window used up, every fourth window's hold due
        recorder.calls = 0
        cpu_before = time.process_time()
        started = time.perf_counter()
        profiler = _profiler()
        await context.worker.run_due()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        rss_after = _rss_mib()
        await context.engine.dispose()
    actions = max(recorder.calls, 1)
    return {
        "sessions": sessions,
        "actions": recorder.calls,
        "wall": wall,
        "actions_per_second": recorder.calls / wall,
        "cpu_ms_per_action": 1000 * cpu / actions,
        "ours_per_action": counter.ours / counted,
        "simulated_per_action": counter.simulated / counted,
        "transactions_per_action": counter.transactions / counted,
        "round_trips_per_action": counter.round_trips() / counted,
        "rss_mib": rss_after,
        "rss_growth_kib_per_call": 1024 * (rss_after - rss_before) / sessions,
        **{f"kind_{k}": v / counted for k, v in counter.by_kind.items()},
    }


def rate_lines(results: list[tuple[str, dict[str, float]]]) -> list[str]:
    lines = [
        "| database | live calls | actions in the burst | provider actions/s "
        "| CPU ms per action | our statements per action | simulated provider's "
        "| transactions per action | database round trips per action |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results:
        lines.append(
            f"| {name} | {r['sessions']:,.0f} | {r['actions']:,.0f} "
            f"| {r['actions_per_second']:.0f} | {r['cpu_ms_per_action']:.2f} "
            f"| {r['ours_per_action']:.1f} | {r['simulated_per_action']:.1f} "
            f"| {r['transactions_per_action']:.1f} | {r['round_trips_per_action']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    import json
    import sys

    from bench.stack import DSN

    url = sys.argv[3] if len(sys.argv) > 3 else DSN
    out = asyncio.run(measure_rate(int(sys.argv[1]), int(sys.argv[2]), url))
    print(json.dumps(out, indent=1))
