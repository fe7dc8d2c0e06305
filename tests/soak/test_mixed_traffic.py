"""Mixed traffic against two API instances and two billing workers on PostgreSQL and Redis,
with the simulated provider: guests opening links, starting calls that go live, renew,
get their renewal declined (some replace the card), get turned down by the host or are
declined at the start, hosts working their dashboards; for `VIDIVO_SOAK_SECONDS` (60 in the
suite). The full soak is ten minutes:

    VIDIVO_SOAK_SECONDS=600 uv run pytest tests/soak -s

Afterwards: no response was a 5xx, no process logged a traceback, every call settled with
held = captured + released, `vidivo billing audit` is clean, and no process's memory grew
after the warm-up beyond allocator noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, HTTPXWSException, aconnect_ws

from tests.conftest import PASSWORD
from tests.fleet import Fleet, keep_alive, wait_ready
from tests.support import free_port

PG_URL = os.environ.get(
    "VIDIVO_TEST_SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/vidivo_soak"
)
SOAK_SECONDS = float(os.environ.get("VIDIVO_SOAK_SECONDS", "60"))
SPEED = 20  # a one-minute billing window passes in 3 s
CALLERS = 8
HOSTS = 3
FINAL = {"ended", "declined", "expired"}
# Memory after the warm-up (the first third) may move by allocator noise, not by a leak.
RSS_GROWTH_ALLOWED = 1.15
RSS_SLACK_KIB = 12 * 1024


@dataclass
class Host:
    email: str
    token: str
    refresh_token: str
    codes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Traffic:
    """What the clients saw: every HTTP status by route, every call and how it went."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    sessions: dict[str, Host] = field(default_factory=dict)
    incoming_calls: int = 0
    problems: list[str] = field(default_factory=list)

    def server_errors(self) -> list[tuple[str, int]]:
        return [key for key in self.statuses if key[1] >= 500]


class Client:
    def __init__(self, http: httpx.AsyncClient, bases: list[str], traffic: Traffic) -> None:
        self.http = http
        self.bases = bases
        self.traffic = traffic

    def base(self) -> str:
        return random.choice(self.bases)

    async def call(
        self, method: str, route: str, path: str, *, expect: set[int], base: str | None = None,
        **kwargs: object,
    ) -> httpx.Response:  # fmt: skip
        response = await self.http.request(method, f"{base or self.base()}{path}", **kwargs)  # type: ignore[arg-type]
        self.traffic.statuses[(f"{method} {route}", response.status_code)] += 1
        if response.status_code not in expect:
            self.traffic.problems.append(
                f"{method} {path}: {response.status_code} {response.text[:300]}"
            )
        return response


class Party:
    """One side of a call's signaling socket, keeping every event it was sent: waiting for
    one kind of event does not lose the others that came first."""

    def __init__(self, ws: AsyncWebSocketSession) -> None:
        self.ws = ws
        self.unclaimed: list[dict] = []

    async def expect(self, kind: str, within: float = 20) -> dict:
        deadline = time.monotonic() + within
        while True:
            for event in self.unclaimed:
                if event["type"] == kind:
                    self.unclaimed.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} within {within} s; got {self.unclaimed}")
            self.unclaimed.append(await self.ws.receive_json(timeout=remaining))


def ws_url(base: str, path: str, token: str) -> str:
    return f"{base.replace('http', 'ws', 1)}{path}?token={token}"


async def open_links(client: Client, hosts: list[Host], until: float) -> None:
    """Guests opening shared links: the JSON lookup and the guest page, on either instance."""
    while time.monotonic() < until:
        code = random.choice(random.choice(hosts).codes)
        await client.call("GET", "/v1/links/{code}", f"/v1/links/{code}", expect={200})
        if random.random() < 0.3:
            await client.call("GET", "/c/{code}", f"/c/{code}", expect={200})
        await asyncio.sleep(0.05)


async def keep_signed_in(client: Client, host: Host) -> None:
    """What the dashboard does: a fresh access token well before the old one expires (on the
    sped-up clock an access token lives 45 s of real time)."""
    while True:
        await asyncio.sleep(15)
        refreshed = await client.call(
            "POST", "/v1/auth/refresh", "/v1/auth/refresh", expect={200},
            json={"refresh_token": host.refresh_token},
        )  # fmt: skip
        host.token = refreshed.json()["access_token"]
        host.refresh_token = refreshed.json()["refresh_token"]


async def work_dashboard(client: Client, host: Host, until: float) -> None:
    """A host at the dashboard: listings, earnings, a link made and deleted now and then."""
    while time.monotonic() < until:
        h = host.headers
        await client.call("GET", "/v1/me", "/v1/me", headers=h, expect={200})
        await client.call("GET", "/v1/links", "/v1/links?limit=20", headers=h, expect={200})
        await client.call("GET", "/v1/sessions", "/v1/sessions?limit=20", headers=h, expect={200})
        await client.call("GET", "/v1/earnings", "/v1/earnings", headers=h, expect={200})
        if random.random() < 0.2:
            made = await client.call(
                "POST", "/v1/links", "/v1/links", headers=h, expect={201},
                json={"rate_per_minute": "3.00", "window_size_minutes": 5, "label": "Short-lived"},
            )  # fmt: skip
            if made.status_code == 201:
                link = made.json()["link"]
                await client.call(
                    "DELETE", "/v1/links/{id}", f"/v1/links/{link['id']}", headers=h, expect={204}
                )
                # Deleted means gone on every instance at once, the cached view included.
                for base in client.bases:
                    await client.call(
                        "GET", "/v1/links/{code}", f"/v1/links/{link['short_code']}", base=base,
                        expect={404},
                    )  # fmt: skip
        await asyncio.sleep(0.5)


async def watch_incoming_calls(ws: AsyncWebSocketSession, traffic: Traffic, until: float) -> None:
    """The dashboard's live feed: every call that rings is announced on it."""
    pinger = asyncio.create_task(keep_alive(ws))
    try:
        while time.monotonic() < until + 5:
            try:
                event = await ws.receive_json(timeout=1)
            except TimeoutError:
                continue
            if event["type"] == "incoming_call":
                traffic.incoming_calls += 1
    finally:
        pinger.cancel()


async def one_call(client: Client, hosts: list[Host]) -> None:
    host = random.choice(hosts)
    code = random.choice(host.codes)
    guest_base, host_base = random.sample(client.bases, 2)
    scenario = random.choices(
        ["talk", "renewal_declined", "host_declines", "card_declined"], weights=[6, 2, 1, 1]
    )[0]
    card = {
        "talk": "pm_card_visa",
        "renewal_declined": "pm_sim_decline_after_1",
        "host_declines": "pm_card_visa",
        "card_declined": "pm_card_chargeDeclined",
    }[scenario]
    started = await client.call(
        "POST", "/v1/links/{code}/sessions", f"/v1/links/{code}/sessions", base=guest_base,
        json={"guest_name": "Soak Guest", "guest_email": "guest@example.com",
              "payment_method_id": card},
        expect={402} if scenario == "card_declined" else {201},
    )  # fmt: skip
    if started.status_code != 201:
        client.traffic.outcomes[f"{scenario}: {started.status_code}"] += 1
        return
    session_id = started.json()["session"]["id"]
    client.traffic.sessions[session_id] = host
    path = f"/v1/sessions/{session_id}"
    if scenario == "host_declines":
        await client.call(
            "POST", "/v1/sessions/{id}/decline", f"{path}/decline", headers=host.headers,
            base=host_base, expect={200},
        )  # fmt: skip
        client.traffic.outcomes[scenario] += 1
        return
    await client.call(
        "POST", "/v1/sessions/{id}/accept", f"{path}/accept", headers=host.headers,
        base=host_base, expect={200},
    )  # fmt: skip
    try:
        await talk(client, host, scenario, path, guest_base, host_base, started.json())
    except (TimeoutError, HTTPXWSException) as error:
        client.traffic.problems.append(f"{scenario} call {session_id}: {error!r}")


async def talk(
    client: Client, host: Host, scenario: str, path: str, guest_base: str, host_base: str,
    started: dict,
) -> None:  # fmt: skip
    guest_headers = {"Authorization": f"Bearer {started['guest_token']}"}
    signal_path = f"{path}/signal"
    async with (
        aconnect_ws(ws_url(host_base, signal_path, host.token), client.http) as host_ws,
        aconnect_ws(
            ws_url(guest_base, signal_path, started["guest_token"]), client.http
        ) as guest_ws,
    ):
        pinger = asyncio.create_task(keep_alive(host_ws, guest_ws))
        host_side, guest = Party(host_ws), Party(guest_ws)
        try:
            await guest.expect("went_live", within=20)
            await guest.ws.send_json({"type": "offer", "sdp": "v=0 soak"})
            await host_side.expect("offer", within=10)
            await host_side.ws.send_json({"type": "answer", "sdp": "v=0 soak"})
            await guest.expect("answer", within=10)
            if scenario == "renewal_declined":
                await guest.expect("hold_declined", within=30)
                replaced = None
                if random.random() < 0.5:
                    replaced = await client.call(
                        "POST", "/v1/sessions/{id}/payment-method", f"{path}/payment-method",
                        headers=guest_headers, base=guest_base,
                        json={"payment_method_id": "pm_card_visa"},
                        expect={200, 409},  # 409: the paid time ran out first
                    )  # fmt: skip
                if replaced is not None and replaced.status_code == 200:
                    await guest.expect("window_renewed", within=30)
                    scenario = "renewal_declined, card replaced"
                else:
                    # Nobody replaces the card: the call ends when the paid time runs out.
                    await host_side.expect("ended", within=60)
                    client.traffic.outcomes["renewal_declined, ran out"] += 1
                    return
            await asyncio.sleep(random.uniform(2, 12))
            ender = random.choice([guest_headers, host.headers])
            await client.call(
                "POST", "/v1/sessions/{id}/end", f"{path}/end", headers=ender,
                base=random.choice(client.bases), expect={200},
            )  # fmt: skip
            await host_side.expect("ended", within=60)
            await guest.expect("ended", within=10)
            client.traffic.outcomes[scenario] += 1
        finally:
            pinger.cancel()


async def place_calls(client: Client, hosts: list[Host], until: float) -> None:
    while time.monotonic() < until:
        await one_call(client, hosts)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def sample_memory(fleet: Fleet, until: float, samples: dict[str, list[int]]) -> None:
    while time.monotonic() < until:
        for name, process in fleet.processes.items():
            samples.setdefault(name, []).append(rss_kib(process.pid))
        await asyncio.sleep(2)


@pytest.fixture
def fleet(tmp_path: Path):
    fleet = Fleet.on_empty_database(tmp_path, PG_URL, SPEED)
    # Every client here is 127.0.0.1: the per-client limit on unknown-link lookups would take
    # all guests together for one enumerating client (tests/security covers that limit).
    fleet.env["VIDIVO_LINK_MISSES_PER_MINUTE"] = "100000"
    fleet.cli("migrate")
    yield fleet
    fleet.stop_all()


async def make_hosts(fleet: Fleet, http: httpx.AsyncClient, base: str) -> list[Host]:
    hosts = []
    for n in range(HOSTS):
        email = f"soak{n}@example.com"
        fleet.create_host(email, f"Soak Host {n}")
        tokens = (
            await http.post(f"{base}/v1/auth/token", json={"email": email, "password": PASSWORD})
        ).json()
        host = Host(email, tokens["access_token"], tokens["refresh_token"])
        for rate, window in (("0.50", 1), ("1.00", 2), ("2.40", 1)):
            link = await http.post(
                f"{base}/v1/links",
                headers=host.headers,
                json={"rate_per_minute": rate, "window_size_minutes": window},
            )
            assert link.status_code == 201, link.text
            host.codes.append(link.json()["link"]["short_code"])
        hosts.append(host)
    return hosts


async def settled(client: Client, traffic: Traffic, within: float) -> dict[str, dict]:
    """Every session's final record, waiting for the workers to finish the last of them."""
    deadline = time.monotonic() + within
    final: dict[str, dict] = {}
    while time.monotonic() < deadline:
        for session_id, host in traffic.sessions.items():
            if session_id in final:
                continue
            got = await client.http.get(
                f"{client.base()}/v1/sessions/{session_id}", headers=host.headers
            )
            assert got.status_code == 200, got.text
            if got.json()["session"]["state"] in FINAL:
                final[session_id] = got.json()["session"]
        if len(final) == len(traffic.sessions):
            return final
        await asyncio.sleep(1)
    unsettled = set(traffic.sessions) - set(final)
    pytest.fail(f"{len(unsettled)} sessions never settled: {sorted(unsettled)[:5]}")


async def test_mixed_traffic_on_two_instances_loses_nothing(fleet):
    random.seed(20261125)
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    fleet.start("api-a", "serve", "--port", str(ports[0]))
    fleet.start("api-b", "serve", "--port", str(ports[1]))
    fleet.start("worker-1", "worker", "--interval", "0.2")
    fleet.start("worker-2", "worker", "--interval", "0.2")
    for base in bases:
        wait_ready(base)
    traffic = Traffic()
    memory: dict[str, list[int]] = {}

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        client = Client(http, bases, traffic)
        hosts = await make_hosts(fleet, http, bases[0])
        refreshers = [asyncio.create_task(keep_signed_in(client, host)) for host in hosts]
        async with contextlib.AsyncExitStack() as feeds:
            # Each host's dashboard feed is open before the first guest calls.
            sockets = [
                await feeds.enter_async_context(
                    aconnect_ws(ws_url(bases[n % 2], "/v1/host/events", host.token), http)
                )
                for n, host in enumerate(hosts)
            ]
            began = time.monotonic()
            until = began + SOAK_SECONDS
            await asyncio.gather(
                sample_memory(fleet, until, memory),
                *(open_links(client, hosts, until) for _ in range(2)),
                *(work_dashboard(client, host, until) for host in hosts),
                *(watch_incoming_calls(ws, traffic, until) for ws in sockets),
                *(place_calls(client, hosts, until) for _ in range(CALLERS)),
            )
        ran = time.monotonic() - began
        final = await settled(client, traffic, within=90)

        mismatched = []
        for session_id, session in final.items():
            charges = await http.get(
                f"{bases[1]}/v1/sessions/{session_id}/charges",
                headers=traffic.sessions[session_id].headers,
            )
            windows = charges.json()["windows"]
            cents = {
                k: sum(int(w[k].replace(".", "")) for w in windows)
                for k in ("held", "captured", "released")
            }
            captured = charges.json()["totals"]["captured"]
            if cents["held"] != cents["captured"] + cents["released"] or (
                session["state"] == "ended" and session["billed"] != captured
            ):
                mismatched.append((session_id, session["billed"], charges.json()))
        for refresher in refreshers:
            refresher.cancel()
    audit = fleet.run("billing", "audit")
    logs = {name: fleet.log(name) for name in fleet.processes}

    requests = sum(traffic.statuses.values())
    growth = {
        name: (statistics.median(s[len(s) // 3 : len(s) // 2]), statistics.median(s[-3:]))
        for name, s in memory.items()
    }
    print(
        f"\nsoak: {ran:.0f} s, {requests} requests ({requests / ran:.0f}/s), "
        f"{len(final)} sessions, outcomes {dict(traffic.outcomes)}, "
        f"{traffic.incoming_calls} incoming-call events; RSS KiB after warm-up -> end: "
        + ", ".join(f"{n} {a:.0f} -> {b:.0f}" for n, (a, b) in growth.items())
    )

    assert traffic.server_errors() == []
    assert traffic.problems == []
    assert mismatched == []
    assert audit.returncode == 0, audit.stdout + audit.stderr
    for name, log in logs.items():
        assert "Traceback" not in log, f"{name} logged a traceback:\n{log[-3000:]}"
    # Every kind of call happened, and the hosts heard every call ring.
    for outcome in ("talk", "renewal_declined, ran out", "host_declines", "card_declined: 402"):
        assert traffic.outcomes[outcome] > 0, traffic.outcomes
    assert any(s["state"] == "declined" for s in final.values())
    assert traffic.incoming_calls == len(traffic.sessions)
    for name, (warm, end) in growth.items():
        assert end <= warm * RSS_GROWTH_ALLOWED + RSS_SLACK_KIB, (name, memory[name])
