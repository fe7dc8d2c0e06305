"""The guest's receipt address: `/receipts/{session_id}?sig=…`, openable in any tab or device
with no account. The signature is an HMAC of the call's id under a secret derived from the
app's signing key (`KeyRing.derive_secret("guest-receipt")`), so no new secret is configured;
whoever holds the address (the guest's email, the call page) may read that one receipt, and no
other call's id can be turned into an address without the key.

Rotating the signing key changes the secret: addresses sent before then stop working (the
guest and host still see the receipt through the API, which hands out the new address)."""

from __future__ import annotations

import base64
import hashlib
import hmac

PURPOSE = "guest-receipt"
# 128 bits of the HMAC: far past guessing, short enough for an emailed address.
SIGNATURE_BYTES = 16


class ReceiptLinks:
    def __init__(self, secret: bytes, public_base_url: str) -> None:
        self._secret = secret
        self._base = public_base_url.rstrip("/")

    def signature(self, session_id: str) -> str:
        mac = hmac.new(self._secret, f"receipt:{session_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:SIGNATURE_BYTES]).rstrip(b"=").decode()

    def path(self, session_id: str) -> str:
        return f"/receipts/{session_id}?sig={self.signature(session_id)}"

    def url(self, session_id: str) -> str:
        return f"{self._base}{self.path(session_id)}"

    def verify(self, session_id: str, signature: str) -> bool:
        if len(signature) > 64 or len(session_id) > 64:
            return False
        return hmac.compare_digest(signature.encode(), self.signature(session_id).encode())
