"""The parts of an OmniumOrder the step itself reads.

The order travels as the raw JSON object it arrived as (unknown fields kept, casing kept); this
view validates only what the step needs to decide, so a field we never read cannot reject an order.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from models.casing import CaseInsensitiveModel


class OrderProperty(CaseInsensitiveModel):
    key: str
    value: Any = None
    key_group: str | None = None


class OrderError(CaseInsensitiveModel):
    """An entry of the order's ``errors`` list (Omnium's OmniumEntityError)."""

    model_config = ConfigDict(extra="allow")

    key: str | None = None
    message: str | None = None
    details: str | None = None
    reference_id: str | None = None
    severity: str | None = None
    status: str | None = None
    occurred: str | None = None


class ReturnOrderForm(CaseInsensitiveModel):
    model_config = ConfigDict(extra="ignore")

    return_id: str | None = None
    id: str | None = None
    created: str | None = None

    @property
    def identifier(self) -> str | None:
        return self.return_id or self.id


class OrderView(CaseInsensitiveModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    status: str | None = None
    market_id: str | None = None
    store_id: str | None = None
    order_type: str | None = None
    tags: list[str] = Field(default_factory=list)
    properties: list[OrderProperty] = Field(default_factory=list)
    errors: list[OrderError] = Field(default_factory=list)
    return_order_forms: list[ReturnOrderForm] = Field(default_factory=list)

    @classmethod
    def of(cls, order: dict[str, Any]) -> OrderView:
        return cls.model_validate(_nulls_as_empty(order))


def _nulls_as_empty(order: dict[str, Any]) -> dict[str, Any]:
    """Omnium writes ``null`` for empty lists; read it as empty rather than rejecting the order."""
    lists = {"tags", "properties", "errors", "returnorderforms"}
    return {k: ([] if v is None and k.lower() in lists else v) for k, v in order.items()}
