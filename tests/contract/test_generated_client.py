"""A client generated from the served /openapi.json by openapi-python-client runs the API's
example flow against a real `vidivo serve`: the host signs in, creates a single-use link and
lists it; a guest opens the link without any token and starts a call with a test card; the host
turns the call down and deletes the link. Every answer parses into the generated models."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support import demo_credentials, free_port, start_server, stop_server

PACKAGE = "vidivo_client"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh `vidivo serve` (simulated payments) and the log it printed at start."""
    base = f"http://127.0.0.1:{free_port()}"
    process = start_server(tmp_path / "data", base)
    try:
        yield base, process.output()
    finally:
        stop_server(process)


@pytest.fixture
def generated(server: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    """The client package openapi-python-client writes from the server's own document."""
    base, _ = server
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{base}/openapi.json").content)
    output = tmp_path / "generated"
    output.mkdir()
    bin_dir = str(Path(sys.executable).parent)  # the generator formats its output with ruff
    result = subprocess.run(
        [
            sys.executable, "-m", "openapi_python_client", "generate",
            "--path", str(document), "--output-path", str(output / PACKAGE), "--meta", "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # The generator warns for each operation or schema it cannot express, then drops it.
    assert "Warning" not in report, report
    sys.path.insert(0, str(output))
    try:
        yield _Generated()
    finally:
        sys.path.remove(str(output))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


class _Generated:
    def __getattr__(self, dotted: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{dotted.replace('__', '.')}")


def test_a_generated_client_runs_the_example_flow_with_no_token_for_the_public_lookup(
    server: tuple[str, str], generated: Any
):
    base, started_log = server
    email, password = demo_credentials(started_log)
    models = generated.models
    client_module = generated.client
    sent_authorization: list[str | None] = []
    anonymous = client_module.Client(
        base_url=base,
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(20),
        httpx_args={
            "event_hooks": {
                "request": [lambda r: sent_authorization.append(r.headers.get("authorization"))]
            }
        },
    )

    signed_in = generated.api__auth__token.sync(
        client=anonymous, body=models.TokenRequest(email=email, password=password)
    )
    assert isinstance(signed_in, models.TokenResponse), signed_in
    host = client_module.AuthenticatedClient(
        base_url=base,
        token=signed_in.access_token,
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(20),
    )

    # Create a single-use link (the example's body).
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    created = generated.api__links__create_link.sync(
        client=host,
        body=models.LinkCreate(
            rate_per_minute="2.50",
            window_size_minutes=10,
            max_uses=1,
            expires_at=expires_at,
            label="Session with Alex",
        ),
    )
    assert isinstance(created, models.LinkResponse), created
    link = created.link
    assert (link.rate_per_minute, link.window_size_minutes, link.max_uses) == ("2.50", 10, 1)
    assert (link.use_count, link.label, link.is_active) == (0, "Session with Alex", True)
    assert link.expires_at == expires_at
    assert link.url == f"{base}/c/{link.short_code}"

    # List active links.
    listed = generated.api__links__list_links.sync(client=host, active=True)
    assert isinstance(listed, models.LinkListResponse), listed
    assert [item.short_code for item in listed.links] == [link.short_code]
    assert isinstance(listed.links[0], models.LinkSummary)
    assert (listed.pagination.has_more, listed.pagination.limit) == (False, 20)

    # Get the link (public): a plain Client, no token sent, the public view parsed. The document
    # the client came from says so (a fuzzer or a typed client otherwise insists on a token).
    lookup = httpx.get(f"{base}/openapi.json").json()["paths"]["/v1/links/{short_code}"]["get"]
    assert {} in lookup["security"]
    sent_authorization.clear()
    public = generated.api__links__get_link.sync(link.short_code, client=anonymous)
    assert sent_authorization == [None]
    assert isinstance(public, models.LinkLookupResponse), public
    assert isinstance(public.link, models.PublicLink), public.link
    assert public.link.host.display_name == "Demo Host"
    assert (public.link.rate_per_minute, public.link.is_active) == ("2.50", True)
    # The owner's token on the same operation gives the owner's view.
    owned = generated.api__links__get_link.sync(link.short_code, client=host)
    assert isinstance(owned.link, models.OwnerLink), owned.link
    assert (owned.link.id, owned.link.label) == (link.id, "Session with Alex")

    # A guest starts a call on it with the simulated provider's test card.
    started = generated.api__sessions__start_session.sync(
        link.short_code,
        client=anonymous,
        body=models.SessionStart(
            guest_name="Alex", guest_email="alex@example.com", payment_method_id="pm_card_visa"
        ),
    )
    assert isinstance(started, models.SessionStarted), started
    assert started.session.state == models.SessionState.WAITING_FOR_HOST
    assert (started.session.rate_per_minute, started.session.guest_name) == ("2.50", "Alex")
    guest = client_module.AuthenticatedClient(
        base_url=base, token=started.guest_token, raise_on_unexpected_status=True
    )
    seen = generated.api__sessions__get_session.sync(started.session.id, client=guest)
    assert isinstance(seen, models.SessionResponse), seen
    assert seen.session.id == started.session.id
    assert seen.session.terms.window_size_minutes == 10

    declined = generated.api__sessions__decline.sync(started.session.id, client=host)
    assert isinstance(declined, models.SessionResponse), declined
    assert declined.session.state == models.SessionState.DECLINED
    assert declined.session.billed == "0.00"

    # Delete the link; the public lookup then answers in the error shape.
    deleted = generated.api__links__delete_link.sync_detailed(link.id, client=host)
    assert deleted.status_code == 204
    gone = generated.api__links__get_link.sync(link.short_code, client=anonymous)
    assert isinstance(gone, models.ErrorResponse), gone
    assert gone.error.code == "not_found"
