"""RS256 access tokens: the signing key ring, token minting and verification, JWKS."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vidivo.core.clock import Clock
from vidivo.core.db import new_id

ALGORITHM = "RS256"
CLOCK_SKEW_SECONDS = 5
# Tokens whose good signature each process remembers (about 2 KiB each).
VERIFIED_TOKENS_KEPT = 4096


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class PublicKey:
    kid: str
    key: rsa.RSAPublicKey

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": ALGORITHM,
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }


def _thumbprint(key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a stable `kid` derived from the key itself."""
    numbers = key.public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_or_create_private_key(path: Path) -> rsa.RSAPrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written with owner-only permissions under a name of this process's own, then linked
        # into place only if no key is there yet: a crash never leaves half a key, and
        # instances starting together on one data directory all adopt the first one's key
        # instead of each signing with its own.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return loaded


def load_public_key(path: Path) -> rsa.RSAPublicKey:
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        public = private.public_key()
    else:
        public = serialization.load_pem_public_key(data)
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError(f"{path} is not an RSA key")
    return public


class InvalidToken(Exception):
    pass


class KeyRing:
    """The active signing key plus retired keys that still verify until their tokens expire."""

    def __init__(self, active: rsa.RSAPrivateKey, retired: list[rsa.RSAPublicKey]) -> None:
        self._active = active
        self.active_kid = _thumbprint(active.public_key())
        self._public = {self.active_kid: PublicKey(self.active_kid, active.public_key())}
        for key in retired:
            kid = _thumbprint(key)
            self._public.setdefault(kid, PublicKey(kid, key))
        # A token's signature is checked once per process, not on every request: the same
        # bytes under the same keys verify the same way, and the keys never change while the
        # process runs. Only good signatures are kept; times are checked on every use.
        self._signed_claims = functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)(
            self._check_signature
        )

    @classmethod
    def from_paths(cls, active: Path, retired: list[Path]) -> KeyRing:
        return cls(load_or_create_private_key(active), [load_public_key(p) for p in retired])

    def derive_secret(self, purpose: str) -> bytes:
        """A stable secret for `purpose` (cursor signing…), derived from the active key."""
        private = self._active.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return hmac.new(private, purpose.encode(), hashlib.sha256).digest()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self._public.values()]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._active, algorithm=ALGORITHM, headers={"kid": self.active_kid}
        )

    def verify(self, token: str, *, now: datetime, issuer: str, audience: str) -> dict[str, Any]:
        claims = dict(self._signed_claims(token, issuer, audience))
        moment = now.timestamp()
        if not isinstance(claims["exp"], int) or moment >= claims["exp"] + CLOCK_SKEW_SECONDS:
            raise InvalidToken("token expired")
        not_before = claims.get("nbf", claims["iat"])
        if not isinstance(not_before, int) or moment < not_before - CLOCK_SKEW_SECONDS:
            raise InvalidToken("token not yet valid")
        return claims

    def _check_signature(self, token: str, issuer: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        # Only RS256 is ever accepted: no `none`, no HS* signed with our public key.
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported token algorithm")
        public = self._public.get(str(header.get("kid")))
        if public is None:
            raise InvalidToken("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public.key,
                algorithms=[ALGORITHM],
                issuer=issuer,
                audience=audience,
                # Times are checked by `verify` against the injected clock, not the host's.
                options={
                    "require": ["exp", "iat", "sub", "jti", "iss", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken("token invalid") from exc
        return claims


def access_token_claims(
    *,
    subject: str,
    role: str,
    issued_at: datetime,
    ttl_seconds: int,
    issuer: str,
    audience: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    iat = int(issued_at.timestamp())
    return {
        "sub": subject,
        "role": role,
        "iat": iat,
        "nbf": iat,
        "exp": iat + ttl_seconds,
        "jti": new_id(),
        "iss": issuer,
        "aud": audience,
        **(extra or {}),
    }


class TokenAuthority:
    """This app's access tokens: signed with its key ring, dated by its clock, for its issuer
    and audience. Built once by the composition root."""

    def __init__(self, keys: KeyRing, clock: Clock, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self._clock = clock
        self._issuer = issuer
        self._audience = audience

    def sign(self, *, subject: str, role: str, ttl_seconds: int, extra: dict[str, Any]) -> str:
        """A token issued now, valid for `ttl_seconds`."""
        claims = access_token_claims(
            subject=subject,
            role=role,
            issued_at=self._clock.now(),
            ttl_seconds=ttl_seconds,
            issuer=self._issuer,
            audience=self._audience,
            extra=extra,
        )
        return self.keys.sign(claims)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; `InvalidToken` when it is not one of ours or not valid now."""
        return self.keys.verify(
            token, now=self._clock.now(), issuer=self._issuer, audience=self._audience
        )


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
