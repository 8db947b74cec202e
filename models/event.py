"""The input record on ``order-status-changed`` (SPEC §2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from models.casing import CaseInsensitiveModel

RETURN_STATUSES = frozenset({"Returned", "PartiallyReturned"})
_RETURN_STATUSES_LOWER = frozenset(s.lower() for s in RETURN_STATUSES)


class OrderStatusChanged(CaseInsensitiveModel):
    event_id: str | None = None
    tenant_id: str = Field(min_length=1)
    order_id: str | None = None
    status: str = Field(min_length=1)
    previous_status: str | None = None
    return_order_form_id: str | None = None
    timestamp: datetime | None = None
    order: dict[str, Any]

    @field_validator("tenant_id", "status")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def is_return_status(status: str | None) -> bool:
    """Statuses are compared case-insensitively: producers differ in how they spell them."""
    return status is not None and status.lower() in _RETURN_STATUSES_LOWER
