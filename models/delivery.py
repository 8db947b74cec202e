"""What one delivery (all attempts of one request) came to: the input to the outcome decision."""

from __future__ import annotations

from pydantic import BaseModel

from models.webhook import PatchResult


class Delivery(BaseModel):
    ok: bool
    """A 2xx whose body is a valid (possibly empty) patch result."""
    attempts: int
    http_status: int | None = None
    duration_ms: int = 0
    result: PatchResult | None = None
    reason: str | None = None
    """Why it failed, specific enough to act on (shown in the order-event and the order errors)."""
