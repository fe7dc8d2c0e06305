"""`vidivo …`: serve, migrate, and host administration."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy import func, select

from vidivo.app import AppContext
from vidivo.auth import service as auth_service
from vidivo.auth.models import User
from vidivo.auth.passwords import random_password
from vidivo.auth.tokens import load_or_create_private_key
from vidivo.calls.ledger import AuditFinding, audit
from vidivo.calls.suspension import Suspension, suspend_host
from vidivo.core.config import Environment, MetricsMode, PaymentsMode, Settings, local_url
from vidivo.core.db import dispose
from vidivo.core.errors import ApiError
from vidivo.core.logs import configure_logging
from vidivo.core.metrics import listening_socket, metrics_server
from vidivo.core.production import production_problems
from vidivo.migrate import upgrade_to_head
from vidivo.payouts import service as payouts

app = typer.Typer(help="Vidivo: pay-per-minute 1:1 video calls.", no_args_is_help=True)
hosts = typer.Typer(help="Manage host accounts.", no_args_is_help=True)
app.add_typer(hosts, name="hosts")
billing = typer.Typer(help="Billing checks.", no_args_is_help=True)
app.add_typer(billing, name="billing")

T = TypeVar("T")
DEMO_EMAIL = "demo@example.com"


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        typer.secho(f"Configuration error: {problems}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None


def _settings_fit_to_run() -> Settings:
    """The settings, or exit naming every reason production refuses them."""
    settings = _settings()
    problems = production_problems(settings)
    if problems:
        _refuse_production(problems)
    return settings


def _refuse_production(problems: list[str]) -> NoReturn:
    typer.secho(
        f"Not ready for production ({len(problems)} problem(s)):", fg=typer.colors.RED, err=True
    )
    for problem in problems:
        typer.secho(f"  - {problem}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _with_context(work: Callable[[AppContext], Awaitable[T]]) -> T:
    from vidivo.app import build_context

    async def run() -> T:
        context = build_context(_settings())
        try:
            return await work(context)
        finally:
            await context.hub.close()
            await dispose(context.engine)

    return asyncio.run(run())


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest version."""
    settings = _settings()
    upgrade_to_head(settings.database_url, reconnect_grace_seconds=settings.reconnect_grace_seconds)
    typer.echo("database is up to date")


async def _create_demo_host_if_empty(context: AppContext) -> str | None:
    async with context.session_factory() as db:
        if await db.scalar(select(func.count()).select_from(User)):
            return None
        password = random_password()
        try:
            user = await auth_service.create_user(
                db,
                context.clock,
                context.settings,
                email=DEMO_EMAIL,
                password=password,
                display_name="Demo Host",
                verified=True,
            )
        except auth_service.EmailTaken:
            return None  # another instance starting beside this one seeded it first
        await db.commit()  # the provider is called outside any open write transaction
        if context.settings.payments == PaymentsMode.SIMULATED:
            await payouts.connect_simulated(db, context.payments, context.clock, user)
            await db.commit()
        return password


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything else happens, so a busy port is
    one clear line and an exit code rather than a traceback after the start-up banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        _fail(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another with --port.")


class _AnnouncedServer(uvicorn.Server):
    """uvicorn's server, printing the banner once it accepts requests."""

    def __init__(self, config: uvicorn.Config, banner: list[str]) -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            for line in self.banner:
                typer.echo(line)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(help="Port to listen on (links use it too, unless VIDIVO_PUBLIC_BASE_URL)."),
    ] = 8000,
) -> None:
    """Migrate the database, then serve the API (and, on the embedded default, everything)."""
    settings = _settings_fit_to_run()
    listener = _listen(host, port)
    port = listener.getsockname()[1]  # the port chosen by the system for --port 0
    settings = settings.served_at(host, port)
    log_config = configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url, reconnect_grace_seconds=settings.reconnect_grace_seconds)
    # A verified account whose password lands in the log is for a developer's first run only.
    demo_password = (
        _with_context(_create_demo_host_if_empty)
        if settings.environment == Environment.DEVELOPMENT
        else None
    )
    served = local_url(host, port)
    banner = [
        f"Vidivo is running at {served}  (public URL {settings.public_base_url})",
        f"API reference: {served}/docs",
    ]
    if demo_password:
        banner.append(f"Demo host: {DEMO_EMAIL} / {demo_password}  (verified, payouts ready)")
        banner.append(
            "  (shown this once; a new one: vidivo hosts reset-password " + DEMO_EMAIL + ")"
        )
    from vidivo.app import create_app

    served_app = create_app(settings)
    # What start-up built lives as long as the process: kept out of the collector's full
    # passes, which would otherwise walk it all (about 170,000 objects, 0.1 s of CPU) every
    # few thousand requests, stalling every request in flight (the p99 of `bench/`).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        served_app,
        log_level=settings.log_level.lower(),
        log_config=log_config,
        # Software and version are nobody's business; forwarded headers are trusted by the
        # app itself, only from VIDIVO_TRUSTED_PROXIES (uvicorn would trust any local peer).
        server_header=False,
        proxy_headers=False,
    )
    _AnnouncedServer(config, banner).run(sockets=[listener])


@app.command()
def check() -> None:
    """Say whether the configuration may run in production, without starting anything.
    Exits 2 listing every problem when VIDIVO_ENVIRONMENT=production and it may not."""
    settings = _settings()
    if settings.environment == Environment.PRODUCTION:
        problems = production_problems(settings)
        if problems:
            _refuse_production(problems)
        typer.echo("ready for production")
        return
    typer.echo("development configuration (VIDIVO_ENVIRONMENT=development): nothing is refused")
    would_refuse = production_problems(
        settings.model_copy(update={"environment": Environment.PRODUCTION})
    )
    if would_refuse:
        typer.echo("With VIDIVO_ENVIRONMENT=production these would stop serve and worker:")
        for problem in would_refuse:
            typer.echo(f"  - {problem}")


@app.command("signing-key")
def signing_key() -> None:
    """Create the access-token signing key at VIDIVO_SIGNING_KEY_PATH (mode 600) unless it
    exists. Production creates it once and gives the same file to every instance."""
    path = _settings().active_signing_key_path
    existed = path.exists()
    load_or_create_private_key(path)
    typer.echo(f"{'kept the existing' if existed else 'created the'} signing key {path}")


@hosts.command("create")
def hosts_create(
    email: Annotated[str, typer.Option(help="Login email.")],
    password: Annotated[str, typer.Option(help="Password (10+ characters).")],
    display_name: Annotated[str, typer.Option(help="Name guests see.")],
    verified: Annotated[bool, typer.Option(help="Mark the email as verified.")] = False,
    connected: Annotated[
        bool,
        typer.Option(help="Mark the payout account ready (simulated payments only)."),
    ] = False,
) -> None:
    """Create a host account."""
    settings = _settings()
    if connected and settings.payments != PaymentsMode.SIMULATED:
        _fail("--connected is only allowed with VIDIVO_PAYMENTS=simulated; onboard through Stripe.")
    if len(password) < 10:
        _fail("The password must have at least 10 characters.")

    async def work(context: AppContext) -> str:
        async with context.session_factory() as db:
            user = await auth_service.create_user(
                db,
                context.clock,
                context.settings,
                email=email,
                password=password,
                display_name=display_name,
                verified=verified,
            )
            await db.commit()  # the provider is called outside any open write transaction
            if connected:
                await payouts.connect_simulated(db, context.payments, context.clock, user)
                await db.commit()
        await context.mailer.deliver_pending()
        return user.id

    try:
        user_id = _with_context(work)
    except ApiError as exc:
        _fail(exc.message)
    typer.echo(f"created host {user_id} <{email.lower()}>")


def _update_host(email: str, change: Callable[[User, AppContext], None]) -> str:
    """Apply `change` to the host's account; the host's id."""

    async def work(context: AppContext) -> str:
        async with context.session_factory() as db:
            user = await auth_service.get_user_by_email_or_404(db, email)
            change(user, context)
            await db.commit()
            return user.id

    try:
        return _with_context(work)
    except ApiError as exc:
        _fail(exc.message)


@hosts.command("verify")
def hosts_verify(email: str) -> None:
    """Mark a host's email as verified."""

    def change(user: User, context: AppContext) -> None:
        user.email_verified_at = user.email_verified_at or context.clock.now()

    _update_host(email, change)
    typer.echo(f"verified {email.lower()}")


@hosts.command("reset-password")
def hosts_reset_password(email: str) -> None:
    """Give a host a new random password (printed once) and log out all its sessions."""

    async def work(context: AppContext) -> str:
        async with context.session_factory() as db:
            password = await auth_service.reset_password(db, context.clock, email)
            await db.commit()
            return password

    try:
        password = _with_context(work)
    except ApiError as exc:
        _fail(exc.message)
    typer.echo(f"new password for {email.lower()}: {password}")
    typer.echo("(shown this once; every session of this account has been logged out)")


@hosts.command("suspend")
def hosts_suspend(email: str) -> None:
    """Suspend a host: its tokens stop working, its calls end, its links take no new calls."""

    async def work(context: AppContext) -> Suspension:
        async with context.session_factory() as db:
            user = await auth_service.get_user_by_email_or_404(db, email)
            host_id = user.id
        done = await suspend_host(
            context.session_factory,
            context.clock,
            context.billing,
            context.public_links,
            context.hub,
            host_id,
        )
        await context.mailer.deliver_pending()
        return done

    try:
        done = _with_context(work)
    except ApiError as exc:
        _fail(exc.message)
    status = "suspended" if done.newly_suspended else "already suspended"
    typer.echo(
        f"{status} {email.lower()}: {done.declined_calls} waiting call(s) declined, "
        f"{done.ended_calls} live call(s) ended"
    )


@app.command()
def worker(
    interval: Annotated[float, typer.Option(help="Seconds between passes.")] = 0.5,
) -> None:
    """Run a billing worker: advances due windows; run as many as you like side by side."""
    settings = _settings_fit_to_run()
    configure_logging(settings)

    async def work(context: AppContext) -> None:
        if settings.metrics == MetricsMode.OFF:
            await context.worker.run_forever(interval)
            return
        await _work_with_metrics(context.worker.run_forever(interval), settings)

    with contextlib.suppress(KeyboardInterrupt):
        _with_context(work)


async def _work_with_metrics(work: Coroutine[Any, Any, None], settings: Settings) -> None:
    """`work` beside the worker's own metrics server (a worker has no other port); the
    server stops on SIGINT/SIGTERM, and the work with it."""
    token = settings.metrics_token if settings.metrics == MetricsMode.TOKEN else None
    server = metrics_server(settings.metrics_host, settings.metrics_port, token)
    try:
        sock = listening_socket(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        work.close()
        _fail(f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}")
    working = asyncio.create_task(work)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait([working, serving], return_when=asyncio.FIRST_COMPLETED)
    working.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await working
    server.should_exit = True
    await serving


@billing.command("audit")
def billing_audit() -> None:
    """Check the ledger: for every ended call, captured == billed and released == held − captured.
    Exits 1 on any mismatch."""

    async def work(context: AppContext) -> list[AuditFinding]:
        async with context.session_factory() as db:
            return await audit(db)

    findings = _with_context(work)
    for finding in findings:
        typer.secho(f"{finding.session_id}: {finding.problem}", fg=typer.colors.RED)
    if findings:
        raise typer.Exit(code=1)
    typer.echo("ledger balanced: every ended call captured what it billed")


if __name__ == "__main__":
    app()
