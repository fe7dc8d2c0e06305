"""Earnings period by period (`GET /v1/earnings/periods`): the dashboard's chart, in exact
cents, with days, weeks and months that follow the host's time zone."""

from __future__ import annotations

import pytest

DAY = 86400


def money(period: dict) -> tuple:
    return (
        period["label"],
        period["sessions"],
        period["gross"],
        period["platform_fees"],
        period["refunds"],
        period["net"],
    )


async def test_each_day_shows_what_was_earned_and_refunded_that_day(client, two_days_of_calls):
    response = await client.get(
        "/v1/earnings/periods?period=day&from=2026-03-14T00:00:00Z&to=2026-03-17T00:00:00Z",
        headers=two_days_of_calls.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["currency"], body["period"], body["time_zone"]) == ("USD", "day", "UTC")
    assert (body["from"], body["to"]) == ("2026-03-14T00:00:00Z", "2026-03-17T00:00:00Z")
    assert [money(p) for p in body["periods"]] == [
        ("2026-03-14", 0, "0.00", "0.00", "0.00", "0.00"),
        ("2026-03-15", 1, "20.00", "2.00", "0.00", "18.00"),
        # The refund is Monday's: 5.00 back to the guest, with its 0.50 share of the fee.
        ("2026-03-16", 1, "7.50", "0.25", "5.00", "2.25"),
    ]
    assert money(body["totals"]) == ("2026-03-14", 2, "27.50", "2.25", "5.00", "20.25")
    assert [(p["start"], p["end"]) for p in body["periods"]][1] == (
        "2026-03-15T00:00:00Z",
        "2026-03-16T00:00:00Z",
    )


async def test_the_periods_add_up_to_the_earnings_of_the_same_stretch(client, two_days_of_calls):
    headers = two_days_of_calls.headers
    whole = (
        await client.get(
            "/v1/earnings?from=2026-03-14T00:00:00Z&to=2026-03-17T00:00:00Z", headers=headers
        )
    ).json()
    periods = (
        await client.get(
            "/v1/earnings/periods?period=day&from=2026-03-14T00:00:00Z&to=2026-03-17T00:00:00Z",
            headers=headers,
        )
    ).json()["totals"]
    for field in ("sessions", "gross", "platform_fees", "refunds", "net"):
        assert periods[field] == whole[field], field


async def test_days_are_the_hosts_days_in_its_time_zone(client, two_days_of_calls):
    # 10:00 UTC on the 15th is already the 16th at UTC+14: both calls fall on local Monday.
    response = await client.get(
        "/v1/earnings/periods?period=day&tz=Pacific/Kiritimati"
        "&from=2026-03-15T00:00:00Z&to=2026-03-17T00:00:00Z",
        headers=two_days_of_calls.headers,
    )
    assert response.status_code == 200, response.text
    periods = response.json()["periods"]
    assert [(p["label"], p["start"], p["gross"]) for p in periods] == [
        ("2026-03-15", "2026-03-14T10:00:00Z", "0.00"),
        ("2026-03-16", "2026-03-15T10:00:00Z", "20.00"),
        ("2026-03-17", "2026-03-16T10:00:00Z", "7.50"),
    ]


async def test_weeks_start_on_monday_and_months_on_the_first_across_a_clock_change(
    client, two_days_of_calls
):
    headers = two_days_of_calls.headers
    weeks = (
        await client.get(
            "/v1/earnings/periods?period=week&from=2026-03-15T00:00:00Z&to=2026-03-17T00:00:00Z",
            headers=headers,
        )
    ).json()["periods"]
    assert [money(p) for p in weeks] == [
        ("2026-03-09", 1, "20.00", "2.00", "0.00", "18.00"),
        ("2026-03-16", 1, "7.50", "0.25", "5.00", "2.25"),
    ]
    months = (
        await client.get(
            "/v1/earnings/periods?period=month&tz=Europe/Paris"
            "&from=2026-02-10T00:00:00Z&to=2026-04-02T00:00:00Z",
            headers=headers,
        )
    ).json()["periods"]
    # Paris moves to summer time on 29 March: April starts at 22:00 UTC, March at 23:00.
    assert [(p["label"], p["start"], p["end"], p["gross"]) for p in months] == [
        ("2026-02", "2026-01-31T23:00:00Z", "2026-02-28T23:00:00Z", "0.00"),
        ("2026-03", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z", "27.50"),
        ("2026-04", "2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z", "0.00"),
    ]


async def test_without_from_the_last_fourteen_days_up_to_now(client, hosts, calls):
    host = await hosts.create()
    await calls.advance(DAY // 2)  # now: 15 March 22:00 UTC
    host.access_token, _ = await hosts.login(host.email)
    body = (await client.get("/v1/earnings/periods", headers=host.headers)).json()
    labels = [p["label"] for p in body["periods"]]
    assert len(labels) == 14
    assert (labels[0], labels[-1]) == ("2026-03-02", "2026-03-15")
    assert body["totals"]["gross"] == "0.00"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=year", "period"),
        ("tz=Mars/Olympus_Mons", "tz"),
        ("tz=../../etc/passwd", "tz"),
        ("from=2026-03-16T00:00:00Z&to=2026-03-15T00:00:00Z", "to"),
        ("from=2020-01-01T00:00:00Z&to=2026-03-15T00:00:00Z", "from"),
        ("from=2026-03-16T00:00:00", "from"),
        ("to=0001-01-02T00:00:00Z", "from"),
        ("period=month&from=9999-12-01T00:00:00Z&to=9999-12-31T00:00:00Z", "from"),
    ],
)
async def test_bad_questions_get_a_400_naming_the_field(client, hosts, query, field):
    host = await hosts.create()
    response = await client.get(f"/v1/earnings/periods?{query}", headers=host.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]] or field in str(error["details"])


async def test_only_a_signed_in_host_sees_earnings(client):
    response = await client.get("/v1/earnings/periods")
    assert response.status_code == 401
