from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from vidivo.auth import availability
from vidivo.auth.deps import TOKEN_OPTIONAL, CurrentHost, OptionalPrincipal
from vidivo.auth.models import User
from vidivo.auth.service import Principal
from vidivo.core.client_address import client_address
from vidivo.core.deps import (
    AppClock,
    AppHub,
    AppSettings,
    Cursors,
    DbEngine,
    DbSession,
    SessionFactory,
)
from vidivo.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from vidivo.core.schemas import Pagination, error_responses, links_to
from vidivo.idempotency import service as idempotency
from vidivo.links import service
from vidivo.links.deps import LinkLookups, PublicLinks
from vidivo.links.models import Link
from vidivo.links.schemas import (
    HostPublic,
    LinkCreate,
    LinkListResponse,
    LinkLookupResponse,
    LinkResponse,
    LinkSummary,
    OwnerLink,
)
from vidivo.links.views import link_out, summary_fields

router = APIRouter(tags=["links"])


async def require_link_creator(principal: CurrentHost, db: DbSession) -> Principal:
    """403/402 are decided before the body is validated: who you are comes first."""
    await service.ensure_can_create_links(db, principal.user)
    return principal


LinkCreator = Annotated[Principal, Depends(require_link_creator)]


@router.post(
    "/v1/links",
    status_code=status.HTTP_201_CREATED,
    response_model=LinkResponse,
    responses={
        **error_responses(401, 402, 403, 409),
        **links_to(
            201,
            GetLink=("get_link", {"short_code": "$response.body#/link/short_code"}),
            StartSession=("start_session", {"short_code": "$response.body#/link/short_code"}),
            DeleteLink=("delete_link", {"link_id": "$response.body#/link/id"}),
        ),
    },
    summary="Create a call link",
)
async def create_link(
    body: LinkCreate,
    principal: LinkCreator,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    public_links: PublicLinks,
    hub: AppHub,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.validate_key(idempotency_key)

    async def create() -> tuple[int, dict[str, object]]:
        link = await service.create_link(db, clock, principal.user, body)
        return 201, LinkResponse(link=link_out(settings.public_base_url, link)).model_dump(
            mode="json"
        )

    stored = await idempotency.run_once(
        db,
        clock,
        owner=principal.user.id,
        endpoint="POST /v1/links",
        key=key,
        request_body=body.model_dump(mode="json"),
        action=create,
    )
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
    if stored.status_code == 201 and not stored.replayed:
        await db.commit()
        # A lookup of this code before it existed may have been cached as a 404.
        code = stored.body["link"]["short_code"]
        await public_links.changed(hub, code=str(code))
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


@router.get(
    "/v1/links",
    responses=error_responses(400, 401, 403),
    summary="List the calling host's call links, newest first",
)
async def list_links(
    principal: CurrentHost,
    db: DbSession,
    cursors: Cursors,
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    active: Annotated[bool | None, Query()] = None,
) -> LinkListResponse:
    page = await service.list_links(
        db, cursors, principal.user, limit=limit, cursor=cursor, active=active
    )
    return LinkListResponse(
        links=[
            LinkSummary(**summary_fields(settings.public_base_url, link)) for link in page.links
        ],
        pagination=Pagination(cursor=page.cursor, has_more=page.has_more, limit=page.limit),
    )


@router.get(
    "/v1/links/{short_code}",
    response_model=LinkLookupResponse,
    responses=error_responses(401, 404, 410, 429),
    summary="Open a call link: public details, or everything for its owner",
    openapi_extra=TOKEN_OPTIONAL,
)
async def get_link(
    short_code: str,
    principal: OptionalPrincipal,
    factory: SessionFactory,
    engine: DbEngine,
    public_links: PublicLinks,
    clock: AppClock,
    settings: AppSettings,
    lookups: LinkLookups,
    request: Request,
) -> LinkLookupResponse | Response:
    address = client_address(request.scope)
    if principal is not None:

        async def find() -> tuple[Link, User]:
            async with factory() as db:
                return await service.get_usable_for_view(db, clock, short_code)

        link, host = await lookups.lookup(address, find)
        if principal.user.id == link.host_id:
            owner_view = link_out(settings.public_base_url, link)
            async with factory() as db:
                host_now = await availability.availability(
                    db,
                    host,
                    clock.now(),
                    availability.presence_timeout(settings.signal_idle_timeout_seconds),
                )
            host_public = HostPublic(
                display_name=host.display_name, bio=host.bio, availability=host_now
            )
            return LinkLookupResponse(link=OwnerLink(**owner_view.model_dump(), host=host_public))
    # Everyone else sees the public view, built in one place (the fast path serves the same).
    body = await lookups.lookup(
        address,
        lambda: service.public_view_body(
            engine,
            public_links,
            clock,
            settings.public_base_url,
            short_code,
            availability.presence_timeout(settings.signal_idle_timeout_seconds),
        ),
    )
    return Response(body, media_type="application/json")


@router.delete(
    "/v1/links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
    summary="Deactivate a call link (soft delete; running sessions continue)",
)
async def delete_link(
    link_id: str,
    principal: CurrentHost,
    db: DbSession,
    clock: AppClock,
    public_links: PublicLinks,
    hub: AppHub,
) -> Response:
    code = await service.deactivate_link(db, clock, principal.user, link_id)
    await db.commit()  # then drop the cached view, so nobody caches the old state again
    await public_links.changed(hub, code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
