"""Pytest fixtures that run the fake Stripe: a localstripe process and the stand-in in front.

    from tests.payments.fake_stripe.servers import localstripe_url, stripe_standin

`localstripe_url` (session): base URL of a localstripe 1.15.10 process on 127.0.0.1. It is
started through a tiny launcher instead of the `localstripe` CLI because the CLI binds every
interface (`::`) and pickles its whole store to the fixed path /tmp/localstripe.pickle after
every write; the launcher binds 127.0.0.1 on a port the OS picks, never loads or writes that
file (what `--from-scratch` plus no persistence means), and dies with the test process.

`stripe_standin` (session): a started `StripeStandin` (see `standin.py`) in front of it, with
`.url` (point the SDK here), `.localstripe_url`, `.requests`, `.requests_to(prefix)`,
`.complete_onboarding(account_id)`, fault injection (`.fail_next(...)`: the next matching
requests answered 5xx/429 without forwarding; `.drop_next(...)`: processed, then the
connection closed before the answer), `.reset()` and `.sdk_client()`.

`make_payment_method(client_or_url, number)`: a card PaymentMethod with that test number.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from tests.payments.fake_stripe.standin import StripeStandin

STARTUP_TIMEOUT_SECONDS = 20.0
TEST_API_KEY = "sk_test_12345"

VISA = "4242424242424242"
DECLINED_GENERIC = "4000000000000002"  # declined when attached (localstripe) / charged
DECLINED_INSUFFICIENT_FUNDS = "4000000000009995"  # declined when attached, insufficient_funds
DECLINED_ON_CHARGE = "4000000000000341"  # attaches, then the charge is declined
REQUIRES_AUTHENTICATION = "4000002500003155"  # 3-D Secure: requires_action

# Runs localstripe's aiohttp app on 127.0.0.1 only, with the store kept in memory only.
_LAUNCHER = """
import ctypes, os, signal, socket, sys
try:  # die with the test process even if it is killed
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except OSError:
    pass
if os.getppid() != int(sys.argv[2]):
    sys.exit("parent already gone")
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
port_file = sys.argv[1]
with open(port_file + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)
"""


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:] or "(no output)"
    except OSError:
        return "(no output)"


@contextmanager
def run_localstripe(work_dir: Path) -> Iterator[str]:
    """Start localstripe, yield its base URL once it answers, stop it afterwards.

    Fails the test (never skips) if it does not answer within STARTUP_TIMEOUT_SECONDS.
    """
    port_file = work_dir / "localstripe.port"
    log_file = work_dir / "localstripe.log"
    port_file.unlink(missing_ok=True)
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(port_file), str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
        )
    try:
        url = _wait_for_localstripe(process, port_file, log_file)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_for_localstripe(process: subprocess.Popen[bytes], port_file: Path, log: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error = "no port yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"localstripe exited with status {process.returncode} before answering "
                f"(is it installed in {sys.prefix}?). Its output:\n{_tail(log)}",
                pytrace=False,
            )
        if port_file.exists():
            url = f"http://127.0.0.1:{port_file.read_text().strip()}"
            try:
                response = httpx.get(
                    f"{url}/v1/balance",
                    headers={"Authorization": f"Bearer {TEST_API_KEY}"},
                    timeout=1.0,
                )
                if response.status_code == 200:
                    return url
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.TransportError as error:
                last_error = repr(error)
        time.sleep(0.05)
    process.kill()
    pytest.fail(
        f"localstripe did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s "
        f"(last attempt: {last_error}). Its output:\n{_tail(log)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_localstripe(tmp_path_factory.mktemp("localstripe")) as url:
        yield url


_running: list[StripeStandin] = []


@pytest.fixture(scope="session")
def stripe_standin(localstripe_url: str) -> Iterator[StripeStandin]:
    standin = StripeStandin(localstripe_url)
    try:
        standin.start()
    except RuntimeError as error:
        pytest.fail(f"the Stripe stand-in did not start: {error!r}", pytrace=False)
    _running.append(standin)
    try:
        yield standin
    finally:
        _running.remove(standin)
        standin.stop()


@pytest.fixture(autouse=True)
def _reset_stripe_standin() -> Iterator[None]:
    """After each test, forget the stand-in's recorded requests and idempotency keys, if it
    was started (this fixture never starts it)."""
    yield
    for standin in _running:
        standin.reset()


def stripe_client(url: str, api_key: str = TEST_API_KEY) -> stripe.StripeClient:
    """The official SDK pointed at `url` (the stand-in, normally), with no SDK retries."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": url},
        http_client=stripe.HTTPXClient(),
        max_network_retries=0,
    )


async def make_payment_method(
    client_or_url: stripe.StripeClient | StripeStandin | str,
    number: str = VISA,
    *,
    exp_month: int = 12,
    exp_year: int = 2034,
    cvc: str = "123",
) -> str:
    """Create a card PaymentMethod with a test card number; returns its id.

    localstripe knows only `pm_card_visa` of Stripe's `pm_card_*` shortcuts, so a decline
    needs a created card: DECLINED_GENERIC / DECLINED_INSUFFICIENT_FUNDS are refused when
    attached to a customer (stripe.CardError, code card_declined), DECLINED_ON_CHARGE when
    a PaymentIntent is confirmed.
    """
    if isinstance(client_or_url, StripeStandin):
        client: Any = client_or_url.sdk_client()
    elif isinstance(client_or_url, str):
        client = stripe_client(client_or_url)
    else:
        client = client_or_url
    method = await client.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc},
        }
    )
    return str(method.id)
