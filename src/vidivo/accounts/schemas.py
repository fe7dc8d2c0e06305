from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from vidivo.auth.availability import Availability
from vidivo.auth.schemas import DisplayName, Password
from vidivo.core.schemas import RequestModel

BIO_MAX_CHARS = 280


def _plain_text(value: str) -> str:
    # Line breaks are kept; other control characters have no place in text a page shows.
    if any(ord(c) < 32 and c != "\n" for c in value):
        raise ValueError("must be plain text (no control characters)")
    return value


Bio = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=BIO_MAX_CHARS),
    AfterValidator(_plain_text),
]


class PasswordResetRequest(RequestModel):
    email: EmailStr = Field(max_length=320)


class PasswordResetConfirm(RequestModel):
    token: str = Field(min_length=1, max_length=200)
    new_password: Password


class AvailabilityUpdate(RequestModel):
    away: StrictBool


class AvailabilityResponse(BaseModel):
    # What guests see now: `available`, `offline` or `away`.
    availability: Availability


class ProfileUpdate(RequestModel):
    """Fields left out stay as they are; `bio` null or empty clears it."""

    display_name: DisplayName | None = None
    bio: Bio | None = None
    email: EmailStr | None = Field(default=None, max_length=320)

    @field_validator("display_name", "email")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("must not be null")
        return value


class PasswordChange(RequestModel):
    current_password: str = Field(max_length=256)
    new_password: Password
