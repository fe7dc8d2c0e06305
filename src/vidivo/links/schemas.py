from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictInt, StrictStr

from vidivo.auth.availability import Availability
from vidivo.core.money import parse_amount_to_cents
from vidivo.core.schemas import Pagination, RequestModel, Timestamp, TimestampIn

MIN_RATE_CENTS, MAX_RATE_CENTS = 50, 99_999
MAX_USES_LIMIT = 1_000_000


def _money_string(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('must be a decimal string like "2.50" (a JSON string, not a number)')
    return value


def _rate(text: str) -> str:
    cents = parse_amount_to_cents(text)
    if not MIN_RATE_CENTS <= cents <= MAX_RATE_CENTS:
        raise ValueError("must be between 0.50 and 999.99")
    return text


Rate = Annotated[
    str,
    BeforeValidator(_money_string),
    AfterValidator(_rate),
    Field(
        description="Per-minute charge in USD, a decimal string. Min 0.50, max 999.99.",
        examples=["2.50"],
        # Exactly 0.50 to 999.99 with at most two decimals, so the schema says what is valid.
        json_schema_extra={"pattern": r"^(0\.[5-9][0-9]?|[1-9][0-9]{0,2}(\.[0-9]{1,2})?)$"},
    ),
]


class LinkCreate(RequestModel):
    rate_per_minute: Rate
    window_size_minutes: Annotated[StrictInt, Field(ge=1, le=60)]
    expires_at: TimestampIn | None = None
    max_uses: Annotated[StrictInt, Field(ge=1, le=MAX_USES_LIMIT)] | None = None
    label: Annotated[StrictStr, Field(max_length=120)] | None = None
    scheduled_start: TimestampIn | None = None
    scheduled_end: TimestampIn | None = None


class LinkSummary(BaseModel):
    """A link as the host's list shows it."""

    id: str
    short_code: str
    url: str
    rate_per_minute: str
    window_size_minutes: int
    expires_at: Timestamp | None
    max_uses: int | None
    use_count: int
    label: str | None
    is_active: bool
    created_at: Timestamp


class LinkOut(LinkSummary):
    """A link as its owner sees it."""

    host_id: str
    scheduled_start: Timestamp | None
    scheduled_end: Timestamp | None


class LinkResponse(BaseModel):
    link: LinkOut


class LinkListResponse(BaseModel):
    links: list[LinkSummary]
    pagination: Pagination


class HostPublic(BaseModel):
    display_name: str
    bio: str | None = None  # the host's short self-description, plain text
    # Whether the host can take the call now: shown to the guest before the card is entered.
    availability: Availability


class PublicLink(BaseModel):
    """What anyone who opens the link sees."""

    short_code: str
    url: str
    host: HostPublic
    rate_per_minute: str
    window_size_minutes: int
    is_active: bool
    scheduled_start: Timestamp | None
    scheduled_end: Timestamp | None


class OwnerLink(LinkOut):
    host: HostPublic


class LinkLookupResponse(BaseModel):
    link: OwnerLink | PublicLink
