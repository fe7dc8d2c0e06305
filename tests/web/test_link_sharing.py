"""What a host shares: a QR code of each link, and the preview a chat app or social site
shows for a link (Open Graph title and description naming the host and the rate, an icon)."""

from __future__ import annotations

import re
import struct
from html import unescape

from tests.web.test_pages import make_link


def meta(html: str, key: str) -> str:
    """The content of `<meta property|name="key" content="...">`."""
    found = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)">', html)
    assert found, f"no {key} in the page"
    return unescape(found.group(1))


async def test_a_link_has_a_qr_code_of_its_public_address(client, hosts, context):
    host = await hosts.create()
    link = await make_link(client, host)
    qr = await client.get(f"/app/links/{link['short_code']}/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert "public" in qr.headers["cache-control"]
    assert qr.text.lstrip().startswith("<svg") and "<path" in qr.text
    # No token needed: the code says only what the address says, and the same every time.
    again = await client.get(f"/app/links/{link['short_code'].upper()}/qr.svg")
    assert again.status_code == 200 and again.text == qr.text


async def test_the_qr_code_of_an_unknown_code_is_404_and_counted_as_a_guess(client, context):
    for n in range(context.settings.link_misses_per_minute):
        miss = await client.get(f"/app/links/qq{n:08d}/qr.svg")
        assert miss.status_code == 404, n
    refused = await client.get("/app/links/qqqqqqqqqq/qr.svg")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"


async def test_a_deactivated_link_has_no_qr_code(client, hosts):
    host = await hosts.create()
    link = await make_link(client, host)
    gone = await client.delete(f"/v1/links/{link['id']}", headers=host.headers)
    assert gone.status_code == 204
    assert (await client.get(f"/app/links/{link['short_code']}/qr.svg")).status_code == 404


async def test_the_guest_page_preview_names_the_host_and_the_rate(client, hosts, context):
    host = await hosts.create(display_name="Dr. Rivera")
    link = await make_link(client, host, rate_per_minute="4.50")
    page = (await client.get(f"/c/{link['short_code']}")).text
    base = context.settings.public_base_url
    assert meta(page, "og:title") == "Video call with Dr. Rivera · $4.50/min"
    description = meta(page, "og:description")
    assert "Dr. Rivera" in description and "$4.50 per minute" in description
    assert meta(page, "description") == description
    assert meta(page, "og:url") == f"{base}/c/{link['short_code']}"
    assert meta(page, "og:image") == f"{base}/icon.png"
    assert meta(page, "twitter:card") == "summary"
    # The host's private label never reaches a preview.
    labelled = await make_link(client, host, label="VIP only - secret")
    assert "VIP only" not in (await client.get(f"/c/{labelled['short_code']}")).text


async def test_a_host_bio_describes_the_call_in_the_preview(client, hosts):
    host = await hosts.create(display_name="Dr. Rivera")
    saved = await client.patch(
        "/v1/me", headers=host.headers, json={"bio": "Tax advice for freelancers."}
    )
    assert saved.status_code == 200, saved.text
    link = await make_link(client, host)
    page = (await client.get(f"/c/{link['short_code']}")).text
    assert meta(page, "og:description").startswith("Tax advice for freelancers. — $3.00 per")


async def test_other_pages_have_a_plain_description_and_no_preview_of_a_call(client):
    page = (await client.get("/app")).text
    assert "paid one-to-one video calls" in meta(page, "description")
    assert 'property="og:title"' not in page
    missing = (await client.get("/c/zzzzzzzzzz")).text
    assert 'property="og:title"' not in missing
    # A guest's page does not send them to the hosts' log-in page.
    assert 'href="/app"' not in missing


async def test_the_icon_is_a_square_png(client):
    icon = await client.get("/icon.png")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/png"
    body = icon.content
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", body[16:24])
    assert width == height == 256
