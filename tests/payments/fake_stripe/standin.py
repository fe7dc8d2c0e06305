"""A STAND-IN for the parts of Stripe that localstripe lacks. Test code only.

The app's Stripe SDK client is pointed at this server; it answers some requests itself and
forwards the rest to a real localstripe process (see `servers.py`). Everything here is a
deliberate imitation of documented Stripe behaviour, kept apart from localstripe so that a
reader can tell which behaviour a test checks against which fake:

Answered here (localstripe 1.15.10 answers 404):
  * Connect: `POST /v1/accounts`, `GET /v1/accounts/{id}`, `POST /v1/accounts/{id}`,
    `POST /v1/account_links`. Accounts start unready (charges/payouts disabled, requirements
    due); the account link's `url` points back at this server, and opening it (GET) completes
    onboarding and redirects to `return_url`, once (later visits go to `refresh_url`).

Added on top of localstripe:
  * Idempotency for every POST under /v1/ (localstripe ignores `Idempotency-Key`): the same
    key, endpoint and parameters replay the first response (`Idempotent-Replayed: true`); other
    parameters or another endpoint give 400 `idempotency_error`; a key whose first request is
    still running gives 409. Keys are scoped per API key. Responses with status 5xx, 409 or
    429 are not stored, so a retry runs again (as on Stripe).
  * Params localstripe rejects with 400 "Unexpected ..." are stripped before forwarding and
    recorded: Connect ones (`application_fee_amount`, `transfer_data[...]`, `on_behalf_of`),
    `setup_future_usage`, `reverse_transfer`, `refund_application_fee`, and on PaymentIntents
    `description`, `statement_descriptor[_suffix]`, `transfer_group`, `receipt_email`,
    `cancellation_reason`, `error_on_requires_action`, `return_url` (and everything but
    `amount_to_capture` / `payment_method` on capture / confirm / cancel).
  * PaymentIntent responses get the fields real Stripe has: the stripped values put back
    (`application_fee_amount`, `transfer_data: {"destination": ...}`, `setup_future_usage`,
    ... null when not given), `amount_capturable`, `amount_received`, `latest_charge` as an
    id (localstripe embeds the whole charge and the deprecated `charges` list, dropped here),
    `payment_method_types`. Per-PaymentIntent state lives here, so GETs show it too. Charges
    get `amount_captured`.
  * The API version the SDK pins (`2026-10-28.endive`): since `2026-09-30.endive`, Stripe refuses
    `payment_method_types` on PaymentIntent create, update and confirm (400
    `payment_method_types_no_longer_supported`) and takes `allowed_payment_method_types`, which
    localstripe does not know: it is forwarded as localstripe's `payment_method_types`. Requests
    without a `Stripe-Version` header (the account's default version) keep the old parameter.
  * Stripe's checks that localstripe skips: capture/cancel only in the states Stripe allows
    (localstripe captures a canceled PaymentIntent), `transfer_data[destination]` must be a
    known account with an active `transfers` capability, `application_fee_amount` needs a
    destination, a refund may not exceed what was captured and not yet refunded (localstripe
    would refund the whole authorized amount).
  * Error bodies shaped like Stripe's: declines get `type: card_error` and a `decline_code`
    from the test card number (localstripe says `invalid_request_error`, no decline code);
    404s get `code: resource_missing`; an off-session PaymentIntent whose card needs 3-D
    Secure becomes a 402 `authentication_required` (localstripe returns `requires_action`).

Added for tests to inject (nothing happens unless a test asks; `reset()` drops what is pending):
  * `fail_next(n, status=500 | 429, path_prefix=..., retry_after=...)`: the next n matching
    requests (POST by default) are refused with a Stripe-shaped error (5xx: `type: api_error`;
    429: `type: invalid_request_error`, `code: rate_limit`, and a `Retry-After` header if
    given) without being forwarded or touching idempotency state, so a retry runs afresh.
  * `drop_next(n, path_prefix=...)`: the next n matching requests are handled in full (their
    response stored under the idempotency key) but the connection is closed instead of
    answering, as when a response is lost on the way back; a retry gets the stored replay.
  Recorded requests say which fault met them (`RecordedRequest.fault`).

Not imitated: balances, transfers and application fee objects, webhooks from the stand-in's
own objects, the `Stripe-Account` header (recorded only), and localstripe's partial capture
still records the released remainder as a refund on the charge.

Every request under /v1/ is recorded (`StripeStandin.requests`, `GET /_standin/requests`).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web
from yarl import URL

Params = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PARSED: web.RequestKey[dict[str, Any]] = web.RequestKey("standin", dict)
_SLOWED_BY: web.RequestKey[float] = web.RequestKey("standin_slowed_by", float)

# Stripped from every request forwarded to localstripe, which rejects them.
STRIPPED_EVERYWHERE = frozenset(
    {
        "application_fee_amount",
        "transfer_data",
        "on_behalf_of",
        "setup_future_usage",
        "reverse_transfer",
        "refund_application_fee",
    }
)
# Also stripped on PaymentIntent create/update (real Stripe params localstripe rejects).
STRIPPED_ON_INTENTS = frozenset(
    {
        "description",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_group",
        "receipt_email",
        "cancellation_reason",
        "error_on_requires_action",
        "return_url",
    }
)
# On PaymentIntent actions localstripe accepts only these (everything else is stripped).
ACCEPTED_ON_INTENT_ACTION = {
    "capture": frozenset({"amount_to_capture", "expand"}),
    "confirm": frozenset({"payment_method", "expand"}),
    "cancel": frozenset({"expand"}),
}
# Stripped PaymentIntent params that Stripe shows on the object (null when never given).
INTENT_FIELDS = (
    "application_fee_amount",
    "transfer_data",
    "on_behalf_of",
    "setup_future_usage",
    "description",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
    "receipt_email",
    "cancellation_reason",
)

# Test cards: number -> (code, decline_code, message), as Stripe reports the decline.
CARD_DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4242424242424241": ("incorrect_number", "incorrect_number", "Your card number is incorrect."),
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
}

EXPRESS_REQUIREMENTS = [
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "representative.first_name",
    "representative.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
ACCOUNT_CREATE_PARAMS = frozenset(
    {
        "type",
        "email",
        "country",
        "capabilities",
        "metadata",
        "business_type",
        "business_profile",
        "controller",
        "default_currency",
        "settings",
        "tos_acceptance",
        "individual",
        "company",
        "external_account",
        "expand",
    }
)
ACCOUNT_UPDATE_PARAMS = frozenset(
    {"email", "metadata", "business_profile", "business_type", "settings", "expand"}
)
ACCOUNT_LINK_PARAMS = frozenset(
    {"account", "refresh_url", "return_url", "type", "collect", "collection_options", "expand"}
)
ACCOUNT_LINK_TTL_SECONDS = 300

# The first API version without a writable `payment_method_types` on PaymentIntents.
PAYMENT_METHOD_TYPES_REMOVED_IN = "2026-09-30"
_PI_PATH = re.compile(r"^/v1/payment_intents/([^/]+)(?:/(capture|confirm|cancel))?$")
_PM_ATTACH_PATH = re.compile(r"^/v1/payment_methods/([^/]+)/attach$")
_OBJECT_PATH = re.compile(r"^/v1/([a-z_]+?)s/([^/]+)")


# ---------------------------------------------------------------------------------------------
# Form bodies with bracket notation


def parse_form_pairs(pairs: Iterable[tuple[str, str]]) -> Params:
    """`a[b][c]=1&l[0]=x&l[1]=y&e[]=z` -> `{"a": {"b": {"c": "1"}}, "l": ["x", "y"], "e": ["z"]}`.

    Values stay strings, as sent. Dicts whose keys are all indices become lists.
    """
    root: Params = {}
    for key, value in pairs:
        parts = _key_parts(key)
        node = root
        for part in parts[:-1]:
            part = str(len(node)) if part == "" else part
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        last = str(len(node)) if parts[-1] == "" else parts[-1]
        node[last] = value
    return _lists(root)


def parse_form(body: str) -> Params:
    return parse_form_pairs(parse_qsl(body, keep_blank_values=True))


def _key_parts(key: str) -> list[str]:
    match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
    if not match:
        return [key]
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _base_name(key: str) -> str:
    return key.split("[", 1)[0]


def _localstripe_name(key: str) -> str:
    """localstripe predates `allowed_payment_method_types`; its `payment_method_types` does the
    same job for the card-only intents tests make."""
    if _base_name(key) == "allowed_payment_method_types":
        return key.removeprefix("allowed_")
    return key


def _check_payment_method_types(request: web.Request, params: Params, action: str | None) -> None:
    version = request.headers.get("Stripe-Version", "")
    if action not in (None, "confirm") or "payment_method_types" not in params:
        return
    if version and version >= PAYMENT_METHOD_TYPES_REMOVED_IN:
        raise _error(
            400,
            "`payment_method_types` is no longer supported on this API version; use "
            "`allowed_payment_method_types`, `excluded_payment_method_types` or dynamic "
            "payment methods.",
            code="payment_method_types_no_longer_supported",
            param="payment_method_types",
        )


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _int_or(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------------------------------
# Stripe-shaped errors


class StripeErrorResponse(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> StripeErrorResponse:
    error: dict[str, Any] = {"type": type, "message": message}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return StripeErrorResponse(status, error)


def _missing(kind: str, object_id: str, param: str | None = None) -> StripeErrorResponse:
    return _error(
        400 if param else 404,
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def _request_id() -> str:
    return "req_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(14))


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers={"Request-Id": _request_id(), **(headers or {})},
    )


def _error_response(error: StripeErrorResponse) -> web.Response:
    return _json(error.status, {"error": error.error})


# ---------------------------------------------------------------------------------------------
# Recorded requests


@dataclass
class RecordedRequest:
    """One request the stand-in received under /v1/ (recorded on arrival)."""

    method: str
    path: str
    query: Params
    params: Params  # the whole parsed form body, stripped params included
    idempotency_key: str | None
    timestamp: float
    stripped: Params = field(default_factory=dict)  # what was not forwarded to localstripe
    forwarded: bool = False  # sent on to localstripe (False: answered by the stand-in)
    replayed: bool = False  # an idempotent replay of a stored response
    status: int | None = None  # response status, once answered
    stripe_account: str | None = None  # the `Stripe-Account` header (not otherwise imitated)
    # An injected fault: "refused" (answered with `fail_next`'s error, never forwarded) or
    # "dropped" (handled, `status` is what it produced, but the client got no response), or
    # "slowed" (handled in full, late).
    fault: str | None = None


@dataclass
class _Fault:
    """A pending `fail_next` ("refuse"), `drop_next` ("drop") or `slow_next` ("slow") for
    matching requests."""

    kind: str
    remaining: int
    method: str | None
    path_prefix: str
    status: int = 500
    retry_after: float | None = None
    message: str = ""
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and path.startswith(self.path_prefix)
        )

    def response(self) -> web.Response:
        error: dict[str, Any] = {"message": self.message}
        if self.status == 429:
            error.update(type="invalid_request_error", code="rate_limit")
        else:
            error["type"] = "api_error"
        headers = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
        return _json(self.status, {"error": error}, headers)


@dataclass
class _StoredResponse:
    endpoint: str
    params: Params
    status: int
    body: bytes
    request_id: str


class StripeStandin:
    """The stand-in server. Use `start()`/`stop()` (or `with`); `url` is its base address.

    State is shared between the server thread and test code under one lock; what test code
    reads is copied.
    """

    def __init__(self, localstripe_url: str, *, host: str = "127.0.0.1") -> None:
        self.localstripe_url = localstripe_url.rstrip("/")
        self.host = host
        self.url = ""
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._accounts: dict[str, dict[str, Any]] = {}
        self._links: dict[str, dict[str, Any]] = {}
        self._intents: dict[str, dict[str, Any]] = {}  # pi id -> stand-in state
        self._cards: dict[str, str] = {}  # payment method id -> card number
        self._idempotent: dict[tuple[str, str], _StoredResponse] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self._faults: list[_Fault] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> StripeStandin:
        self._thread = threading.Thread(target=self._run, name="stripe-standin", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError(f"the Stripe stand-in did not start within {timeout} s")
        if self._start_error is not None:
            raise RuntimeError("the Stripe stand-in failed to start") from self._start_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> StripeStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            self._start_error = error
            self._started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
            server = site._server
            assert server is not None and server.sockets
            port = server.sockets[0].getsockname()[1]
            self.url = f"http://{self.host}:{port}"
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self._session.close()

    # -- what tests use ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path starts with `path_prefix` (and of `method`, if given)."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
        ]

    def last_request(self, path_prefix: str = "/v1/", method: str | None = None) -> RecordedRequest:
        matching = self.requests_to(path_prefix, method)
        assert matching, f"no {method or ''} request to {path_prefix} was recorded"
        return matching[-1]

    def complete_onboarding(self, account_id: str) -> dict[str, Any]:
        """Do what finishing Stripe's hosted onboarding does; return the account.

        Raises KeyError for an unknown account."""
        with self._lock:
            account = self._accounts[account_id]
            account["charges_enabled"] = True
            account["payouts_enabled"] = True
            account["details_submitted"] = True
            account["business_type"] = account["business_type"] or "individual"
            account["tos_acceptance"] = {"date": int(time.time()), "ip": "127.0.0.1"}
            account["capabilities"] = dict.fromkeys(account["capabilities"], "active")
            for part in ("requirements", "future_requirements"):
                account[part] = _requirements([])
            return json.loads(json.dumps(account))

    def account(self, account_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._accounts[account_id]))

    def reset(self) -> None:
        """Forget recorded requests, stored idempotent responses and pending faults (objects
        stay)."""
        with self._lock:
            self._requests.clear()
            self._idempotent.clear()
            self._faults.clear()

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        path_prefix: str = "/v1/payment_intents",
        method: str | None = "POST",
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Refuse the next `n` requests whose path starts with `path_prefix` (and of `method`;
        None: any) with a transient Stripe error: `status` 429 or 5xx, and a `Retry-After`
        header of `retry_after` seconds if given. Refused requests are recorded (`fault` is
        "refused") but never forwarded, so they create nothing and store no idempotent result.
        """
        if n < 1 or not (status == 429 or 500 <= status <= 599):
            raise ValueError("fail_next needs n >= 1 and a status of 429 or 5xx")
        default = (
            "Too many requests hit the API too quickly (injected by the stand-in)."
            if status == 429
            else "An unknown error occurred (injected by the stand-in)."
        )
        fault = _Fault(
            "refuse",
            n,
            method.upper() if method else None,
            path_prefix,
            status=status,
            retry_after=retry_after,
            message=message or default,
        )
        with self._lock:
            self._faults.append(fault)

    def drop_next(
        self, n: int = 1, *, path_prefix: str = "/v1/payment_intents", method: str | None = "POST"
    ) -> None:
        """Handle the next `n` matching requests in full (forwarded, idempotent result stored)
        but close the connection instead of answering: the client sees a dropped connection
        after the work was done. Recorded with `fault` "dropped"."""
        if n < 1:
            raise ValueError("drop_next needs n >= 1")
        with self._lock:
            self._faults.append(_Fault("drop", n, method.upper() if method else None, path_prefix))

    def slow_next(
        self,
        n: int = 1,
        *,
        seconds: float,
        path_prefix: str = "/v1/payment_intents",
        method: str | None = "POST",
    ) -> None:
        """Handle the next `n` matching requests in full, `seconds` late: a request that
        repeats one under the same key meanwhile finds it still running (409, as on Stripe).
        Recorded with `fault` "slowed"."""
        if n < 1 or seconds <= 0:
            raise ValueError("slow_next needs n >= 1 and seconds > 0")
        fault = _Fault("slow", n, method.upper() if method else None, path_prefix, seconds=seconds)
        with self._lock:
            self._faults.append(fault)

    @property
    def pending_faults(self) -> int:
        """How many injected failures have not met a request yet."""
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        """The first pending fault matching this request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
        return None

    def provider_settings(self, settings: Any, api_key: str, *, max_retries: int) -> Any:
        """The app's settings switched to Stripe payments against this stand-in."""
        return settings.model_copy(
            update={
                "payments": "stripe",
                "stripe_secret_key": api_key,
                "stripe_webhook_secret": "whsec_standin",
                "stripe_api_base": self.url,
                "stripe_max_retries": max_retries,
            }
        )

    def sdk_client(self, api_key: str = "sk_test_12345") -> Any:
        """An official SDK client pointed at the stand-in, without SDK retries."""
        import stripe

        return stripe.StripeClient(
            api_key,
            base_addresses={"api": self.url},
            http_client=stripe.HTTPXClient(),
            max_network_retries=0,
        )

    # -- the web app -------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._api_middleware], client_max_size=4 * 1024**2)
        app.router.add_post("/v1/accounts", self._create_account)
        app.router.add_get("/v1/accounts/{id}", self._retrieve_account)
        app.router.add_post("/v1/accounts/{id}", self._update_account)
        app.router.add_post("/v1/account_links", self._create_account_link)
        app.router.add_route("*", "/v1/{tail:.*}", self._proxy)
        app.router.add_post(
            "/_standin/accounts/{id}/complete_onboarding", self._control_complete_onboarding
        )
        app.router.add_get("/_standin/account_links/{token}", self._follow_account_link)
        app.router.add_get("/_standin/requests", self._control_requests)
        app.router.add_post("/_standin/reset", self._control_reset)
        return app

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        body = await request.read()
        text = body.decode("utf-8", errors="replace")
        if request.content_type == "application/json" and text.strip():
            try:
                params = json.loads(text)
            except json.JSONDecodeError:
                params = {}
            pairs: list[tuple[str, str]] | None = None
        else:
            pairs = parse_qsl(text, keep_blank_values=True)
            params = parse_form_pairs(pairs)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=parse_form_pairs(parse_qsl(request.query_string, keep_blank_values=True)),
            params=params,
            idempotency_key=request.headers.get("Idempotency-Key"),
            timestamp=time.time(),
            stripe_account=request.headers.get("Stripe-Account"),
        )
        with self._lock:
            self._requests.append(record)
        fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.kind == "refuse":
            record.fault = "refused"
            record.status = fault.status
            return fault.response()
        if fault is not None and fault.kind == "slow":
            record.fault = "slowed"
        request[PARSED] = {"record": record, "params": params, "pairs": pairs, "body": body}
        request[_SLOWED_BY] = fault.seconds if fault is not None and fault.kind == "slow" else 0.0
        try:
            if request.method == "POST" and record.idempotency_key:
                response = await self._idempotently(request, record, handler)
            else:
                response = await handler(request)
        except StripeErrorResponse as error:
            response = _error_response(error)
        except web.HTTPException as error:
            response = _json(
                error.status,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unrecognized request URL ({request.method}: {request.path}).",
                    }
                },
            )
        except Exception as error:  # a stand-in bug: say so in Stripe's error shape
            response = _json(
                500,
                {"error": {"type": "api_error", "message": f"Stripe stand-in error: {error!r}"}},
            )
        record.status = response.status
        if fault is not None and fault.kind == "drop" and request.transport is not None:
            # drop_next: lose the answer
            record.fault = "dropped"
            # aiohttp then finds the transport closing and skips the response quietly.
            request.transport.close()
        return response

    async def _idempotently(
        self, request: web.Request, record: RecordedRequest, handler: Handler
    ) -> web.StreamResponse:
        key = record.idempotency_key or ""
        scope = (request.headers.get("Authorization", ""), key)
        endpoint = f"{request.method} {request.path}"
        with self._lock:
            stored = self._idempotent.get(scope)
            busy = scope in self._in_flight
            if stored is None and not busy:
                self._in_flight.add(scope)
        if stored is not None:
            if stored.endpoint != endpoint:
                raise _error(
                    400,
                    "Keys for idempotent requests can only be used for the same endpoint they "
                    f"were first used for ('{stored.endpoint}' vs '{endpoint}'). Try using a key "
                    f"other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            if stored.params != record.params:
                raise _error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    type="idempotency_error",
                )
            record.replayed = True
            return web.Response(
                status=stored.status,
                body=stored.body,
                content_type="application/json",
                headers={
                    "Request-Id": _request_id(),
                    "Idempotency-Key": key,
                    "Idempotent-Replayed": "true",
                    "Original-Request": stored.request_id,
                },
            )
        if busy:
            raise _error(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        try:
            if request[_SLOWED_BY]:  # slow_next: still running when a repeat comes
                await asyncio.sleep(request[_SLOWED_BY])
            try:
                response = await handler(request)
            except StripeErrorResponse as error:
                response = _error_response(error)
            if (
                isinstance(response, web.Response)
                and response.status < 500
                and response.status not in (409, 429)
            ):
                body = response.body if isinstance(response.body, bytes) else b""
                stored = _StoredResponse(
                    endpoint,
                    record.params,
                    response.status,
                    body,
                    response.headers.get("Request-Id", _request_id()),
                )
                with self._lock:
                    self._idempotent[scope] = stored
            response.headers["Idempotency-Key"] = key
            return response
        finally:
            with self._lock:
                self._in_flight.discard(scope)

    # -- Connect (answered here) -------------------------------------------------------------

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not re.fullmatch(r"(Bearer sk_\S+|Basic \S+)", header):
            raise _error(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_"
                "SECRET_KEY').",
            )

    @staticmethod
    def _check_params(params: Params, allowed: frozenset[str]) -> None:
        for name in params:
            if name not in allowed:
                raise _error(
                    400,
                    f"Received unknown parameter: {name}",
                    code="parameter_unknown",
                    param=name,
                )

    async def _create_account(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        params: Params = request[PARSED]["params"]
        self._check_params(params, ACCOUNT_CREATE_PARAMS)
        account_type = params.get("type", "standard")
        if account_type not in ("custom", "express", "standard"):
            raise _error(
                400,
                "Invalid type: must be one of custom, express, or standard",
                code="parameter_invalid_string",
                param="type",
            )
        capabilities = params.get("capabilities") or {}
        metadata = params.get("metadata") or {}
        if not isinstance(capabilities, dict) or not isinstance(metadata, dict):
            raise _error(400, "Invalid object", code="parameter_invalid_object")
        account_id = "acct_1" + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(15)
        )
        due = list(EXPRESS_REQUIREMENTS)
        account: dict[str, Any] = {
            "id": account_id,
            "object": "account",
            "type": account_type,
            "email": params.get("email"),
            "country": params.get("country", "US"),
            "default_currency": params.get("default_currency", "usd"),
            "created": int(time.time()),
            "business_type": params.get("business_type"),
            "business_profile": {
                "mcc": None,
                "name": None,
                "product_description": None,
                "support_email": None,
                "url": None,
                **(params.get("business_profile") or {}),
            },
            "capabilities": {
                name: "inactive"
                for name, wanted in capabilities.items()
                if isinstance(wanted, dict) and _truthy(wanted.get("requested"))
            },
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "metadata": {str(k): str(v) for k, v in metadata.items()},
            "requirements": _requirements(due, disabled_reason="requirements.past_due"),
            "future_requirements": _requirements([]),
            "tos_acceptance": {"date": None},
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/accounts/{account_id}/external_accounts",
            },
            "settings": {
                "payouts": {"schedule": {"interval": "daily", "delay_days": 2}},
                "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            },
            "controller": {
                "type": "application",
                "is_controller": True,
                "stripe_dashboard": {"type": "express" if account_type == "express" else "full"},
            },
            "livemode": False,
        }
        with self._lock:
            self._accounts[account_id] = account
            payload = json.loads(json.dumps(account))
        return _json(200, payload)

    def _existing_account(self, account_id: str, param: str | None = None) -> dict[str, Any]:
        account = self._accounts.get(account_id)
        if account is None:
            raise _missing("account", account_id, param)
        return account

    async def _retrieve_account(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        with self._lock:
            payload = json.loads(json.dumps(self._existing_account(request.match_info["id"])))
        return _json(200, payload)

    async def _update_account(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        params: Params = request[PARSED]["params"]
        self._check_params(params, ACCOUNT_UPDATE_PARAMS)
        with self._lock:
            account = self._existing_account(request.match_info["id"])
            for name, value in params.items():
                if name == "metadata" and isinstance(value, dict):
                    for key, item in value.items():
                        if item == "":
                            account["metadata"].pop(key, None)
                        else:
                            account["metadata"][key] = item
                elif name == "business_profile" and isinstance(value, dict):
                    account["business_profile"].update(value)
                elif name != "expand":
                    account[name] = value
            payload = json.loads(json.dumps(account))
        return _json(200, payload)

    async def _create_account_link(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        params: Params = request[PARSED]["params"]
        self._check_params(params, ACCOUNT_LINK_PARAMS)
        for name in ("account", "type"):
            if not params.get(name):
                raise _error(
                    400,
                    f"Missing required param: {name}.",
                    code="parameter_missing",
                    param=name,
                )
        if params["type"] not in ("account_onboarding", "account_update"):
            raise _error(
                400,
                "Invalid type: must be one of account_onboarding or account_update",
                code="parameter_invalid_string",
                param="type",
            )
        for name in ("refresh_url", "return_url"):
            if not str(params.get(name, "")).startswith(("http://", "https://")):
                raise _error(
                    400,
                    f"Not a valid URL: {name}" if params.get(name) else f"Missing {name}.",
                    code="url_invalid" if params.get(name) else "parameter_missing",
                    param=name,
                )
        now = int(time.time())
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._existing_account(params["account"], param="account")
            self._links[token] = {
                "account": params["account"],
                "refresh_url": params["refresh_url"],
                "return_url": params["return_url"],
                "expires_at": now + ACCOUNT_LINK_TTL_SECONDS,
                "used": False,
            }
        return _json(
            200,
            {
                "object": "account_link",
                "created": now,
                "expires_at": now + ACCOUNT_LINK_TTL_SECONDS,
                "url": f"{self.url}/_standin/account_links/{token}",
            },
        )

    async def _follow_account_link(self, request: web.Request) -> web.Response:
        """The hosted onboarding page: one visit completes onboarding and goes back."""
        with self._lock:
            link = self._links.get(request.match_info["token"])
            if link is None:
                return web.Response(status=404, text="Unknown account link.")
            if link["used"] or link["expires_at"] < time.time():
                raise web.HTTPSeeOther(link["refresh_url"])
            link["used"] = True
        self.complete_onboarding(link["account"])
        raise web.HTTPSeeOther(link["return_url"])

    # -- test control ------------------------------------------------------------------------

    async def _control_complete_onboarding(self, request: web.Request) -> web.Response:
        try:
            return _json(200, self.complete_onboarding(request.match_info["id"]))
        except KeyError:
            return _error_response(_missing("account", request.match_info["id"]))

    async def _control_requests(self, request: web.Request) -> web.Response:
        return _json(200, [asdict(r) for r in self.requests])

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json(200, {"reset": True})

    # -- everything else: forwarded to localstripe -------------------------------------------

    async def _proxy(self, request: web.Request) -> web.Response:
        info = request[PARSED]
        record: RecordedRequest = info["record"]
        params: Params = info["params"]
        method, path = request.method, request.path
        intent_match = _PI_PATH.match(path)
        intent_id = intent_match.group(1) if intent_match else None
        action = intent_match.group(2) if intent_match else None

        def stripped_name(name: str) -> bool:
            if method != "POST":
                return False
            if action is not None:
                return name not in ACCEPTED_ON_INTENT_ACTION[action]
            if path.startswith("/v1/payment_intents") and name in STRIPPED_ON_INTENTS:
                return True
            return name in STRIPPED_EVERYWHERE

        if method == "POST" and path.startswith("/v1/payment_intents"):
            _check_payment_method_types(request, params, action)
        if info["pairs"] is not None:
            kept = [
                (_localstripe_name(k), v)
                for k, v in info["pairs"]
                if not stripped_name(_base_name(k))
            ]
            forward_body: bytes = urlencode(kept).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            kept_json = {_localstripe_name(k): v for k, v in params.items() if not stripped_name(k)}
            forward_body = json.dumps(kept_json).encode() if kept_json else b""
            content_type = "application/json"
        stripped = {k: v for k, v in params.items() if stripped_name(k)}
        record.stripped = stripped

        # Checks Stripe makes and localstripe does not.
        if method == "POST" and path == "/v1/payment_intents":
            self._check_destination(params)
        if method == "POST" and action in ("capture", "cancel"):
            await self._check_intent_state(request, str(intent_id), action)
        if method == "POST" and path == "/v1/refunds":
            forward_body = await self._check_refund(request, params, forward_body, info["pairs"])

        if intent_id and action is None and method == "POST" and stripped and not forward_body:
            # An update of stripped fields only: localstripe would refuse an empty update.
            intent = await self._get_local(request, f"/v1/payment_intents/{intent_id}")
            status, payload = (200, intent) if intent else (404, _missing_body(intent_id))
        else:
            record.forwarded = True
            status, payload = await self._forward(request, forward_body, content_type)

        if status == 200 and isinstance(payload, dict):
            self._remember(method, path, params, stripped, intent_id, action, payload)
            if (
                method == "POST"
                and path == "/v1/payment_intents"
                and payload.get("status") == "requires_action"
                and _truthy(params.get("off_session"))
            ):
                return await self._off_session_authentication_failure(payload, params)
        elif isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            await self._shape_error(request, status, payload["error"], params, path)
        expand = params.get("expand") or record.query.get("expand") or []
        self._augment(payload, expand if isinstance(expand, list) else [])
        return _json(status, payload)

    async def _forward(
        self, request: web.Request, body: bytes, content_type: str
    ) -> tuple[int, Any]:
        assert self._session is not None
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        if body:
            headers["Content-Type"] = content_type
        url = URL(self.localstripe_url + request.raw_path, encoded=True)
        try:
            async with self._session.request(
                request.method, url, data=body or None, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
        except aiohttp.ClientError as error:
            raise _error(
                500, f"The stand-in could not reach localstripe: {error!r}", type="api_error"
            ) from error
        try:
            return status, json.loads(raw)
        except ValueError:
            if status == 404:
                message = f"Unrecognized request URL ({request.method}: {request.path})."
            else:
                message = raw.decode("utf-8", errors="replace")[:500]
            kind = "api_error" if status >= 500 else "invalid_request_error"
            return status, {"error": {"type": kind, "message": message}}

    async def _get_local(self, request: web.Request, path: str) -> dict[str, Any] | None:
        assert self._session is not None
        headers = {"Authorization": request.headers.get("Authorization", "")}
        async with self._session.get(self.localstripe_url + path, headers=headers) as response:
            if response.status != 200:
                return None
            payload: dict[str, Any] = await response.json(content_type=None)
            return payload

    def _check_destination(self, params: Params) -> None:
        transfer_data = params.get("transfer_data")
        destination = transfer_data.get("destination") if isinstance(transfer_data, dict) else None
        if destination is not None:
            with self._lock:
                account = self._accounts.get(str(destination))
                if account is None:
                    raise _error(
                        400,
                        f"No such destination: '{destination}'",
                        code="resource_missing",
                        param="transfer_data[destination]",
                    )
                if account["capabilities"].get("transfers") != "active":
                    raise _error(
                        400,
                        "Your destination account needs to have at least one of the following "
                        "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                        code="insufficient_capabilities_for_transfer",
                        param="transfer_data[destination]",
                    )
        if (
            params.get("application_fee_amount") is not None
            and destination is None
            and not params.get("on_behalf_of")
        ):
            raise _error(
                400,
                "Can only apply an application_fee_amount when the PaymentIntent is attempting "
                "a direct payment (using an OAuth key or Stripe-Account header) or destination "
                "payment (using `transfer_data[destination]`).",
                param="application_fee_amount",
            )

    async def _check_intent_state(self, request: web.Request, intent_id: str, action: str) -> None:
        intent = await self._get_local(request, f"/v1/payment_intents/{intent_id}")
        if intent is None:
            return  # localstripe answers the 404 itself
        status = self._intent_status(intent)
        allowed = {
            "capture": ["requires_capture"],
            "cancel": [
                "requires_payment_method",
                "requires_capture",
                "requires_confirmation",
                "requires_action",
                "processing",
            ],
        }[action]
        if status in allowed:
            return
        if action == "capture":
            message = (
                "This PaymentIntent could not be captured because it has a status of "
                f"{status}. Only a PaymentIntent with one of the following statuses may be "
                "captured: requires_capture."
            )
        else:
            message = (
                f"You cannot cancel this PaymentIntent because it has a status of {status}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                f"{', '.join(allowed)}."
            )
        error = _error(400, message, code="payment_intent_unexpected_state")
        self._augment(intent, [])
        error.error["payment_intent"] = intent
        raise error

    async def _check_refund(
        self,
        request: web.Request,
        params: Params,
        body: bytes,
        pairs: list[tuple[str, str]] | None,
    ) -> bytes:
        intent_id = params.get("payment_intent")
        if not isinstance(intent_id, str):
            return body
        intent = await self._get_local(request, f"/v1/payment_intents/{intent_id}")
        if intent is None or self._intent_status(intent) != "succeeded":
            return body
        with self._lock:
            state = self._intents.setdefault(intent_id, {})
            received = state.get("amount_received", intent.get("amount"))
            available = int(received or 0) - int(state.get("amount_refunded", 0))
        amount = _int_or(params.get("amount"))
        if available <= 0:
            raise _error(
                400,
                f"Charge for PaymentIntent {intent_id} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount is not None and amount > available:
            raise _error(
                400,
                f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount on "
                f"charge (${available / 100:.2f})",
                code="amount_too_large",
                param="amount",
            )
        if amount is None and pairs is not None:
            # localstripe would refund the whole authorized amount; Stripe refunds what is left.
            kept = [(k, v) for k, v in parse_qsl(body.decode()) if _base_name(k) != "amount"]
            return urlencode([*kept, ("amount", str(available))]).encode()
        return body

    def _remember(
        self,
        method: str,
        path: str,
        params: Params,
        stripped: Params,
        intent_id: str | None,
        action: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Keep what localstripe does not: stripped values, captured and refunded amounts."""
        with self._lock:
            if method == "POST" and path == "/v1/payment_methods" and "id" in payload:
                card = params.get("card")
                if isinstance(card, dict) and isinstance(card.get("number"), str):
                    self._cards[payload["id"]] = card["number"]
            if payload.get("object") == "payment_intent" and method == "POST":
                state = self._intents.setdefault(payload["id"], {})
                for name in INTENT_FIELDS:
                    if name in stripped:
                        state[name] = _intent_field(name, stripped[name])
                for name in ("payment_method_types", "allowed_payment_method_types"):
                    if name in params and action is None:
                        state["payment_method_types"] = params[name]
                if action == "capture":
                    amount = _int_or(params.get("amount_to_capture"), payload.get("amount"))
                    state["amount_received"] = amount
            if method == "POST" and path == "/v1/refunds" and payload.get("object") == "refund":
                intent_id = payload.get("payment_intent")
                if isinstance(intent_id, str):
                    state = self._intents.setdefault(intent_id, {})
                    state["amount_refunded"] = state.get("amount_refunded", 0) + int(
                        payload.get("amount") or 0
                    )

    def _intent_status(self, intent: dict[str, Any]) -> str:
        with self._lock:
            override = self._intents.get(intent.get("id", ""), {}).get("status_override")
        return str(override or intent.get("status"))

    def _augment(self, payload: Any, expand: list[str]) -> None:
        if not isinstance(payload, dict):
            return
        if payload.get("object") == "list" and isinstance(payload.get("data"), list):
            for item in payload["data"]:
                self._augment(item, [e.removeprefix("data.") for e in expand])
        elif payload.get("object") == "payment_intent":
            self._augment_intent(payload, expand)
        elif payload.get("object") == "charge":
            self._augment_charge(payload)

    def _augment_intent(self, intent: dict[str, Any], expand: list[str]) -> None:
        with self._lock:
            state = dict(self._intents.get(intent.get("id", ""), {}))
        for name in INTENT_FIELDS:
            intent[name] = state.get(name)
        charges = intent.pop("charges", None)
        latest = intent.get("latest_charge")
        if latest is None and isinstance(charges, dict) and charges.get("data"):
            latest = charges["data"][-1]
        if isinstance(latest, dict):
            if "latest_charge" in expand:
                self._augment_charge(latest)
            else:
                latest = latest.get("id")
        intent["latest_charge"] = latest
        if state.get("status_override"):
            intent["status"] = state["status_override"]
            intent["next_action"] = None
            intent["last_payment_error"] = state.get("last_payment_error")
        status = intent.get("status")
        amount = int(intent.get("amount") or 0)
        intent["amount_capturable"] = amount if status == "requires_capture" else 0
        if "amount_received" in state:
            intent["amount_received"] = state["amount_received"]
        else:
            intent["amount_received"] = amount if status == "succeeded" else 0
        if not intent.get("payment_method_types"):
            intent["payment_method_types"] = state.get("payment_method_types", ["card"])
        intent.setdefault("confirmation_method", "automatic")

    def _augment_charge(self, charge: dict[str, Any]) -> None:
        if "amount_captured" in charge:
            return
        with self._lock:
            state = self._intents.get(str(charge.get("payment_intent")), {})
            received = state.get("amount_received")
        if not charge.get("captured"):
            charge["amount_captured"] = 0
        else:
            charge["amount_captured"] = received if received is not None else charge.get("amount")

    async def _shape_error(
        self,
        request: web.Request,
        status: int,
        error: dict[str, Any],
        params: Params,
        path: str,
    ) -> None:
        if status == 404 and "code" not in error and error.get("message") == "Not Found":
            error["code"] = "resource_missing"
            match = _OBJECT_PATH.match(path)
            if match:
                error["message"] = f"No such {match.group(1)}: '{match.group(2)}'"
        if status != 402:
            return
        attach = _PM_ATTACH_PATH.match(path)
        method_id = attach.group(1) if attach else params.get("payment_method")
        with self._lock:
            number = self._cards.get(str(method_id))
        code, decline_code, message = CARD_DECLINES.get(
            number or "", ("card_declined", "generic_decline", "Your card was declined.")
        )
        error.update(type="card_error", code=code, decline_code=decline_code, message=message)
        if method_id:
            error.setdefault("payment_method", {"id": method_id, "object": "payment_method"})
        charge_id = error.get("charge")
        if isinstance(charge_id, str):
            charge = await self._get_local(request, f"/v1/charges/{charge_id}")
            intent_id = charge.get("payment_intent") if charge else None
            if intent_id:
                intent = await self._get_local(request, f"/v1/payment_intents/{intent_id}")
                if intent is not None:
                    if path == "/v1/payment_intents":  # the declined PaymentIntent still exists
                        stripped = {k: v for k, v in params.items() if k in INTENT_FIELDS}
                        self._remember("POST", path, params, stripped, None, None, intent)
                    self._augment(intent, [])
                    error["payment_intent"] = intent

    async def _off_session_authentication_failure(
        self, intent: dict[str, Any], params: Params
    ) -> web.Response:
        """Stripe fails an off-session payment that needs 3-D Secure instead of asking."""
        failure = {
            "type": "card_error",
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "message": "Your card was declined. This transaction requires authentication.",
        }
        with self._lock:
            state = self._intents.setdefault(intent["id"], {})
            state["status_override"] = "requires_payment_method"
            state["last_payment_error"] = dict(failure)
        self._augment(intent, [])
        return _json(402, {"error": {**failure, "payment_intent": intent}})


def _missing_body(intent_id: str) -> dict[str, Any]:
    return {"error": _missing("payment_intent", intent_id).error}


def _intent_field(name: str, value: Any) -> Any:
    if name == "application_fee_amount":
        return _int_or(value, None)
    if name == "transfer_data" and isinstance(value, dict):
        shaped: dict[str, Any] = {"destination": value.get("destination")}
        if value.get("amount") is not None:
            shaped["amount"] = _int_or(value["amount"])
        return shaped
    return value


def _requirements(due: list[str], disabled_reason: str | None = None) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }
