"""`python -m bench`: start the stack on loopback, measure, write bench/RESULTS.md.

Options: `--quick` (shorter runs, for trying the harness), `--only http|engine|signaling`.
Needs PostgreSQL and Redis on their standard ports and `wrk` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from ulid import ULID

from bench import engine as engine_bench
from bench import signaling as signaling_bench
from bench.http import Figure, median, wrk
from bench.stack import DSN, PASSWORD, Stack, recreate_database, run

RESULTS = Path(__file__).parent / "RESULTS.md"


def machine() -> str:
    memory = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    python = platform.python_version()
    return f"{cpu} CPUs (`nproc`), {memory} memory, {platform.platform()}, Python {python}"


async def seed_links(email: str, count: int) -> None:
    """Many links for one host, written straight to the table (only the listing is measured)."""
    connection = await asyncpg.connect(DSN)
    try:
        host_id = await connection.fetchval("SELECT id FROM users WHERE email = $1", email)
        start = datetime.now(UTC) - timedelta(days=30)
        rows = []
        for n in range(count):
            moment = start + timedelta(seconds=n)
            rows.append(
                (
                    str(ULID.from_datetime(moment)),
                    f"b{n:09d}",
                    host_id,
                    250,
                    10,
                    0,
                    True,
                    moment,
                )
            )
        await connection.copy_records_to_table(
            "links",
            records=rows,
            columns=[
                "id", "short_code", "host_id", "rate_cents", "window_size_minutes",
                "use_count", "is_active", "created_at",
            ],
        )  # fmt: skip
    finally:
        await connection.close()


def token_for(base: str, email: str) -> str:
    response = httpx.post(f"{base}/v1/auth/token", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["access_token"])


def row(name: str, figure: Figure, baseline: Figure | None = None) -> str:
    ratio = ""
    if baseline is not None:
        ratio = (
            f" | **{figure.rps / baseline.rps:.2f}×** | **{figure.p99_ms / baseline.p99_ms:.2f}×**"
        )
    else:
        ratio = " | | "
    return (
        f"| {name} | {figure.rps:,.0f} | {figure.p50_ms:.1f} | {figure.p99_ms:.1f}{ratio} "
        f"| {figure.non_2xx} |"
    )


def http_figures(stack: Stack, repeats: int, seconds: int) -> list[str]:
    stack.cli("hosts", "create", "--email", "bench@example.com", "--password", PASSWORD,
              "--display-name", "Bench Host", "--verified", "--connected")  # fmt: skip
    stack.cli("hosts", "create", "--email", "many@example.com", "--password", PASSWORD,
              "--display-name", "Many Links", "--verified", "--connected")  # fmt: skip
    run(seed_links("many@example.com", 10_000))
    base, _ = stack.serve()
    bare = stack.baseline()
    token = token_for(base, "bench@example.com")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    link = httpx.post(
        f"{base}/v1/links",
        headers=auth,
        json={"rate_per_minute": "2.50", "window_size_minutes": 10},
    ).json()["link"]
    code = link["short_code"]

    vidivo_runs, bare_runs = [], []
    for _ in range(repeats):  # alternated, so both see the same machine state
        bare_runs.append(wrk(f"{bare}/v1/links/{code}", seconds=seconds))
        vidivo_runs.append(wrk(f"{base}/v1/links/{code}", seconds=seconds))
    public, baseline = median(vidivo_runs), median(bare_runs)
    # The same view with the cache off: every request reads the database, like the baseline.
    uncached_base, _ = stack.serve("api-uncached", VIDIVO_PUBLIC_LINK_CACHE_SECONDS="0")
    uncached = median(
        [wrk(f"{uncached_base}/v1/links/{code}", seconds=seconds) for _ in range(repeats)]
    )

    create = median(
        [
            wrk(f"{base}/v1/links", seconds=seconds, method="POST",
                body='{"rate_per_minute": "2.50", "window_size_minutes": 10}', headers=auth)
            for _ in range(repeats)
        ]
    )  # fmt: skip

    many = {"Authorization": f"Bearer {token_for(base, 'many@example.com')}"}
    cursor = None
    with httpx.Client(base_url=base, headers=many) as client:
        for _ in range(499):
            params = {"limit": "20", **({"cursor": cursor} if cursor else {})}
            cursor = client.get("/v1/links", params=params).json()["pagination"]["cursor"]
    first_page = median(
        [wrk(f"{base}/v1/links?limit=20", seconds=seconds, headers=many) for _ in range(repeats)]
    )
    page_500 = median(
        [
            wrk(f"{base}/v1/links?limit=20&cursor={cursor}", seconds=seconds, headers=many)
            for _ in range(repeats)
        ]
    )
    start_body = (
        '{"guest_name": "Bench", "guest_email": "guest@example.com", '
        '"payment_method_id": "pm_card_visa"}'
    )
    starts = median(
        [
            wrk(f"{base}/v1/links/{code}/sessions", seconds=seconds, method="POST",
                body=start_body, headers={"Content-Type": "application/json"})
            for _ in range(repeats)
        ]
    )  # fmt: skip
    return [
        "| figure | req/s | p50 ms | p99 ms | throughput vs bare | p99 vs bare | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("bare baseline: one indexed SELECT (same uvicorn, same PostgreSQL)", baseline),
        row("`GET /v1/links/{short_code}` (public view)", public, baseline),
        row("the same with the cache off (one SELECT per request)", uncached, baseline),
        row("`POST /v1/links`", create),
        row("`GET /v1/links?limit=20`, page 1 of a 10,000-link host", first_page),
        row("`GET /v1/links?limit=20`, page 500 of the same host", page_500),
        row("`POST /v1/links/{code}/sessions` (simulated provider)", starts),
        "",
        f"Targets: public GET throughput ≥ 0.8× the bare baseline "
        f"({'met' if public.rps >= 0.8 * baseline.rps else 'NOT met'}: "
        f"{public.rps / baseline.rps:.2f}×), p99 ≤ 1.5× "
        f"({'met' if public.p99_ms <= 1.5 * baseline.p99_ms else 'NOT met'}: "
        f"{public.p99_ms / baseline.p99_ms:.2f}×). Deep pages cost what page 1 costs: page 500 at "
        f"{page_500.rps / first_page.rps:.2f}× the throughput of page 1.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs, to try the harness")
    parser.add_argument("--only", choices=["http", "engine", "signaling"])
    args = parser.parse_args()
    repeats, seconds = (1, 3) if args.quick else (3, 8)
    sections: list[str] = []
    command = (
        "python -m bench"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only else "")
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "data").mkdir()
        if args.only in (None, "http"):
            run(recreate_database())
            stack = Stack(folder)
            stack.cli("migrate")
            try:
                sections += ["## HTTP hot paths", "", *http_figures(stack, repeats, seconds), ""]
            finally:
                stack.stop()
        if args.only in (None, "engine"):
            sections += ["## Billing engine", "", *engine_bench.measure(quick=args.quick), ""]
        if args.only in (None, "signaling"):
            run(recreate_database())
            stack = Stack(folder)
            stack.cli("migrate")
            try:
                sections += [
                    "## Signaling",
                    "",
                    *signaling_bench.measure(stack, quick=args.quick),
                    "",
                ]
            finally:
                stack.stop()
    header = [
        "# Vidivo benchmark results",
        "",
        f"Command: `{command}` (run from the repository root; `uv run python -m bench`).",
        f"Machine: {machine()}. Load generator (wrk, 2 threads, 32 connections) on the same "
        "cores, so the ratios to the bare baseline are the headline, not the absolute figures.",
        f"Run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; each HTTP figure is the median of "
        f"{repeats} runs of {seconds} s.",
        "",
    ]
    history = (Path(__file__).parent / "HISTORY.md").read_text()
    text = "\n".join(header + sections) + "\n" + history
    out = RESULTS if not args.only else RESULTS.with_name(f"RESULTS-{args.only}.md")
    out.write_text(text + "\n")
    print(text)
    print(f"\nwritten to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
