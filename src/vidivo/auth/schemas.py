from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints

from vidivo.core.schemas import RequestModel, Timestamp


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Password = Annotated[str, Field(min_length=10, max_length=256), AfterValidator(_not_blank)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class SignupRequest(RequestModel):
    email: EmailStr = Field(max_length=320)
    password: Password
    display_name: DisplayName


class TokenRequest(RequestModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class VerifyEmailRequest(RequestModel):
    token: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name)
    expires_in: int
    refresh_token: str


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    bio: str | None
    # A new address waiting for its confirmation link to be followed (None: no change asked).
    pending_email: str | None
    role: str
    email_verified: bool
    suspended: bool
    # The host's own switch: away takes no calls (`PUT /v1/me/availability`).
    away: bool
    created_at: Timestamp


class UserResponse(BaseModel):
    user: UserOut


class Jwk(BaseModel):
    kty: str
    use: str
    alg: str
    kid: str
    n: str
    e: str


class JwksResponse(BaseModel):
    keys: list[Jwk]
