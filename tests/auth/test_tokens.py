"""Access tokens: RS256 with `kid`, published in JWKS, and every forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import PASSWORD, bearer
from vidivo.app import create_app
from vidivo.core.db import dispose


def _parts(token: str) -> tuple[dict, dict]:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return header, claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_access_tokens_are_rs256_with_the_spec_claims_and_verify_against_jwks(client, hosts):
    host = await hosts.create()
    header, claims = _parts(host.access_token)
    assert header["alg"] == "RS256"
    assert {"sub", "role", "exp", "iat", "jti", "iss", "aud"} <= set(claims)
    assert claims["sub"] == host.id
    assert claims["role"] == "host"
    assert claims["exp"] - claims["iat"] == 900
    jwks = (await client.get("/.well-known/jwks.json")).json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = jwt.PyJWK(key).key
    # The test clock lives in March 2026, so only the signature is checked here.
    verified = jwt.decode(
        host.access_token,
        public,
        algorithms=["RS256"],
        audience=claims["aud"],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert verified["sub"] == host.id


async def test_an_expired_access_token_is_refused(client, hosts, clock):
    host = await hosts.create()
    clock.advance(899)
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 200
    clock.advance(10)
    response = await client.get("/v1/me", headers=host.headers)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


async def test_a_token_from_the_future_is_refused(client, hosts, clock):
    host = await hosts.create()
    clock.advance(-60)
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 401


async def test_alg_none_is_refused(client, hosts):
    host = await hosts.create()
    header, claims = _parts(host.access_token)
    forged = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']}).encode())}."
    forged += f"{_b64(json.dumps(claims).encode())}."
    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_hs256_signed_with_the_public_key_is_refused(client, hosts):
    host = await hosts.create()
    header, claims = _parts(host.access_token)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    public = jwt.PyJWK(jwks["keys"][0]).key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT itself refuses to HMAC with a PEM key, so sign by hand as an attacker would.
    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'kid': header['kid']}).encode())}."
        f"{_b64(json.dumps(claims).encode())}"
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{_b64(signature)}"
    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_a_token_signed_by_another_key_is_refused_even_with_our_kid(client, hosts):
    host = await hosts.create()
    header, claims = _parts(host.access_token)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": header["kid"]})
    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401
    unknown_kid = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "someone-else"})
    assert (await client.get("/v1/me", headers=bearer(unknown_kid))).status_code == 401


async def test_a_tampered_payload_is_refused(client, hosts):
    host = await hosts.create()
    head, payload, signature = host.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    tampered = f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert (await client.get("/v1/me", headers=bearer(tampered))).status_code == 401


async def test_a_token_already_accepted_vouches_for_no_altered_copy(client, hosts, context):
    """Each process remembers good signatures: only the exact bytes it checked, and each
    use still gets its own copy of the claims and its own check of the times."""
    host = await hosts.create()
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 200
    head, payload, signature = host.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    altered = [
        f"{head}.{_b64(json.dumps({**claims, 'role': 'admin'}).encode())}.{signature}",
        f"{head}.{payload}.{signature[:-4]}AAAA",
        f"{head}.{payload}.",
    ]
    for token in altered:
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 401
    first = context.tokens.verify(host.access_token)
    first["sub"] = "someone else"
    assert context.tokens.verify(host.access_token)["sub"] == host.id
    assert (await client.get("/v1/me", headers=host.headers)).json()["user"]["id"] == host.id


async def test_wrong_audience_or_issuer_is_refused(client, hosts, context):
    host = await hosts.create()
    _, claims = _parts(host.access_token)
    for change in ({"aud": "another-api"}, {"iss": "someone-else"}):
        forged = context.keys.sign({**claims, **change})
        assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_malformed_authorization_headers_are_refused(client):
    for header in ("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer a.b"):
        response = await client.get("/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "unauthorized"


async def test_tokens_signed_before_a_key_rotation_stay_valid(
    client, hosts, settings, clock, tmp_path
):
    host = await hosts.create()
    old_key = settings.active_signing_key_path
    rotated = settings.model_copy(
        update={
            "signing_key_path": tmp_path / "new-key.pem",
            "retired_signing_key_paths": [old_key],
        }
    )
    app = create_app(rotated, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as rotated_client:
        assert (await rotated_client.get("/v1/me", headers=host.headers)).status_code == 200
        kids = [
            k["kid"] for k in (await rotated_client.get("/.well-known/jwks.json")).json()["keys"]
        ]
        assert len(kids) == 2
        login = await rotated_client.post(
            "/v1/auth/token", json={"email": host.email, "password": PASSWORD}
        )
        fresh_access = login.json()["access_token"]
        assert jwt.get_unverified_header(fresh_access)["kid"] == kids[0]
        assert jwt.get_unverified_header(host.access_token)["kid"] == kids[1]
    await dispose(app.state.context.engine)


def test_instances_creating_the_signing_key_together_end_up_with_one_key(tmp_path, monkeypatch):
    """Two processes starting on one empty data directory both find no key; the one that
    finishes second must adopt the first one's key, not overwrite it (each would otherwise
    sign with a key the other does not know, and refuse the other's tokens)."""
    from vidivo.auth import tokens

    path = tmp_path / "jwt-signing-key.pem"
    winner = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    winner_pem = winner.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    generate = rsa.generate_private_key

    def generate_while_another_process_finishes_first(**kwargs):
        path.write_bytes(winner_pem)  # the other process's key lands while we generate ours
        return generate(**kwargs)

    monkeypatch.setattr(
        tokens.rsa, "generate_private_key", generate_while_another_process_finishes_first
    )
    loaded = tokens.load_or_create_private_key(path)
    assert path.read_bytes() == winner_pem
    assert loaded.private_numbers() == winner.private_numbers()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
