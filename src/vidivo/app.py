"""create_app(settings) → the ASGI app: context, routers, middleware, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from limits.aio.storage import RedisStorage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vidivo.accounts.routes import router as accounts_router
from vidivo.auth.availability import presence_timeout
from vidivo.auth.routes import router as auth_router
from vidivo.auth.service import issue_guest_token
from vidivo.auth.tokens import KeyRing, TokenAuthority
from vidivo.calls.engine import BillingEngine, EngineTimings
from vidivo.calls.metrics import refresh_open_calls
from vidivo.calls.money_routes import router as billing_router
from vidivo.calls.receipt_links import PURPOSE as receipt_links_purpose
from vidivo.calls.receipt_links import ReceiptLinks
from vidivo.calls.routes import router as sessions_router
from vidivo.calls.service import CallService
from vidivo.calls.start import CallStarter
from vidivo.calls.worker import BillingWorker
from vidivo.core.client_address import TrustedProxyClients
from vidivo.core.clock import Clock, ScaledClock, SystemClock, TestClock
from vidivo.core.config import Environment, MetricsMode, Settings
from vidivo.core.db import create_engine, create_session_factory, dispose
from vidivo.core.deps import DbEngine, Provided
from vidivo.core.errors import ServiceUnavailable, install_error_handlers
from vidivo.core.hub import Hub, LocalHub, RedisHub
from vidivo.core.metrics import HttpMetrics, metrics_endpoint, metrics_server, serving
from vidivo.core.middleware import RequestBodyPolicy, SecurityHeaders
from vidivo.core.pagination import CursorSigner
from vidivo.core.public_url import RedirectsToPublicBase
from vidivo.core.ratelimit import RateLimiter
from vidivo.core.request_ids import RequestIds
from vidivo.core.schemas import error_responses
from vidivo.links.fast_create import HostLinkCreateFastPath
from vidivo.links.fast_list import HostLinkListFastPath
from vidivo.links.fast_path import PublicLinkFastPath
from vidivo.links.lookup_guard import LookupGuard
from vidivo.links.public_cache import PublicLinkCache
from vidivo.links.routes import router as links_router
from vidivo.mail.service import Mailer
from vidivo.mail.transports import transport_for
from vidivo.payments.factory import build_provider
from vidivo.payments.provider import PaymentProvider
from vidivo.payouts.routes import router as payouts_router
from vidivo.signaling.routes import router as signaling_router
from vidivo.testclock import router as test_clock_router
from vidivo.web.api_docs import SWAGGER_ASSETS_PATH, swagger_assets
from vidivo.web.api_docs import router as api_docs_router
from vidivo.web.routes import STATIC_DIR
from vidivo.web.routes import router as web_router
from vidivo.webhooks.routes import router as webhooks_router


def _clock_for(settings: Settings) -> Clock:
    if settings.test_clock:
        return TestClock()
    if settings.clock_speed > 1:
        return ScaledClock(settings.clock_epoch or datetime.now(UTC), settings.clock_speed)
    return SystemClock()


@dataclass
class AppContext:
    """Everything the composition root built, once per process. Only the top (this module,
    the CLI, and tests looking inside) sees it whole: each route and service is handed the
    few objects it uses."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keys: KeyRing
    tokens: TokenAuthority
    mailer: Mailer
    limiter: RateLimiter
    cursors: CursorSigner
    payments: PaymentProvider
    hub: Hub
    public_links: PublicLinkCache
    link_lookups: LookupGuard
    receipt_links: ReceiptLinks
    billing: BillingEngine
    worker: BillingWorker
    calls: CallService
    starts: CallStarter


def build_context(settings: Settings, clock: Clock | None = None) -> AppContext:
    clock = clock or _clock_for(settings)
    db_engine = create_engine(settings.database_url)
    factory = create_session_factory(db_engine)
    keys = KeyRing.from_paths(settings.active_signing_key_path, settings.retired_signing_key_paths)
    payments = build_provider(settings, factory, clock)
    hub: Hub = RedisHub(settings.redis_url) if settings.redis_url else LocalHub()
    public_links = PublicLinkCache(settings.public_link_cache_seconds)
    mailer = Mailer(factory, transport_for(settings), clock, sender=settings.mail_from)
    limiter = RateLimiter(
        RedisStorage(
            f"async+{settings.redis_url}", implementation="redispy", key_prefix="vidivo:limits"
        )
        if settings.redis_url
        else None
    )
    receipt_links = ReceiptLinks(
        keys.derive_secret(receipt_links_purpose), settings.public_base_url
    )
    engine_timings = EngineTimings(
        host_join_timeout=timedelta(seconds=settings.host_join_timeout_seconds),
    )
    billing = BillingEngine(
        factory,
        payments,
        clock,
        hub,
        provider_requests_per_second=settings.provider_max_requests_per_second,
        public_links=public_links,
        timings=engine_timings,
        mailer=mailer,
        receipt_links=receipt_links,
    )
    tokens = TokenAuthority(keys, clock, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    return AppContext(
        settings=settings,
        clock=clock,
        engine=db_engine,
        session_factory=factory,
        keys=keys,
        tokens=tokens,
        mailer=mailer,
        limiter=limiter,
        cursors=CursorSigner(keys.derive_secret("pagination-cursor")),
        payments=payments,
        hub=hub,
        public_links=public_links,
        link_lookups=LookupGuard(limiter, settings.link_misses_per_minute),
        receipt_links=receipt_links,
        billing=billing,
        worker=BillingWorker(
            factory,
            billing,
            clock,
            settings.worker_id,
            payments=payments,
            concurrency=settings.worker_concurrency,
        ),
        calls=CallService(factory, clock, payments, billing, hub),
        starts=CallStarter(
            factory,
            clock,
            payments,
            billing,
            hub,
            public_links,
            settings,
            guest_token=partial(issue_guest_token, tokens),
        ),
    )


def provided_by(context: AppContext) -> Provided:
    """Each built object under its type (a Protocol's own class for a Protocol), for the
    narrow dependencies of `vidivo.core.deps.provided`."""
    return {
        Settings: context.settings,
        Clock: context.clock,
        AsyncEngine: context.engine,
        async_sessionmaker: context.session_factory,
        KeyRing: context.keys,
        TokenAuthority: context.tokens,
        Mailer: context.mailer,
        RateLimiter: context.limiter,
        CursorSigner: context.cursors,
        PaymentProvider: context.payments,
        Hub: context.hub,
        PublicLinkCache: context.public_links,
        LookupGuard: context.link_lookups,
        ReceiptLinks: context.receipt_links,
        BillingEngine: context.billing,
        BillingWorker: context.worker,
        CallService: context.calls,
        CallStarter: context.starts,
    }


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    context = build_context(settings, clock)
    before_scrape = partial(refresh_open_calls, context.session_factory)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await context.mailer.deliver_pending()  # whatever an earlier run left unsent
        # The embedded default bills in process; with a test clock, time moves only on request.
        follower = asyncio.create_task(context.public_links.follow(context.hub))
        worker = None
        if settings.worker and not settings.test_clock:
            worker = asyncio.create_task(context.worker.run_forever())
        private_metrics = (
            serving(
                metrics_server(settings.metrics_host, settings.metrics_port, None, before_scrape)
            )
            if settings.metrics == MetricsMode.LISTEN
            else contextlib.nullcontext()
        )
        async with private_metrics:
            yield
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await context.hub.close()
        await dispose(context.engine)

    app = FastAPI(
        title="Vidivo API",
        version="1.0.0",
        summary="Pay-per-minute 1:1 video calls, billed through pre-authorized windows.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their scripts from a CDN: ours is served locally.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Operation ids are the handlers' names: short, stable, and what OpenAPI links name.
        generate_unique_id_function=lambda route: route.name,
        # Observability is /metrics and the JSON logs. FastAPI's own OpenTelemetry hooks
        # would look for a configured provider on every request (~11 µs each): off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.provided = provided_by(context)
    app.state.context = context  # for the domains that still take the whole context
    install_error_handlers(app)
    app.include_router(auth_router)
    app.include_router(accounts_router)
    app.include_router(links_router)
    app.include_router(payouts_router)
    app.include_router(webhooks_router)
    app.include_router(sessions_router)
    app.include_router(billing_router)
    app.include_router(signaling_router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(api_docs_router)
    app.mount(SWAGGER_ASSETS_PATH, swagger_assets(), name="swagger-assets")
    if settings.test_clock:
        app.include_router(test_clock_router)
    app.include_router(_health_router())
    if settings.metrics == MetricsMode.TOKEN:
        endpoint = metrics_endpoint(settings.metrics_token, before_scrape)
        app.add_route("/metrics", endpoint, include_in_schema=False)
    app.add_middleware(
        PublicLinkFastPath,
        engine=context.engine,
        cache=context.public_links,
        guard=context.link_lookups,
        clock=context.clock,
        base_url=settings.public_base_url,
        presence_timeout=presence_timeout(settings.signal_idle_timeout_seconds),
    )
    app.add_middleware(
        HostLinkListFastPath,
        engine=context.engine,
        tokens=context.tokens,
        cursors=context.cursors,
        base_url=settings.public_base_url,
    )
    app.add_middleware(
        HostLinkCreateFastPath,
        engine=context.engine,
        tokens=context.tokens,
        clock=context.clock,
        public_links=context.public_links,
        hub=context.hub,
        base_url=settings.public_base_url,
    )
    app.add_middleware(
        RequestBodyPolicy,
        max_bytes=settings.max_body_bytes,
        # Provider events (an account's full requirements…) can outgrow API bodies.
        larger_under={"/v1/webhooks/": 1024 * 1024},
    )
    app.add_middleware(
        SecurityHeaders, strict_transport=settings.environment == Environment.PRODUCTION
    )
    app.add_middleware(RedirectsToPublicBase, base_url=settings.public_base_url)
    app.add_middleware(HttpMetrics)  # times every answer, the fast path's too
    # Outermost: who the client is is settled before anything counts or logs it.
    app.add_middleware(TrustedProxyClients, trusted_proxies=settings.trusted_proxies)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Around Starlette's own error middleware too, so an unexpected 500 carries the id.
    inner_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestIds(inner_stack())  # type: ignore[method-assign]
    return app


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses=error_responses(503), summary="The database answers")
    async def readyz(engine: DbEngine) -> dict[str, str]:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise ServiceUnavailable("The database is not reachable.") from exc
        return {"status": "ready"}

    return router


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with validation failures described as the 400s we really send."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        for path in schema["paths"].values():
            for operation in path.values():
                _document_common_errors(operation)
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _document_common_errors(operation: dict[str, Any]) -> None:
    """Statuses that middleware and validation give any operation, described once here."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    common: list[int] = []
    if operation.get("parameters") or operation.get("requestBody"):
        common.append(400)
    if operation.get("requestBody"):
        common += [413, 415]
    for status, spec in error_responses(*common).items():
        responses.setdefault(
            str(status),
            {
                "description": spec["description"],
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                },
            },
        )
