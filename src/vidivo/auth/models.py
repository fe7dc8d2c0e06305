from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ColumnElement, ForeignKey, String, and_, false
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from vidivo.core.db import Base, UTCDateTime, new_id


class Role(StrEnum):
    HOST = "host"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(80))
    # Shown to guests on the host's call links (plain text; the page escapes it).
    bio: Mapped[str | None] = mapped_column(String(280))
    # An address asked for but not yet confirmed from its own inbox; `email` stays until then.
    pending_email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default=Role.HOST)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the host deleted the account: personal data is erased, money records stay.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The host's own switch: away takes no calls, whether or not a dashboard is open.
    away: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    @hybrid_property
    def is_verified_host(self) -> bool:
        return (
            self.role == Role.HOST
            and self.email_verified_at is not None
            and self.suspended_at is None
        )

    @is_verified_host.inplace.expression
    @classmethod
    def _is_verified_host_in_sql(cls) -> ColumnElement[bool]:
        # The same rule, for a statement that decides it in the database (fast paths).
        return and_(
            cls.role == Role.HOST, cls.email_verified_at.is_not(None), cls.suspended_at.is_(None)
        )


class HostDashboard(Base):
    """One open dashboard (host events socket), on whichever API instance holds it. The row is
    refreshed by the socket's heartbeat and deleted when it closes; a row not refreshed within
    the presence timeout (an instance that died) no longer counts."""

    __tablename__ = "host_dashboards"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    host_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginSession(Base):
    """One login: the family of rotating refresh tokens and the access tokens they mint."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    login_session_id: Mapped[str] = mapped_column(
        ForeignKey("login_sessions.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the token: a stolen database does not yield usable tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SingleUseToken:
    """The columns of an emailed token (`auth.onetime`): only its SHA-256 is stored, it expires,
    and it is good once."""

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EmailVerification(SingleUseToken, Base):
    __tablename__ = "email_verifications"

    # Set when the token confirms a change of address: the account's email becomes this one.
    new_email: Mapped[str | None] = mapped_column(String(320))


class PasswordReset(SingleUseToken, Base):
    __tablename__ = "password_resets"
