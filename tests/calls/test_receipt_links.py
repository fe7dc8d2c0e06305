"""The guest's receipt at a signed address: opened with no account, the same figures after any
reload, the date, host, terms and card; a wrong or borrowed signature finds nothing, in words.
The address is handed only to the call's guest and host, and is in the receipt email."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.accounts.test_account_mail import inbox, parts_of, settings  # noqa: F401 (fixtures)
from tests.calls.conftest import calls  # noqa: F401 (fixture)

BASE = "https://vidivo.test"


async def receipt_url(calls, call, headers) -> str:  # noqa: F811
    response = await calls.client.get(f"/v1/sessions/{call.session_id}/receipt", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["receipt"]["receipt_url"])


def local(url: str) -> str:
    assert url.startswith(f"{BASE}/receipts/"), url
    return url.removeprefix(BASE)


async def an_ended_call(calls, card: str = "pm_card_visa"):  # noqa: F811
    host = await calls.hosts.create(display_name="Dr. Rivera")
    async with calls.live(host=host, card=card) as (call, _host_ws, _guest_ws):
        await calls.advance(450)  # 7½ minutes at 2.50/min, 5-minute windows: 20.00
        await calls.end(call)
    return call


async def test_the_signed_receipt_opens_with_no_account_and_shows_the_call(calls):  # noqa: F811
    call = await an_ended_call(calls, card="pm_card_mastercard")
    url = await receipt_url(calls, call, call.guest_headers)
    assert url == await receipt_url(calls, call, call.host.headers)  # one address per call

    page = await calls.client.get(local(url))  # no token, no cookie
    assert page.status_code == 200
    html = page.text
    assert "Video call with Dr. Rivera" in html
    assert 'id="receipt-card">Mastercard ending in 4444<' in html
    assert "$2.50 per minute" in html and "windows of 5 minutes" in html
    assert 'id="receipt-total">$20.00<' in html
    assert 'id="receipt-paid">$20.00<' in html
    assert "7 min 30 s · 8 minutes billed" in html
    assert '<time id="receipt-date" datetime="2026-' in html
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    # A reload shows the same figures.
    assert (await calls.client.get(local(url))).text == html


async def test_a_refund_shows_on_the_receipt(calls):  # noqa: F811
    call = await an_ended_call(calls)
    refunded = await calls.client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**call.host.headers, "Idempotency-Key": "refund-1"},
        json={"amount": "8.00"},
    )
    assert refunded.status_code == 201, refunded.text
    page = await calls.client.get(local(await receipt_url(calls, call, call.guest_headers)))
    assert 'id="receipt-refunded">−$8.00<' in page.text
    assert 'id="receipt-paid">$12.00<' in page.text


async def test_a_wrong_or_borrowed_signature_finds_no_receipt(calls):  # noqa: F811
    call = await an_ended_call(calls)
    other = await calls.started()
    url = local(await receipt_url(calls, call, call.guest_headers))
    other_url = local(await receipt_url(calls, other, other.guest_headers))
    signature = parse_qs(urlsplit(url).query)["sig"][0]
    other_signature = parse_qs(urlsplit(other_url).query)["sig"][0]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for wrong in (
        f"/receipts/{call.session_id}?sig={flipped}",
        f"/receipts/{call.session_id}?sig={other_signature}",  # another call's signature
        f"/receipts/{call.session_id}",
        f"/receipts/{call.session_id}?sig=" + "x" * 5000,
        f"/receipts/01JN2X7N1Q6I0TSCUYZ9AELGHI?sig={signature}",  # no such call
    ):
        page = await calls.client.get(wrong)
        assert page.status_code == 404, wrong
        assert "This receipt link does not work" in page.text
        assert "Dr. Rivera" not in page.text and "$20.00" not in page.text


async def test_only_the_calls_guest_and_host_are_given_the_address(calls):  # noqa: F811
    call = await an_ended_call(calls)
    other = await calls.started()
    stranger = await calls.client.get(
        f"/v1/sessions/{call.session_id}/receipt", headers=other.guest_headers
    )
    assert stranger.status_code == 404
    assert "receipt_url" not in stranger.text
    anonymous = await calls.client.get(f"/v1/sessions/{call.session_id}/receipt")
    assert anonymous.status_code == 401


async def test_the_receipt_email_links_the_signed_receipt(calls, inbox):  # noqa: F811
    call = await an_ended_call(calls)
    message = await inbox.next_to("alex@example.com", "Your receipt for the call with Dr. Rivera")
    text, html = parts_of(message)
    url = await receipt_url(calls, call, call.guest_headers)
    assert f"Open your receipt: {url}" in text
    assert "Total charged: $20.00, to Visa ending in 4242." in text
    assert f'<a href="{url.replace("&", "&amp;")}">Open your receipt</a>' in html
    assert (await calls.client.get(local(url))).status_code == 200


async def test_a_call_that_never_started_says_nothing_was_charged(calls):  # noqa: F811
    call = await calls.started()
    declined = await calls.client.post(
        f"/v1/sessions/{call.session_id}/decline", headers=call.host.headers
    )
    assert declined.status_code == 200, declined.text
    page = await calls.client.get(local(await receipt_url(calls, call, call.guest_headers)))
    assert page.status_code == 200
    assert "The call did not start, so nothing was charged" in page.text
    assert 'id="receipt-paid">$0.00<' in page.text


async def test_the_receipt_names_the_card_given_during_the_call(calls):  # noqa: F811
    call = await calls.started(card="pm_card_visa")
    before = await calls.client.get(
        f"/v1/sessions/{call.session_id}/receipt", headers=call.guest_headers
    )
    assert (before.json()["receipt"]["card_brand"], before.json()["receipt"]["card_last4"]) == (
        "visa",
        "4242",
    )
    changed = await calls.client.post(
        f"/v1/sessions/{call.session_id}/payment-method",
        headers=call.guest_headers,
        json={"payment_method_id": "pm_card_mastercard"},
    )
    assert changed.status_code == 200, changed.text
    page = await calls.client.get(local(await receipt_url(calls, call, call.guest_headers)))
    assert 'id="receipt-card">Mastercard ending in 4444<' in page.text
