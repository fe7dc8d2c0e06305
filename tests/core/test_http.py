"""Cross-cutting HTTP behaviour: error shape, body limits, health, security headers."""

from __future__ import annotations

from sqlalchemy import func, select

from vidivo.auth.models import User


async def test_unknown_routes_answer_in_the_error_shape(client):
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": []}
    }


async def test_wrong_method_answers_405_in_the_error_shape(client):
    response = await client.put("/v1/links")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_invalid_json_is_a_validation_error_and_creates_nothing(client, context):
    response = await client.post(
        "/v1/auth/signup",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    async with context.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(User)) == 0


async def test_a_body_that_is_not_an_object_is_a_validation_error(client):
    for body in (b"[]", b'"text"', b"42", b"null"):
        response = await client.post(
            "/v1/auth/token", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "validation_error"


async def test_oversized_bodies_are_refused_before_parsing(client):
    big = b'{"email": "' + b"a" * 70_000 + b'"}'
    response = await client.post(
        "/v1/auth/signup", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_oversized_chunked_bodies_are_refused_too(client):
    async def chunks():
        for _ in range(20):
            yield b"x" * 8192

    response = await client.post(
        "/v1/auth/signup", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readiness_fails_with_503_when_the_database_is_unreachable(settings, clock, tmp_path):
    import httpx

    from vidivo.app import create_app

    broken = settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/none"})
    app = create_app(broken, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


async def test_every_response_carries_security_headers(client):
    response = await client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_body_that_is_not_json_is_refused_with_415(client):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post(
            "/v1/auth/token", content=b'{"email": "a@example.com"}', headers=headers
        )
        assert response.status_code == 415, content_type
        assert response.json()["error"]["code"] == "unsupported_media_type"
    ok = await client.post(
        "/v1/auth/token",
        content=b'{"email": "a@example.com", "password": "whatever!"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 401


async def test_nul_characters_are_refused_before_they_reach_the_database(client, hosts):
    host = await hosts.create()
    body = b'{"rate_per_minute": "2.50", "window_size_minutes": 10, "label": "a\\u0000b"}'
    response = await client.post(
        "/v1/links", content=body, headers={**host.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    for path in (
        "/v1/links/abc%00",
        "/v1/sessions/01M87TMEWEPH8R5KR4BEZ30R%00Z",
        "/v1/links?cursor=%00",
    ):
        assert (await client.get(path, headers=host.headers)).status_code == 400, path
    links = (await client.get("/v1/links", headers=host.headers)).json()["links"]
    assert links == []
