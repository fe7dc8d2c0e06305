"""Property: over random call timelines (joins, drops, reconnects, declines, ends), every
ended call captured exactly what it billed and released the rest of what it held."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidivo.auth.service import GuestPrincipal, authenticate
from vidivo.calls.ledger import audit, totals
from vidivo.calls.models import LedgerKind

steps = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=400)),
        st.tuples(st.just("drop"), st.sampled_from(["host", "guest"])),
        st.tuples(st.just("rejoin"), st.sampled_from(["host", "guest"])),
    ),
    max_size=8,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    timeline=steps,
    window_minutes=st.integers(min_value=1, max_value=6),
    holds_before_decline=st.integers(min_value=1, max_value=4),
    end_by=st.sampled_from(["guest", "host", "timeout"]),
)
async def test_money_balances_over_any_timeline(
    calls, context, host_for_timelines, timeline, window_minutes, holds_before_decline, end_by
):
    # Each example moves the clock on: refresh the login so the access token is current.
    rotated = await calls.client.post(
        "/v1/auth/refresh", json={"refresh_token": host_for_timelines.refresh_token}
    )
    assert rotated.status_code == 200, rotated.text
    host_for_timelines.access_token = rotated.json()["access_token"]
    host_for_timelines.refresh_token = rotated.json()["refresh_token"]
    host = host_for_timelines
    link = await calls.link(host, window_size_minutes=window_minutes, rate_per_minute="1.75")
    call = await calls.started(
        card=f"pm_sim_decline_after_{holds_before_decline}", link=link, host=host
    )
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=host.headers)
    present = {"host": 0, "guest": 0}
    for role in present:
        await context.calls.connected(call.session_id, role)
        present[role] += 1
    for kind, value in timeline:
        if kind == "wait":
            await calls.advance(value)
        elif kind == "drop" and present[value]:
            await context.calls.disconnected(call.session_id, value)
            present[value] -= 1
        elif kind == "rejoin" and not present[value]:
            await context.calls.connected(call.session_id, value)
            present[value] += 1
        await context.worker.run_due()
    state = (await calls.session(call))["state"]
    if state not in ("ended", "ending"):
        if end_by == "timeout":
            await context.calls.disconnected(call.session_id, "guest")
        else:
            async with context.session_factory() as db:
                host_principal = await authenticate(db, context.tokens, host.access_token)
            caller = GuestPrincipal(call.session_id, {}) if end_by == "guest" else host_principal
            await context.calls.end(call.session_id, caller)
    await calls.advance(3600)

    session = await calls.session(call)
    assert session["state"] == "ended"
    async with context.session_factory() as db:
        sums = await totals(db, call.session_id)
        findings = [f for f in await audit(db) if f.session_id == call.session_id]
    assert findings == []
    billed_minutes = max(1, -(-session["live_seconds"] // 60))  # started minutes
    assert sums[LedgerKind.CAPTURE] <= sums[LedgerKind.HOLD]
    assert sums[LedgerKind.CAPTURE] >= (billed_minutes - 1) * 175
    assert sums[LedgerKind.RELEASE] == sums[LedgerKind.HOLD] - sums[LedgerKind.CAPTURE]
