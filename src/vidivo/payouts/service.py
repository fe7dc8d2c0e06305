"""Host payouts: the connected account, its onboarding, and whether it can take charges."""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, ScalarSelect, SQLColumnExpression, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth.models import User
from vidivo.core.clock import Clock
from vidivo.core.db import new_id
from vidivo.core.errors import ApiError, NotFound
from vidivo.core.money import format_cents
from vidivo.payments.provider import AccountStatus, PaymentError, PaymentProvider
from vidivo.payments.simulated import SimulatedProvider
from vidivo.payouts.models import PayoutAccount
from vidivo.payouts.schemas import PayoutHistory, PayoutOut, PayoutStatus


class PaymentProviderUnavailable(ApiError):
    code, status = "payment_provider_error", 502
    message = "The payment provider could not be reached; try again."


async def get_account(db: AsyncSession, host_id: str) -> PayoutAccount | None:
    return await db.get(PayoutAccount, host_id)


def charges_enabled_column(host_id: SQLColumnExpression[str]) -> ScalarSelect[bool | None]:
    """`charges_enabled` as a column of a caller's own query (NULL: no account yet), so a
    hot path reads it with what it reads anyway instead of in a statement of its own."""
    return (
        select(PayoutAccount.charges_enabled)
        .where(PayoutAccount.host_id == host_id)
        .scalar_subquery()
    )


async def account_taking_charges(db: AsyncSession, host_id: str) -> str | None:
    """The host's connected account if it can take charges now (a call's destination). Two
    columns, not the account's row: every start and every hold asks."""
    row = (
        await db.execute(
            select(PayoutAccount.account_id, PayoutAccount.charges_enabled).where(
                PayoutAccount.host_id == host_id
            )
        )
    ).first()
    return row.account_id if row is not None and row.charges_enabled else None


async def charges_enabled(db: AsyncSession, host_id: str) -> bool:
    """Whether the host's connected account can take charges: checked before links and holds."""
    return await account_taking_charges(db, host_id) is not None


def charges_enabled_clause(host_id: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """`charges_enabled`, for a statement that decides it in the database (fast paths)."""
    return charges_enabled_column(host_id).is_(True)


def apply_status(account: PayoutAccount, status: AccountStatus, clock: Clock) -> None:
    account.charges_enabled = status.charges_enabled
    account.payouts_enabled = status.payouts_enabled
    account.details_submitted = status.details_submitted
    account.requirements_json = json.dumps(status.requirements)
    account.updated_at = clock.now()


async def _create_provider_account(provider: PaymentProvider, host: User) -> AccountStatus:
    try:
        # One account per host, whatever happens: the key makes a retry find the first one.
        return await provider.create_connected_account(
            email=host.email, host_id=host.id, idempotency_key=f"host:{host.id}:connect-account"
        )
    except PaymentError as exc:
        raise PaymentProviderUnavailable(exc.message) from exc


async def _store_account(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, host: User, status: AccountStatus
) -> PayoutAccount:
    account = await get_account(db, host.id)
    if account is None:
        now = clock.now()
        account = PayoutAccount(
            host_id=host.id,
            provider=provider.name,
            account_id=status.account_id,
            created_at=now,
            updated_at=now,
        )
        db.add(account)
        try:
            await db.flush()
        except IntegrityError:
            # A concurrent request stored this host's account first: use that one. The
            # rollback expired what the request had loaded: the host is read again for the
            # caller (an expired attribute cannot load itself under asyncio).
            await db.rollback()
            await db.refresh(host)
            account = await db.get_one(PayoutAccount, host.id, populate_existing=True)
    apply_status(account, status, clock)
    return account


async def ensure_account(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, host: User
) -> PayoutAccount:
    account = await get_account(db, host.id)
    if account is not None:
        return account
    status = await _create_provider_account(provider, host)
    return await _store_account(db, provider, clock, host, status)


async def connect_simulated(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, host: User
) -> PayoutAccount:
    """Onboard a host in one step; only the simulated provider can (the CLI's --connected)."""
    if not isinstance(provider, SimulatedProvider):
        raise ApiError("Only simulated payments can mark a payout account ready.")
    account = await get_account(db, host.id)
    account_id = (
        account.account_id
        if account
        else (await _create_provider_account(provider, host)).account_id
    )
    status = await provider.complete_onboarding(account_id)
    return await _store_account(db, provider, clock, host, status)


async def start_onboarding(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, host: User, *, base_url: str
) -> str:
    account = await ensure_account(db, provider, clock, host)
    try:
        return await provider.create_onboarding_link(
            account_id=account.account_id,
            refresh_url=f"{base_url}/payouts/onboarding/refresh",
            return_url=f"{base_url}/payouts/onboarding/return",
            # Account links are single-use: each request makes a new one.
            idempotency_key=f"host:{host.id}:account-link:{new_id()}",
        )
    except PaymentError as exc:
        raise PaymentProviderUnavailable(exc.message) from exc


async def refresh_status(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, account: PayoutAccount
) -> PayoutAccount:
    """Re-read the account from the provider (webhooks can arrive late or out of order)."""
    try:
        status = await provider.retrieve_account(account.account_id)
    except PaymentError as exc:
        raise PaymentProviderUnavailable(exc.message) from exc
    apply_status(account, status, clock)
    return account


async def has_account(db: AsyncSession, account_id: str) -> bool:
    found = await db.scalar(
        select(PayoutAccount.host_id).where(PayoutAccount.account_id == account_id)
    )
    return found is not None


async def refresh_by_account_id(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, account_id: str
) -> PayoutAccount:
    account = await db.scalar(select(PayoutAccount).where(PayoutAccount.account_id == account_id))
    if account is None:
        raise NotFound(f"No payout account {account_id}.")
    return await refresh_status(db, provider, clock, account)


async def payout_status(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, host: User
) -> PayoutStatus:
    account = await get_account(db, host.id)
    if account is None:
        return PayoutStatus(
            stripe_connected=False,
            charges_enabled=False,
            payouts_enabled=False,
            details_submitted=False,
            requirements=[],
        )
    if not account.charges_enabled:
        await refresh_status(db, provider, clock, account)
    return PayoutStatus(
        stripe_connected=True,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        details_submitted=account.details_submitted,
        requirements=json.loads(account.requirements_json),
    )


async def payout_history(
    db: AsyncSession, provider: PaymentProvider, host: User, *, limit: int
) -> PayoutHistory:
    """The host's latest payouts to their bank, newest first, as the provider reports them;
    none before a payout account exists."""
    account = await get_account(db, host.id)
    if account is None:
        return PayoutHistory(payouts=[])
    try:
        payouts = await provider.list_payouts(account.account_id, limit=limit)
    except PaymentError as exc:
        raise PaymentProviderUnavailable(exc.message) from exc
    return PayoutHistory(
        payouts=[
            PayoutOut(
                id=payout.id,
                amount=format_cents(payout.amount_cents),
                currency=payout.currency,
                status=payout.status.value,
                arrival_date=payout.arrival_date,
                created_at=payout.created_at,
            )
            for payout in payouts
        ]
    )
