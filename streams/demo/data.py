"""What the demo publishes and produces, and what it expects back (see ``streams.demo.run``).

One tenant, ``demo-shop``, with two ERP connectors (one for Norway, one for every other market)
and a four-step return workflow. Each demo order is routed to exactly one of the demo receiver's
paths, by market (which connector) or by tag (which step's scope admits it):

| order    | market | tags           | step               | path             | outcome          |
|----------|--------|----------------|--------------------|------------------|------------------|
| ORD-1001 | SWE    |                | 1 ERP              | /returns/accept  | Success          |
| ORD-1002 | NOR    |                | 1 ERP              | /returns/enrich  | Success + patch  |
| ORD-1003 | DEN    | late-return    | 0 policy check     | /returns/reject  | Error, stops     |
| ORD-1004 | SWE    | carrier-pickup | 2 carrier pickup   | /returns/flaky   | Success, 2 tries |
| ORD-1005 | FIN    | legacy-erp     | 3 legacy ERP       | /returns/missing | Warning (404)    |
| ORD-1006 | SWE    |                | (status Shipped)   | none             | ignored          |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models.secret_reference import secret_env_name
from models.settings import TenantSettings

TENANT_ID = "demo-shop"
TOKEN_NAME = "TOKEN"
#: Where the operator provides the tenant's own secret ${TOKEN}: RETURNHOOK_SECRET_DEMO_SHOP__TOKEN.
TOKEN_ENV = secret_env_name(TENANT_ID, TOKEN_NAME) or ""
ERROR_STATUS = "ReturnRejected"
STEP_ERROR_KEY = "WebhookReturnWorkflowStep"

#: What the tables call each step of the workflow below (the records only carry its index).
STEP_LABELS = {
    0: "policy check",
    1: "ERP",
    2: "carrier pickup",
    3: "legacy ERP",
}


def tenant_settings(receiver_url: str) -> TenantSettings:
    """The demo tenant's settings, validated like ``returnhook settings publish`` does."""
    base = receiver_url.rstrip("/")
    token = f"${{{TOKEN_NAME}}}"  # the tenant's own secret, resolved by the worker
    return TenantSettings.model_validate(
        {
            "tenantId": TENANT_ID,
            "connectors": [
                {
                    "name": "Webhook",
                    "connectorId": "erp-nordics",
                    "host": f"{base}/returns/enrich",
                    "bearerToken": token,
                    "timeout": "00:00:05",
                    "customHeaders": [{"key": "X-Erp-Company", "value": "demo-shop-no"}],
                    "enabledForMarkets": ["NOR"],
                },
                {
                    "name": "Webhook",
                    "connectorId": "erp-main",
                    "host": f"{base}/returns/accept",
                    "bearerToken": token,
                    "timeout": "5000",
                    "customHeaders": [{"key": "X-Erp-Company", "value": "demo-shop"}],
                    "disabledForMarkets": ["NOR"],
                },
            ],
            "returnWorkflow": [
                {
                    # 0: late returns are refused by the policy service; stop the workflow.
                    "name": "WebhookReturnWorkflowStep",
                    "connector": "Webhook",
                    "connectorId": "erp-main",
                    "stopOnError": True,
                    "translateKey": "WorkflowStep_WebhookReturnWorkflowStep",
                    "enabledForTags": ["late-return"],
                    "properties": [
                        {"key": "Host", "value": f"{base}/returns/reject"},
                        {"key": "ErrorStatus", "value": ERROR_STATUS},
                        {"key": "X-Source", "value": "oms", "keyGroup": "RequestHeaders"},
                    ],
                },
                {
                    # 1: register the return in the ERP; the connector is chosen by market.
                    "name": "WebhookReturnWorkflowStep",
                    "connector": "Webhook",
                    "stopOnError": True,
                    "translateKey": "WorkflowStep_WebhookReturnWorkflowStep",
                    "disabledForTags": ["carrier-pickup", "legacy-erp"],
                    "properties": [{"key": "ErrorStatus", "value": ERROR_STATUS}],
                },
                {
                    # 2: book a carrier pickup; the carrier's API is unavailable now and then.
                    "name": "WebhookReturnWorkflowStep",
                    "connector": "Webhook",
                    "stopOnError": False,
                    "enabledForTags": ["carrier-pickup"],
                    "properties": [{"key": "Host", "value": f"{base}/returns/flaky"}],
                },
                {
                    # 3: an old integration whose URL no longer exists.
                    "name": "WebhookReturnWorkflowStep",
                    "connector": "Webhook",
                    "stopOnError": False,
                    "enabledForTags": ["legacy-erp"],
                    "properties": [{"key": "Host", "value": f"{base}/returns/missing"}],
                },
            ],
        }
    )


@dataclass(frozen=True)
class Expected:
    """The order-event (and whether an order-patch) one demo order must produce."""

    order_id: str
    scenario: str
    step: int
    action_status: str
    attempts: int
    http_status: int
    continue_workflow: bool
    patch_fields: frozenset[str] = field(default_factory=frozenset)


EXPECTED: list[Expected] = [
    Expected("ORD-1001", "accept", 1, "Success", 1, 200, True),
    Expected("ORD-1002", "enrich", 1, "Success", 1, 200, True, frozenset({"tags", "properties"})),
    Expected("ORD-1003", "reject", 0, "Error", 1, 200, False, frozenset({"status", "errors"})),
    Expected("ORD-1004", "flaky 503→200", 2, "Success", 2, 200, True, frozenset({"errors"})),
    Expected("ORD-1005", "missing 404", 3, "Warning", 1, 404, True, frozenset({"errors"})),
]
IGNORED_ORDER_ID = "ORD-1006"


def _line(sku: str, name: str, quantity: int, price: float) -> dict[str, Any]:
    return {
        "lineItemId": f"{sku}-1",
        "code": sku,
        "productId": sku.split("-")[0],
        "displayName": name,
        "quantity": quantity,
        "placedPrice": price,
        "extendedPrice": round(price * quantity, 2),
        "taxRate": 25.0,
        "discounted": 0.0,
    }


def _order(
    order_id: str,
    *,
    status: str,
    market: str,
    store: str,
    currency: str,
    customer: tuple[str, str, str],
    lines: list[dict[str, Any]],
    returned: list[str] | None,
    tags: list[str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    placed: datetime,
) -> dict[str, Any]:
    first, last, city = customer
    total = round(sum(line["extendedPrice"] for line in lines), 2)
    order: dict[str, Any] = {
        "id": order_id,
        "orderNumber": order_id.split("-")[1],
        "status": status,
        "marketId": market,
        "storeId": store,
        "orderType": "Online",
        "orderOrigin": "Webshop",
        "currency": currency,
        "created": placed.isoformat(),
        "modified": (placed + timedelta(days=9)).isoformat(),
        "customerId": f"C-{order_id[-4:]}",
        "customerName": f"{first} {last}",
        "customerEmail": f"{first.lower()}.{last.lower()}@example.com",
        "customerPhone": "+4712345678",
        "billingAddress": {
            "name": f"{first} {last}",
            "line1": "Storgata 1",
            "city": city,
            "postalCode": "0155",
            "countryCode": market[:2],
        },
        "tags": tags or [],
        "properties": [
            {"key": "Channel", "value": "web"},
            {"key": "Newsletter", "value": "true", "keyGroup": "Customer"},
        ],
        "errors": errors or [],
        "orderForm": {"lineItems": lines, "totalInclTax": total},
        "returnOrderForms": [],
    }
    if returned:
        returned_lines = [line for line in lines if line["code"] in returned]
        order["returnOrderForms"] = [
            {
                "returnId": f"R-{order_id[-4:]}-1",
                "created": (placed + timedelta(days=9)).isoformat(),
                "status": "New",
                "returnComment": "Did not fit",
                "lineItems": returned_lines,
                "totalInclTax": round(sum(line["extendedPrice"] for line in returned_lines), 2),
            }
        ]
    return order


def events(now: datetime | None = None) -> list[dict[str, Any]]:
    """The ``order-status-changed`` values the demo produces, keyed by ``order.id``."""
    now = now or datetime.now(UTC)
    placed = now - timedelta(days=10)
    earlier_failure = {
        "key": STEP_ERROR_KEY,
        "message": "the webhook answered HTTP 503 on attempt 4 of 4; giving up",
        "details": "HTTP 503 after 4 attempts",
        "referenceId": "previous-delivery",
        "severity": "Warning",
        "status": "New",
        "occurred": (now - timedelta(hours=1)).isoformat(),
    }
    orders = [
        _order(
            "ORD-1001", status="Returned", market="SWE", store="stockholm-web", currency="SEK",
            customer=("Astrid", "Lind", "Stockholm"), placed=placed, returned=["JKT-42-M"],
            lines=[_line("JKT-42-M", "Rain jacket, M", 1, 1299.0)],
        ),
        _order(
            "ORD-1002", status="PartiallyReturned", market="NOR", store="oslo-web",
            currency="NOK", customer=("Ola", "Nordmann", "Oslo"), placed=placed,
            returned=["SCK-7-L"],
            lines=[_line("SCK-7-L", "Wool socks, L", 2, 149.0),
                   _line("BNE-3-S", "Beanie", 1, 249.0)],
        ),
        _order(
            "ORD-1003", status="Returned", market="DEN", store="copenhagen-web", currency="DKK",
            customer=("Freja", "Hansen", "København"), placed=now - timedelta(days=75),
            returned=["BTS-44"], tags=["late-return"],
            lines=[_line("BTS-44", "Hiking boots, 44", 1, 1499.0)],
        ),
        _order(
            "ORD-1004", status="Returned", market="SWE", store="goteborg-store",
            currency="SEK", customer=("Nils", "Berg", "Göteborg"), placed=placed,
            returned=["TNT-2P"], tags=["carrier-pickup"], errors=[earlier_failure],
            lines=[_line("TNT-2P", "Tent, 2 persons", 1, 3490.0)],
        ),
        _order(
            "ORD-1005", status="Returned", market="FIN", store="helsinki-web", currency="EUR",
            customer=("Aino", "Virtanen", "Helsinki"), placed=placed, returned=["GLV-9"],
            tags=["legacy-erp"], lines=[_line("GLV-9", "Gloves", 1, 39.9)],
        ),
        _order(
            IGNORED_ORDER_ID, status="Shipped", market="SWE", store="stockholm-web",
            currency="SEK", customer=("Erik", "Sund", "Uppsala"), placed=now, returned=None,
            lines=[_line("CAP-1", "Cap", 1, 199.0)],
        ),
    ]  # fmt: skip
    previous = {"Returned": "Completed", "PartiallyReturned": "Completed", "Shipped": "New"}
    return [
        {
            "eventId": f"demo-{order['id']}-{order['status']}",
            "tenantId": TENANT_ID,
            "orderId": order["id"],
            "status": order["status"],
            "previousStatus": previous[order["status"]],
            "timestamp": now.isoformat(),
            "order": order,
        }
        for order in orders
    ]
