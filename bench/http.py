"""HTTP load with wrk (requests/s and latency percentiles, parsed from `wrk --latency`), and
the HTTP section of the results: each path against the bare stack, alternated run by run."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from ulid import ULID

from bench.baseline import AFTER_START, CONDENSED_START, START_STEPS
from bench.stack import DSN, PASSWORD, Stack, cpu_seconds

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Figure:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    cpu_ms: float = 0.0  # the server process's CPU per request (ours only)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * UNITS[unit]


# wrk's connections: each sends its next request as soon as the last one is answered.
CONNECTIONS = 32


def wrk(
    url: str,
    *,
    seconds: int = 8,
    connections: int = CONNECTIONS,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> Figure:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = [[{body}]]")
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Figure(rps, p50, p99, int(bad.group(1)) if bad else 0)


def median(figures: list[Figure]) -> Figure:
    return Figure(
        statistics.median(f.rps for f in figures),
        statistics.median(f.p50_ms for f in figures),
        statistics.median(f.p99_ms for f in figures),
        sum(f.non_2xx for f in figures),
        statistics.median(f.cpu_ms for f in figures),
    )


# --- the HTTP section of bench/RESULTS.md ---------------------------------------------------

LINK_BODY = '{"rate_per_minute": "2.50", "window_size_minutes": 10}'
START_BODY = (
    '{"guest_name": "Bench", "guest_email": "guest@example.com", '
    '"payment_method_id": "pm_card_visa"}'
)
# The targets of issue 15: (throughput ratio at least, p99 ratio at most).
TARGETS = {
    "public": (0.8, 1.5),
    "create": (0.25, 3.0),
    "list": (0.25, 3.0),
    "start": (0.10, 3.0),
}


def _token(base: str, email: str) -> str:
    response = httpx.post(f"{base}/v1/auth/token", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["access_token"])


def _seed_rows(host_id: str, count: int) -> list[tuple[Any, ...]]:
    start = datetime.now(UTC) - timedelta(days=30)
    rows = []
    for n in range(count):
        moment = start + timedelta(seconds=n)
        rows.append(
            (str(ULID.from_datetime(moment)), f"b{n:09d}", host_id, 250, 10, 0, True, moment)
        )
    return rows


_COLUMNS = [
    "id", "short_code", "host_id", "rate_cents", "window_size_minutes", "use_count",
    "is_active", "created_at",
]  # fmt: skip


async def _seed_postgres(email: str, count: int) -> str:
    connection = await asyncpg.connect(DSN)
    try:
        host_id = str(await connection.fetchval("SELECT id FROM users WHERE email = $1", email))
        await connection.copy_records_to_table(
            "links", records=_seed_rows(host_id, count), columns=_COLUMNS
        )
        return host_id
    finally:
        await connection.close()


def _seed_sqlite(path: Path, email: str, count: int) -> str:
    with sqlite3.connect(path) as connection:
        host_id = str(
            connection.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0]
        )
        rows = [
            (*r[:7], r[7].replace(tzinfo=None).isoformat(sep=" "))
            for r in _seed_rows(host_id, count)
        ]
        connection.executemany(
            f"INSERT INTO links ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 8)})", rows
        )
        return host_id


def host_id_of(stack: Stack, email: str) -> str:
    if stack.sqlite_file is not None:
        with sqlite3.connect(stack.sqlite_file) as connection:
            return str(
                connection.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0]
            )

    async def fetch() -> str:
        connection = await asyncpg.connect(DSN)
        try:
            return str(await connection.fetchval("SELECT id FROM users WHERE email = $1", email))
        finally:
            await connection.close()

    return str(asyncio.run(fetch()))


def _paired(
    repeats: int, seconds: int, ours: dict[str, Any], bare: dict[str, Any], pid: int
) -> tuple[Figure, Figure]:
    """Ours and the bare stack's, alternated run by run so both see the same machine; ours
    with the CPU our server process (`pid`) spent per request. A short unmeasured run of
    each comes first: a pool's connections are opened on first use (tens of milliseconds
    each on PostgreSQL), which is start-up, not the path's steady state."""
    wrk(seconds=2, **bare)
    wrk(seconds=2, **ours)
    ours_runs, bare_runs = [], []
    for _ in range(repeats):
        bare_runs.append(wrk(seconds=seconds, **bare))
        before = cpu_seconds(pid)
        figure = wrk(seconds=seconds, **ours)
        requests = max(figure.rps * seconds, 1.0)
        figure.cpu_ms = 1000 * (cpu_seconds(pid) - before) / requests
        ours_runs.append(figure)
    return median(ours_runs), median(bare_runs)


def _floor_verdict(floor: tuple[Figure, Figure], unpaced: Figure) -> str:
    """What the bare stack does with a start's statements, against its one INSERT."""
    start, insert = floor
    statements = sum(len(kinds) for _, kinds in START_STEPS) + len(AFTER_START[1])
    transactions = sum(1 for in_transaction, _ in START_STEPS if in_transaction) + 1
    ratio = start.rps / insert.rps
    target = TARGETS["start"][0]
    return (
        f"- The floor: the bare stack making the statements of one start (`/bare/start`: "
        f"{statements} statements in {transactions} transactions on {len(START_STEPS) + 1} "
        f"connection checkouts, in a start's order, on a narrow scratch row, no logic) does "
        f"{start.rps:,.0f}/s, **{ratio:.2f}×** its one INSERT (p99 {start.p99_ms:.1f} ms, "
        f"{start.cpu_ms:.2f} ms of its CPU per start, non-2xx {start.non_2xx} / "
        f"{insert.non_2xx}): {target}× is "
        f"{'within' if ratio >= target else 'beyond'} what the bare stack itself does with "
        f"those statements. Vidivo's start (pacing lifted) runs at "
        f"{unpaced.rps / start.rps:.2f}× that floor."
    )


def _condensed_verdict(condensed: tuple[Figure, Figure], unpaced: Figure) -> str:
    """What the fewest round trips a crash-safe start could make leave for everything else."""
    floor, insert = condensed
    ratio, p99 = floor.rps / insert.rps, floor.p99_ms / insert.p99_ms
    at_least, p99_at_most = TARGETS["start"]
    budget = 1000 / (at_least * insert.rps) - floor.cpu_ms
    allowed_ms = p99_at_most * insert.p99_ms
    needed = CONNECTIONS / (allowed_ms / 1000)  # Little's law, a closed loop with no pause
    return (
        f"- The fewest round trips a crash-safe start could make (`/bare/start-condensed`: "
        f"{len(CONDENSED_START)} before the answer, one after, each one statement on "
        f"PostgreSQL or one transaction on SQLite: the call written before any provider call, "
        f"the customer created with the card, the hold, the outcome with the host's email) "
        f"do {floor.rps:,.0f}/s, **{ratio:.2f}×** the one INSERT, at p99 {floor.p99_ms:.1f} ms, "
        f"**{p99:.2f}×** the INSERT's ({floor.cpu_ms:.2f} ms of CPU per start). Throughput: "
        f"{at_least}× is {'within' if ratio >= at_least else 'beyond'} even that floor; "
        + (
            f"it leaves {budget:.1f} ms of CPU per start for everything but the statements "
            f"(Vidivo's start spends {unpaced.cpu_ms:.1f} ms). "
            if budget > 0
            else "it leaves no CPU for anything but the statements. "
        )
        + f"p99: ≤ {p99_at_most}× is {'within' if p99 <= p99_at_most else 'beyond'} even that "
        f"floor. With {CONNECTIONS} connections always waiting, a request's mean latency is "
        f"{CONNECTIONS} ÷ the throughput, so a p99 within {p99_at_most}× the INSERT's "
        f"({allowed_ms:.1f} ms) needs at least {needed:,.0f} starts/s even with no spread at "
        f"all ({needed / insert.rps:.2f}× the INSERT; the floor: {floor.rps:,.0f}/s)."
    )


def measure(stack: Stack, repeats: int, seconds: int) -> list[str]:
    """Every authenticated hot path and the public view against the bare stack: the table."""
    for email, name in (("bench@example.com", "Bench Host"), ("many@example.com", "Many Links")):
        stack.cli("hosts", "create", "--email", email, "--password", PASSWORD,
                  "--display-name", name, "--verified", "--connected")  # fmt: skip
    if stack.sqlite_file is not None:
        many_id = _seed_sqlite(stack.sqlite_file, "many@example.com", 10_000)
    else:
        many_id = asyncio.run(_seed_postgres("many@example.com", 10_000))
    bench_id = host_id_of(stack, "bench@example.com")
    base, server = stack.serve()
    pid = server.pid
    bare = stack.baseline()
    bare_pid = stack.processes[-1].pid
    auth = {
        "Authorization": f"Bearer {_token(base, 'bench@example.com')}",
        "Content-Type": "application/json",
    }
    link = httpx.post(
        f"{base}/v1/links",
        headers=auth,
        json={"rate_per_minute": "2.50", "window_size_minutes": 10},
    ).json()["link"]
    code = link["short_code"]
    figures: dict[str, tuple[Figure, Figure]] = {}

    figures["public"] = _paired(
        repeats,
        seconds,
        {"url": f"{base}/v1/links/{code}"},
        {"url": f"{bare}/v1/links/{code}"},
        pid,
    )
    # The same view with the cache off: every request reads the database, like the baseline.
    uncached_base, uncached = stack.serve("api-uncached", VIDIVO_PUBLIC_LINK_CACHE_SECONDS="0")
    figures["uncached"] = _paired(
        repeats,
        seconds,
        {"url": f"{uncached_base}/v1/links/{code}"},
        {"url": f"{bare}/v1/links/{code}"},
        uncached.pid,
    )
    # Stopped at once: its pool would hold PostgreSQL connections the others need.
    uncached.terminate()
    uncached.wait(timeout=20)
    insert = {"url": f"{bare}/bare/insert?host={bench_id}", "method": "POST", "body": LINK_BODY}
    figures["create"] = _paired(
        repeats,
        seconds,
        {"url": f"{base}/v1/links", "method": "POST", "body": LINK_BODY, "headers": auth},
        insert,
        pid,
    )
    many = {"Authorization": f"Bearer {_token(base, 'many@example.com')}"}
    cursor = None
    with httpx.Client(base_url=base, headers=many) as client:
        for _ in range(499):
            params = {"limit": "20", **({"cursor": cursor} if cursor else {})}
            cursor = client.get("/v1/links", params=params).json()["pagination"]["cursor"]
    keyset = {"url": f"{bare}/bare/keyset?host={many_id}"}
    figures["list"] = _paired(
        repeats, seconds, {"url": f"{base}/v1/links?limit=20", "headers": many}, keyset, pid
    )
    figures["page500"] = _paired(
        repeats,
        seconds,
        {"url": f"{base}/v1/links?limit=20&cursor={cursor}", "headers": many},
        keyset,
        pid,
    )
    start = {"method": "POST", "body": START_BODY, "headers": {"Content-Type": "application/json"}}
    figures["start"] = _paired(
        repeats, seconds, {"url": f"{base}/v1/links/{code}/sessions", **start}, insert, pid
    )
    # The floor: the bare stack making the statements of a start, against its one INSERT.
    floor = _paired(
        repeats,
        seconds,
        {"url": f"{bare}/bare/start?code={code}", "method": "POST"},
        insert,
        bare_pid,
    )
    # The floor of a start redesigned to the fewest round trips.
    condensed = _paired(
        repeats,
        seconds,
        {"url": f"{bare}/bare/start-condensed?code={code}", "method": "POST"},
        insert,
        bare_pid,
    )
    # Stopped first: only one server at a time takes the machine's two cores.
    server.terminate()
    server.wait(timeout=20)
    # The same with the provider's pacing lifted (the default paces this process's provider
    # calls under Stripe's live limit): what is left is the start's own cost.
    unpaced_base, unpaced = stack.serve(
        "api-unpaced", VIDIVO_PROVIDER_MAX_REQUESTS_PER_SECOND="10000"
    )
    figures["start_unpaced"] = _paired(
        repeats,
        seconds,
        {"url": f"{unpaced_base}/v1/links/{code}/sessions", **start},
        insert,
        unpaced.pid,
    )
    names = {
        "public": ("`GET /v1/links/{short_code}` (public view, cached)", "one indexed SELECT"),
        "uncached": ("the same with the cache off (one SELECT per request)", "one indexed SELECT"),
        "create": ("`POST /v1/links`", "one INSERT"),
        "list": ("`GET /v1/links?limit=20`, page 1 of a 10,000-link host", "20-row keyset SELECT"),
        "page500": ("`GET /v1/links?limit=20`, page 500 of the same host", "20-row keyset SELECT"),
        "start": ("`POST /v1/links/{code}/sessions` (simulated provider)", "one INSERT"),
        "start_unpaced": ("the same, provider pacing lifted (10,000/s)", "one INSERT"),
    }
    lines = [
        "| path | bare stack doing | Vidivo req/s | bare req/s | **ratio** | Vidivo p50 ms "
        "| Vidivo p99 ms | bare p99 ms | **p99 ratio** | non-2xx (Vidivo / bare) "
        "| Vidivo CPU ms per request |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, (ours, theirs) in figures.items():
        name, doing = names[key]
        lines.append(
            f"| {name} | {doing} | {ours.rps:,.0f} | {theirs.rps:,.0f} "
            f"| **{ours.rps / theirs.rps:.2f}×** | {ours.p50_ms:.1f} | {ours.p99_ms:.1f} "
            f"| {theirs.p99_ms:.1f} | **{ours.p99_ms / theirs.p99_ms:.2f}×** "
            f"| {ours.non_2xx} / {theirs.non_2xx} | {ours.cpu_ms:.2f} |"
        )
    lines.append("")
    verdicts = []
    for key, (at_least, p99_at_most) in TARGETS.items():
        ours, theirs = figures[key]
        ratio, p99 = ours.rps / theirs.rps, ours.p99_ms / theirs.p99_ms
        met = ratio >= at_least and p99 <= p99_at_most and ours.non_2xx == 0
        verdicts.append(
            f"- {names[key][0]}: throughput ≥ {at_least}× (got {ratio:.2f}×), p99 ≤ "
            f"{p99_at_most}× (got {p99:.2f}×), no non-2xx (got {ours.non_2xx}): "
            f"**{'met' if met else 'NOT met'}**"
        )
    unpaced, bare_insert = figures["start_unpaced"]
    wanted = TARGETS["start"][0] * bare_insert.rps
    verdicts.append(
        f"- Session start with the pacing lifted: {unpaced.cpu_ms:.1f} ms of server CPU per "
        f"start (at most {1000 / unpaced.cpu_ms:.0f} starts/s on one core); "
        f"{TARGETS['start'][0]}× of the bare INSERT ({wanted:,.0f}/s) would need ≤ "
        f"{1000 / wanted:.1f} ms per start, its three provider calls and the first hold's "
        "writes included."
    )
    verdicts.append(_floor_verdict(floor, figures["start_unpaced"][0]))
    verdicts.append(_condensed_verdict(condensed, figures["start_unpaced"][0]))
    page1, page500 = figures["list"][0], figures["page500"][0]
    verdicts.append(
        f"- Deep pages cost what page 1 costs: page 500 at {page500.rps / page1.rps:.2f}× "
        "the throughput of page 1."
    )
    return lines + verdicts
