"""Timestamps at the edge of the calendar: an offset that pushes a date past year 1 or 9999
when normalised to UTC is a `400 validation_error`, never a 500 — in every field and query
parameter that takes a timestamp (link dates, earnings bounds)."""

from __future__ import annotations

import pytest

OVERFLOWING = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
LINK_FIELDS = ["expires_at", "scheduled_start", "scheduled_end"]


def assert_validation_error(response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(detail["field"].endswith(field) for detail in error["details"]), error


@pytest.mark.parametrize("moment", OVERFLOWING)
@pytest.mark.parametrize("field", LINK_FIELDS)
async def test_link_dates_that_overflow_utc_are_validation_errors(client, hosts, field, moment):
    host = await hosts.create()
    body = {"rate_per_minute": "2.50", "window_size_minutes": 10, field: moment}
    response = await client.post("/v1/links", headers=host.headers, json=body)
    assert_validation_error(response, field)


@pytest.mark.parametrize("moment", OVERFLOWING)
@pytest.mark.parametrize("bound", ["from", "to"])
async def test_earnings_bounds_that_overflow_utc_are_validation_errors(
    client, hosts, bound, moment
):
    host = await hosts.create()
    response = await client.get("/v1/earnings", headers=host.headers, params={bound: moment})
    assert_validation_error(response, bound)


async def test_the_last_representable_moment_is_still_accepted(client, hosts):
    host = await hosts.create()
    response = await client.get(
        "/v1/earnings", headers=host.headers, params={"to": "9999-12-31T23:59:59Z"}
    )
    assert response.status_code == 200, response.text
