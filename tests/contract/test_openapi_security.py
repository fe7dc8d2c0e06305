"""The document says where a bearer token is required and where it is only accepted: a client
generated from it, or a fuzzer checking that auth is enforced, must not need a token for the
public link lookup, and must still send one everywhere a token is required."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from vidivo.app import create_app
from vidivo.auth.deps import require_caller, require_principal

ANONYMOUS = {}  # OpenAPI's empty Security Requirement Object: no token is one alternative
BEARER = {"HTTPBearer": []}
TOKEN_REQUIRED = (require_principal, require_caller)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def test_the_public_link_lookup_takes_a_token_but_does_not_need_one(settings, clock):
    document = create_app(settings, clock=clock).openapi()
    security = document["paths"]["/v1/links/{short_code}"]["get"]["security"]
    assert ANONYMOUS in security  # guests open links without an account
    assert BEARER in security  # the owner's token still gets the owner's view


def test_every_operation_says_exactly_whether_its_token_is_required(settings, clock):
    app = create_app(settings, clock=clock)
    document = app.openapi()
    checked = {"required": 0, "optional": 0}
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        required = any(call in TOKEN_REQUIRED for call in _calls(route.dependant))
        for method in route.methods:
            security = document["paths"][route.path_format][method.lower()].get("security")
            if security is None:
                assert not required, (method, route.path_format)
                continue
            assert BEARER in security, (method, route.path_format)
            if required:
                assert ANONYMOUS not in security, (method, route.path_format)
                checked["required"] += 1
            else:
                assert ANONYMOUS in security, (method, route.path_format)
                checked["optional"] += 1
    assert checked["required"] >= 15 and checked["optional"] >= 1, checked
