"""A host's own account: password reset by email, change of password, profile (name, bio),
change of email (confirmed from the new inbox before it takes effect), erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth import onetime
from vidivo.auth.models import EmailVerification, LoginSession, PasswordReset, User
from vidivo.auth.passwords import hash_password, verify_password
from vidivo.auth.service import EmailTaken, find_user_by_email, normalize_email
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.errors import ApiError
from vidivo.core.ratelimit import RateLimiter, per_seconds
from vidivo.mail.letters import Action, Letter, queue_letter


class LoginEnded(StrEnum):
    """Why this module ended a login (`LoginSession.revoked_reason`)."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 (a reason, not a password)
    PASSWORD_CHANGED = "password_changed"  # noqa: S105
    ACCOUNT_DELETED = "account_deleted"


RESETS_PER_EMAIL_PER_HOUR = 5
EMAIL_CHANGES_PER_HOUR = 3


class InvalidResetToken(ApiError):
    code, status, message = (
        "invalid_token",
        400,
        "This password reset link is invalid, expired or already used; ask for a new one.",
    )


class WrongPassword(ApiError):
    code, status, message = "wrong_password", 403, "The current password is not correct."


async def throttle_account_change(limiter: RateLimiter, settings: Settings, user_id: str) -> None:
    """Changes to an account are throttled per account at the login rate."""
    rule = per_seconds(settings.login_attempts_per_minute, 60)
    await limiter.hit(rule, "account-change", user_id)


async def revoke_logins(
    db: AsyncSession, user_id: str, now: datetime, reason: LoginEnded, *, keep: str | None = None
) -> None:
    """End every login of the user (but `keep`): its refresh and access tokens stop working."""
    query = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    await db.execute(
        query.values(revoked_at=now, revoked_reason=reason).execution_options(
            synchronize_session=False
        )
    )


async def request_password_reset(
    db: AsyncSession,
    clock: Clock,
    limiter: RateLimiter,
    settings: Settings,
    *,
    email: str,
    client_ip: str,
) -> None:
    """Email a reset link to the account with this address. The caller learns nothing about
    whether one exists: both branches throttle alike and queue one email (to an unknown
    address, a note that it has no account), so answer, body and work are the same."""
    email = normalize_email(email)
    await limiter.hit(per_seconds(settings.login_attempts_per_minute, 60), "reset-ip", client_ip)
    await limiter.hit(per_seconds(RESETS_PER_EMAIL_PER_HOUR, 3600), "reset-email", email)
    now = clock.now()
    user = await find_user_by_email(db, email)
    if user is None:
        queue_letter(db, clock, email, _no_account_letter(settings))
        return
    await onetime.void_unused(db, PasswordReset, user.id, now)
    token = onetime.issue(
        db,
        PasswordReset,
        user_id=user.id,
        now=now,
        ttl_seconds=settings.password_reset_ttl_seconds,
    )
    queue_letter(db, clock, user.email, _reset_letter(settings, user, token))


async def reset_password(
    db: AsyncSession,
    clock: Clock,
    limiter: RateLimiter,
    settings: Settings,
    *,
    token: str,
    new_password: str,
    client_ip: str,
) -> None:
    """Set a new password with an emailed token (good once), and end every login."""
    await limiter.hit(per_seconds(settings.login_attempts_per_minute, 60), "reset-ip", client_ip)
    now = clock.now()
    reset = await onetime.redeem(db, PasswordReset, token, now)
    if reset is None:
        raise InvalidResetToken()
    user = await db.get_one(User, reset.user_id)
    user.password_hash = await hash_password(new_password)
    await onetime.void_unused(db, PasswordReset, user.id, now)
    await revoke_logins(db, user.id, now, LoginEnded.PASSWORD_RESET)
    queue_letter(db, clock, user.email, _password_changed_letter(settings))


async def change_password(
    db: AsyncSession,
    clock: Clock,
    limiter: RateLimiter,
    settings: Settings,
    *,
    user: User,
    login_session_id: str,
    current_password: str,
    new_password: str,
) -> None:
    """Replace the password; the login that did it stays, every other one ends (whoever knew
    the old password is signed out)."""
    await throttle_account_change(limiter, settings, user.id)
    # Per account (the caller holds a token already): a stolen session gets a few guesses at
    # the current password, as many as one address gets at a login before backing off.
    failures = per_seconds(
        settings.login_failures_before_backoff, settings.login_failure_window_seconds
    )
    message = "Too many wrong passwords for this account; try again later."
    await limiter.check(failures, "password-change-failures", user.id, message=message)
    if not await verify_password(user.password_hash, current_password):
        await limiter.record(failures, "password-change-failures", user.id)
        raise WrongPassword()
    now = clock.now()
    user.password_hash = await hash_password(new_password)
    await onetime.void_unused(db, PasswordReset, user.id, now)
    await revoke_logins(db, user.id, now, LoginEnded.PASSWORD_CHANGED, keep=login_session_id)
    queue_letter(db, clock, user.email, _password_changed_letter(settings))


@dataclass(frozen=True)
class ProfileChange:
    """What `PATCH /v1/me` asks for; None leaves a field as it is (`clear_bio` empties it)."""

    display_name: str | None = None
    bio: str | None = None
    clear_bio: bool = False
    email: str | None = None


async def update_profile(
    db: AsyncSession,
    clock: Clock,
    limiter: RateLimiter,
    settings: Settings,
    user: User,
    change: ProfileChange,
) -> bool:
    """Apply the change; whether what guests see of the host (name, bio) changed."""
    await throttle_account_change(limiter, settings, user.id)
    public_before = (user.display_name, user.bio)
    if change.display_name is not None:
        user.display_name = change.display_name
    if change.clear_bio:
        user.bio = None
    elif change.bio is not None:
        user.bio = change.bio
    if change.email is not None:
        await _ask_for_email_change(db, clock, limiter, settings, user, change.email)
    return (user.display_name, user.bio) != public_before


async def _ask_for_email_change(
    db: AsyncSession,
    clock: Clock,
    limiter: RateLimiter,
    settings: Settings,
    user: User,
    email: str,
) -> None:
    """Keep the new address pending and send it a confirmation link; the current address is
    told, and stays the account's until the link is followed (`service.verify_email`)."""
    new_email = normalize_email(email)
    if new_email == user.email:
        user.pending_email = None  # asking for the current address withdraws a pending change
        return
    await limiter.hit(per_seconds(EMAIL_CHANGES_PER_HOUR, 3600), "email-change", user.id)
    if await find_user_by_email(db, new_email) is not None:
        raise EmailTaken()
    user.pending_email = new_email
    token = onetime.issue(
        db,
        EmailVerification,
        user_id=user.id,
        now=clock.now(),
        ttl_seconds=settings.email_verification_ttl_seconds,
        new_email=new_email,
    )
    queue_letter(db, clock, new_email, _confirm_email_letter(settings, user, token))
    queue_letter(db, clock, user.email, _email_change_notice(settings, new_email))


async def erase_personal_data(db: AsyncSession, clock: Clock, user: User) -> set[str]:
    """Close the account: end its logins and tokens and erase what identifies the person (the
    row stays: money records point at it). The addresses it had or asked for, whose kept mail
    the caller erases too."""
    now = clock.now()
    asked_for = await db.scalars(
        select(EmailVerification.new_email).where(
            EmailVerification.user_id == user.id, EmailVerification.new_email.is_not(None)
        )
    )
    addresses = {user.email, *(a for a in asked_for if a is not None)}
    user.email = f"deleted-{user.id.lower()}@deleted.invalid"  # unique, and never deliverable
    user.display_name = "Deleted account"
    user.bio = None
    user.pending_email = None
    user.password_hash = ""  # matches no password (see passwords.verify_password)
    user.deleted_at = now
    await onetime.void_unused(db, PasswordReset, user.id, now)
    await onetime.void_unused(db, EmailVerification, user.id, now)
    await db.execute(
        update(EmailVerification)
        .where(EmailVerification.user_id == user.id)
        .values(new_email=None)
        .execution_options(synchronize_session=False)
    )
    await revoke_logins(db, user.id, now, LoginEnded.ACCOUNT_DELETED)
    return addresses


def _reset_letter(settings: Settings, user: User, token: str) -> Letter:
    minutes = settings.password_reset_ttl_seconds // 60
    return Letter(
        subject="Reset your Vidivo password",
        paragraphs=(
            f"Hello {user.display_name},",
            "Someone (we hope you) asked to reset the password of your Vidivo account.",
        ),
        action=Action(
            "Choose a new password", f"{settings.public_base_url}/reset-password?token={token}"
        ),
        closing=(
            f"The link works once, for {minutes} minutes. Setting a new password signs you out "
            "everywhere.",
            "If you did not ask for this, ignore this email: your password stays as it is.",
        ),
    )


def _no_account_letter(settings: Settings) -> Letter:
    return Letter(
        subject="Reset your Vidivo password",
        paragraphs=(
            "Someone asked to reset the password of a Vidivo account with this email address, "
            "but there is no Vidivo account with it.",
            "If you have an account under another address, ask again with that one. If you did "
            f"not ask for this, ignore this email. ({settings.public_base_url})",
        ),
    )


def _password_changed_letter(settings: Settings) -> Letter:
    return Letter(
        subject="Your Vidivo password was changed",
        paragraphs=(
            "The password of your Vidivo account was just changed, and your other sign-ins "
            "were ended.",
            "If this was not you, reset your password now.",
        ),
        action=Action("Reset your password", f"{settings.public_base_url}/reset-password"),
    )


def _confirm_email_letter(settings: Settings, user: User, token: str) -> Letter:
    return Letter(
        subject="Confirm your new Vidivo email",
        paragraphs=(
            f"Hello {user.display_name},",
            "Confirm that this is the new email address of your Vidivo account. Until you "
            "do, your account keeps its current address.",
        ),
        action=Action(
            "Confirm this address", f"{settings.public_base_url}/confirm-email?token={token}"
        ),
        closing=("If you did not ask for this, ignore this email.",),
    )


def _email_change_notice(settings: Settings, new_email: str) -> Letter:
    return Letter(
        subject="Your Vidivo email is about to change",
        paragraphs=(
            f"Someone signed in to your Vidivo account asked to change its email to {new_email}. "
            "It changes only once that address confirms it.",
            "If this was not you, reset your password now: that signs everyone out.",
        ),
        action=Action("Reset your password", f"{settings.public_base_url}/reset-password"),
    )
