"""Every response names its request: the caller's sane `X-Request-Id`, or a new ULID."""

from __future__ import annotations

import pytest
from ulid import ULID


def _is_new_ulid(value: str) -> bool:
    return str(ULID.from_str(value)) == value


async def test_every_response_gets_a_new_request_id(client):
    first = await client.get("/readyz")
    missing = await client.get("/v1/nothing-here")
    too_large = await client.post(
        "/v1/auth/token",
        content=b"{}" + b" " * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert (first.status_code, missing.status_code, too_large.status_code) == (200, 404, 413)
    ids = [r.headers["x-request-id"] for r in (first, missing, too_large)]
    assert all(_is_new_ulid(i) for i in ids)
    assert len(set(ids)) == 3


async def test_a_sane_incoming_request_id_is_echoed(client):
    for sane in ("trace-0af7651916cd43dd.b7ad6b7169203331", "01J9Z3Q8X2", "a:b_c"):
        response = await client.get("/v1/nothing-here", headers={"X-Request-Id": sane})
        assert response.headers["x-request-id"] == sane


@pytest.mark.parametrize(
    "insane",
    [
        "x" * 129,  # floods every log line
        "abc\x01def",  # a control character
        'abc" level="error',  # forges fields in a text log line
        "abc\tdef",
        "",
    ],
)
async def test_an_insane_incoming_request_id_is_replaced(client, insane):
    response = await client.get("/readyz", headers={"X-Request-Id": insane})
    assert response.status_code == 200
    assert _is_new_ulid(response.headers["x-request-id"])
