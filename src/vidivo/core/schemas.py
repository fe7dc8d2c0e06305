"""Schema building blocks every domain shares: strict request models, timestamps, errors, pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
)


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with `Z` (four-digit years); fractional seconds only when there are any."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


TIMESTAMP_HINT = 'must be an ISO 8601 timestamp with a time zone, like "2026-03-22T00:00:00Z"'


TIMESTAMP_RANGE = "must fall between years 1 and 9999 once converted to UTC"


def parse_timestamp(text: str) -> datetime:
    """Only ISO 8601 with an explicit zone: never an epoch number, never a naive local time.
    Returned in UTC: a zone offset that pushes year 1 or 9999 off the calendar is refused here,
    not when the database (or a comparison) converts it."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(TIMESTAMP_HINT) from None
    if moment.tzinfo is None:
        raise ValueError(TIMESTAMP_HINT)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(TIMESTAMP_RANGE) from None


Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "format": "date-time"}),
]


def _timestamp_string(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(TIMESTAMP_HINT)
    return parse_timestamp(value)


# Input timestamps: an ISO 8601 string with an explicit zone; no naive times, no epoch numbers.
# (Request models are strict, which would refuse strings for datetimes: parse them laxly here.)
TimestampIn = Annotated[AwareDatetime, Strict(False), BeforeValidator(_timestamp_string)]


class RequestModel(BaseModel):
    """Request bodies reject unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Pagination(BaseModel):
    cursor: str | None
    has_more: bool
    limit: int


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    descriptions = {
        400: "Invalid request (`validation_error`).",
        401: "Missing or invalid bearer token (`unauthorized`).",
        402: "Payment account not ready (`stripe_not_connected`).",
        403: "Not allowed (`forbidden`).",
        404: "Not found (`not_found`).",
        409: "Conflict.",
        410: "Gone (`link_expired`, `link_exhausted`).",
        413: "Body too large (`payload_too_large`).",
        415: "Body is not JSON (`unsupported_media_type`).",
        502: "The payment provider failed (`payment_provider_error`).",
        429: "Too many requests (`rate_limited`); see `Retry-After`.",
        503: "A dependency is unavailable (`service_unavailable`).",
    }
    return {
        status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses
    }


def links_to(status: int, **links: tuple[str, dict[str, str]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a response to the operations it enables: each is the target's
    operation id and its parameters as runtime expressions (`$response.body#/...`). Clients
    and stateful fuzzers follow them; they document how the API's calls chain."""
    return {
        status: {
            "links": {
                name: {"operationId": operation, "parameters": parameters}
                for name, (operation, parameters) in links.items()
            }
        }
    }
