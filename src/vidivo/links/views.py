"""A link as the API shows it to its host, for the routes and for their fast paths."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from vidivo.core.money import format_cents
from vidivo.links.schemas import LinkOut


class LinkFields(Protocol):
    """A `Link` entity, or a row of its columns."""

    @property
    def id(self) -> str: ...
    @property
    def short_code(self) -> str: ...
    @property
    def rate_cents(self) -> int: ...
    @property
    def window_size_minutes(self) -> int: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def max_uses(self) -> int | None: ...
    @property
    def use_count(self) -> int: ...
    @property
    def label(self) -> str | None: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


def summary_fields(base_url: str, link: LinkFields) -> dict[str, object]:
    return {
        "id": link.id,
        "short_code": link.short_code,
        "url": f"{base_url}/c/{link.short_code}",
        "rate_per_minute": format_cents(link.rate_cents),
        "window_size_minutes": link.window_size_minutes,
        "expires_at": link.expires_at,
        "max_uses": link.max_uses,
        "use_count": link.use_count,
        "label": link.label,
        "is_active": link.is_active,
        "created_at": link.created_at,
    }


class OwnerLinkFields(LinkFields, Protocol):
    @property
    def host_id(self) -> str: ...
    @property
    def scheduled_start(self) -> datetime | None: ...
    @property
    def scheduled_end(self) -> datetime | None: ...


def link_out(base_url: str, link: OwnerLinkFields) -> LinkOut:
    return LinkOut(
        **summary_fields(base_url, link),
        host_id=link.host_id,
        scheduled_start=link.scheduled_start,
        scheduled_end=link.scheduled_end,
    )
