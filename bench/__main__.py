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
from datetime import UTC, datetime
from pathlib import Path

from bench import engine as engine_bench
from bench import http as http_bench
from bench import roundtrips
from bench import signaling as signaling_bench
from bench.stack import DB_NAME, Stack, recreate_database, run

RESULTS = Path(__file__).parent / "RESULTS.md"
HTTP_BACKENDS = [
    (
        f"PostgreSQL (database `{DB_NAME}`), one `vidivo serve` process; bare stack: raw ASGI "
        "app on uvicorn with an asyncpg pool of 10",
        False,
    ),
    (
        "SQLite, the embedded default (one file, one `vidivo serve` process); bare stack: raw "
        "ASGI app on uvicorn with one aiosqlite connection on the same file (WAL, autocommit)",
        True,
    ),
]


def machine() -> str:
    memory = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    python = platform.python_version()
    return f"{cpu} CPUs (`nproc`), {memory} memory, {platform.platform()}, Python {python}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs, to try the harness")
    parser.add_argument("--only", choices=["http", "engine", "signaling"])
    parser.add_argument(
        "--backend", choices=["postgresql", "sqlite"], help="HTTP part on this database only"
    )
    args = parser.parse_args()
    repeats, seconds = (1, 3) if args.quick else (3, 8)
    sections: list[str] = []
    command = (
        "python -m bench"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only else "")
        + (f" --backend {args.backend}" if args.backend else "")
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "data").mkdir()
        if args.only in (None, "http"):
            sections += ["## HTTP hot paths", ""]
            for title, sqlite in HTTP_BACKENDS:
                if args.backend and (args.backend == "sqlite") != sqlite:
                    continue
                if not sqlite:
                    run(recreate_database())
                stack = Stack(folder / ("sqlite" if sqlite else "postgresql"), sqlite=sqlite)
                stack.cli("migrate")
                try:
                    figures = http_bench.measure(stack, repeats, seconds)
                finally:
                    stack.stop()
                sections += [f"### {title}", "", *figures, ""]
            sections += [
                "### Database round trips per request (PostgreSQL, `python -m bench.roundtrips`)",
                "",
                *roundtrips.measure(),
                "",
            ]
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
    part = "-".join(x for x in (args.only, args.backend) if x)
    out = RESULTS if not part else RESULTS.with_name(f"RESULTS-{part}.md")
    out.write_text(text + "\n")
    print(text)
    print(f"\nwritten to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
