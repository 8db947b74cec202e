"""Payload signing, Standard Webhooks style (https://www.standardwebhooks.com/).

``webhook-id`` is the delivery id (the same as ``Idempotency-Key``), ``webhook-timestamp`` the
attempt's Unix time, ``webhook-signature`` one ``v1,<base64 HMAC-SHA256>`` per secret over
``id.timestamp.body``, space-separated, so a receiver can rotate secrets without downtime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from models.settings import check_signing_secret

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """A ``whsec_<base64>`` secret's key bytes."""
    return base64.b64decode(check_signing_secret(secret)[len(SECRET_PREFIX) :])


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    message_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }
