"""Realistic return events and the tenants they belong to.

Orders look like OmniumOrders (customer, addresses, 1–6 line items, shipments, payments, a
return form), 2–4 KB of JSON each. Events are spread over many orders (about one in seven orders
gets a second event, PartiallyReturned then Returned, later in the batch) and keyed by order id,
so the default partitioner spreads them over the input topic's 12 partitions.

Tenants and their endpoints:

* ``t0-<i>``: answers at once; ``t50-<i>``: answers after 50 ms. The ``<i>`` spread over
  ``hosts`` receiver ports (each port is its own webhook origin, like tenants with their own ERP).
* ``slow``: its own port, answers after 2 s.
* ``failing``: its own port, answers HTTP 500 every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from models.settings import TenantSettings

BENCH_TOKEN = "bench-token-4b1d"
ERROR_STATUS = "ReturnFailed"
SLOW_TENANT = "slow"
FAILING_TENANT = "failing"
SLOW_DELAY_MS = 2000

_MARKETS = [
    ("NOR", "NOK", "Oslo", "oslo-web"),
    ("SWE", "SEK", "Stockholm", "stockholm-web"),
    ("DEN", "DKK", "København", "copenhagen-web"),
    ("FIN", "EUR", "Helsinki", "helsinki-web"),
    ("DEU", "EUR", "Berlin", "berlin-store"),
    ("NLD", "EUR", "Amsterdam", "amsterdam-web"),
]
_FIRST = ["Astrid", "Ola", "Freja", "Nils", "Aino", "Erik", "Ingrid", "Lars", "Maja", "Jonas"]
_LAST = ["Lind", "Nordmann", "Hansen", "Berg", "Virtanen", "Sund", "Dahl", "Holm", "Bakke"]
_PRODUCTS = [
    ("JKT-42", "Rain jacket", 1299.0),
    ("SCK-7", "Wool socks", 149.0),
    ("BNE-3", "Beanie", 249.0),
    ("BTS-44", "Hiking boots", 1499.0),
    ("TNT-2P", "Tent, 2 persons", 3490.0),
    ("GLV-9", "Gloves", 399.0),
    ("CAP-1", "Cap", 199.0),
    ("PNT-32", "Trekking trousers", 899.0),
    ("FLC-5", "Fleece sweater", 749.0),
    ("BAG-30", "Day pack, 30 l", 1099.0),
]
_SIZES = ["XS", "S", "M", "L", "XL"]


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    url: str
    group: str
    """fast | slow | failing: how the report splits latencies."""


@dataclass(frozen=True)
class Event:
    event_id: str
    tenant_id: str
    order_id: str
    group: str
    key: bytes
    value: bytes
    """The order-status-changed record."""
    url: str
    body: bytes
    """What the step posts for it (used by the HTTP ceiling)."""


class TenantDirectory:
    """Every tenant the bench uses, given the receiver's ports."""

    def __init__(
        self,
        base_url: str,
        fast_ports: list[int],
        slow_port: int,
        failing_port: int,
        tenants_per_latency: int = 8,
    ) -> None:
        self.fast: dict[int, list[Tenant]] = {}
        for delay in (0, 50):
            self.fast[delay] = [
                Tenant(
                    tenant_id=f"t{delay}-{i}",
                    url=f"{base_url}:{fast_ports[i % len(fast_ports)]}"
                    f"/hook/{delay}/200/t{delay}-{i}",
                    group="fast",
                )
                for i in range(tenants_per_latency)
            ]
        self.slow = Tenant(
            SLOW_TENANT, f"{base_url}:{slow_port}/hook/{SLOW_DELAY_MS}/200/slow", "slow"
        )
        self.failing = Tenant(
            FAILING_TENANT, f"{base_url}:{failing_port}/hook/0/500/failing", "failing"
        )
        self.by_id = {t.tenant_id: t for t in self.all()}
        self._step_json = {t.tenant_id: _step_json(t) for t in self.all()}

    def all(self) -> list[Tenant]:
        return [*self.fast[0], *self.fast[50], self.slow, self.failing]

    def settings(self) -> list[TenantSettings]:
        return [tenant_settings(t) for t in self.all()]

    def step_json(self, tenant_id: str) -> dict[str, Any]:
        return self._step_json[tenant_id]


def tenant_settings(tenant: Tenant) -> TenantSettings:
    """One connector and one WebhookReturnWorkflowStep, as a typical tenant configures it."""
    return TenantSettings.model_validate(
        {
            "tenantId": tenant.tenant_id,
            "connectors": [
                {
                    "name": "Webhook",
                    "connectorId": "erp-returns",
                    "host": tenant.url,
                    "bearerToken": BENCH_TOKEN,
                    "timeout": "00:00:30",
                    "customHeaders": [{"key": "X-Erp-Company", "value": tenant.tenant_id}],
                }
            ],
            "returnWorkflow": [
                {
                    "name": "WebhookReturnWorkflowStep",
                    "active": True,
                    "connector": "Webhook",
                    "connectorId": "erp-returns",
                    "stopOnError": True,
                    "runAfterOrderIsSaved": False,
                    "translateKey": "WorkflowStep_WebhookReturnWorkflowStep",
                    "properties": [
                        {"key": "ErrorStatus", "value": ERROR_STATUS},
                        {"key": "X-Source", "value": "oms", "keyGroup": "RequestHeaders"},
                    ],
                }
            ],
        }
    )


def _step_json(tenant: Tenant) -> dict[str, Any]:
    step = tenant_settings(tenant).return_workflow[0]
    return step.model_dump(mode="json", by_alias=True, exclude_none=True)


def _line(rng: random.Random, n: int) -> dict[str, Any]:
    sku, name, price = rng.choice(_PRODUCTS)
    size = rng.choice(_SIZES)
    quantity = rng.choice([1, 1, 1, 2, 3])
    return {
        "lineItemId": f"{sku}-{size}-{n}",
        "code": f"{sku}-{size}",
        "productId": sku,
        "displayName": f"{name}, {size}",
        "quantity": quantity,
        "placedPrice": price,
        "extendedPrice": round(price * quantity, 2),
        "discounted": 0.0,
        "taxRate": 25.0,
        "taxTotal": round(price * quantity * 0.2, 2),
        "supplierSkuId": f"SUP-{rng.randrange(10_000, 99_999)}",
        "properties": [{"key": "Color", "value": rng.choice(["black", "navy", "olive", "red"])}],
    }


def make_order(rng: random.Random, order_id: str, status: str, now: datetime) -> dict[str, Any]:
    market, currency, city, store = rng.choice(_MARKETS)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    placed = now - timedelta(days=rng.randrange(3, 40), minutes=rng.randrange(0, 1440))
    lines = [_line(rng, n) for n in range(1, rng.randrange(2, 7))]
    returned = rng.sample(lines, k=max(1, len(lines) // 2))
    total = round(sum(line["extendedPrice"] for line in lines), 2)
    address = {
        "name": f"{first} {last}",
        "line1": f"Storgata {rng.randrange(1, 120)}",
        "city": city,
        "postalCode": f"{rng.randrange(1000, 9999)}",
        "countryCode": market[:2],
        "phone": f"+47{rng.randrange(10_000_000, 99_999_999)}",
        "email": f"{first.lower()}.{last.lower()}@example.com",
    }
    return {
        "id": order_id,
        "orderNumber": order_id.rsplit("-", 1)[-1],
        "status": status,
        "marketId": market,
        "storeId": store,
        "orderType": "Online",
        "orderOrigin": "Webshop",
        "currency": currency,
        "created": placed.isoformat(),
        "modified": now.isoformat(),
        "customerId": f"C-{rng.randrange(100_000, 999_999)}",
        "customerName": f"{first} {last}",
        "customerEmail": address["email"],
        "customerPhone": address["phone"],
        "billingAddress": address,
        "shippingAddress": {**address, "line2": "c/o reception"},
        "tags": rng.sample(["vip", "newsletter", "b2c", "campaign-spring", "gift"], k=2),
        "properties": [
            {"key": "Channel", "value": "web"},
            {"key": "Newsletter", "value": "true", "keyGroup": "Customer"},
            {"key": "CampaignCode", "value": f"SPRING{rng.randrange(10, 99)}"},
        ],
        "errors": [],
        "orderForm": {
            "lineItems": lines,
            "shipments": [
                {
                    "shipmentId": f"S-{order_id}",
                    "shippingMethodName": "Postnord Home",
                    "trackingNumber": f"PN{rng.randrange(10**9, 10**10)}",
                    "lineItemIds": [line["lineItemId"] for line in lines],
                }
            ],
            "payments": [
                {
                    "paymentId": f"P-{order_id}",
                    "paymentMethodName": rng.choice(["Klarna", "Card", "Vipps"]),
                    "amount": total,
                    "transactionType": "Capture",
                    "status": "Processed",
                }
            ],
            "totalInclTax": total,
        },
        "returnOrderForms": [
            {
                "returnId": f"R-{order_id}-1",
                "created": now.isoformat(),
                "status": "New",
                "returnComment": rng.choice(["Did not fit", "Changed my mind", "Damaged"]),
                "lineItems": returned,
                "totalInclTax": round(sum(line["extendedPrice"] for line in returned), 2),
            }
        ],
    }


def make_events(
    n: int,
    run_tag: str,
    pick_tenant: Any,
    tenants: TenantDirectory,
    *,
    seed: str | None = None,
    second_event_share: float = 0.15,
) -> list[Event]:
    """`n` events over about n / (1 + share) orders; `pick_tenant(rng, order_index)` → Tenant.

    An order's events stay in order (PartiallyReturned before Returned); the second one is placed
    later in the batch, so one order never has two events side by side. The same `seed` gives the
    same orders and tenants; `run_tag` only goes into the ids (order, event), which must be new
    for every run.
    """
    rng = random.Random(seed if seed is not None else run_tag)
    now = datetime.now(UTC)
    firsts: list[tuple[str, Tenant, bool]] = []
    order_index = 0
    planned = 0
    while planned < n:
        tenant = pick_tenant(rng, order_index)
        two = planned + 2 <= n and rng.random() < second_event_share
        firsts.append((f"O-{run_tag}-{order_index:06d}", tenant, two))
        planned += 2 if two else 1
        order_index += 1
    sequence: list[tuple[str, Tenant, str]] = []
    seconds: list[tuple[int, tuple[str, Tenant, str]]] = []
    for position, (order_id, tenant, two) in enumerate(firsts):
        sequence.append((order_id, tenant, "PartiallyReturned" if two else "Returned"))
        if two:
            later = position + rng.randrange(20, 400)
            seconds.append((later, (order_id, tenant, "Returned")))
    for later, item in sorted(seconds, key=lambda s: s[0], reverse=True):
        sequence.insert(min(later, len(sequence)), item)
    events: list[Event] = []
    for index, (order_id, tenant, status) in enumerate(sequence):
        order = make_order(rng, order_id, status, now)
        event_id = f"E-{run_tag}-{index:06d}"
        value = {
            "eventId": event_id,
            "tenantId": tenant.tenant_id,
            "orderId": order_id,
            "status": status,
            "previousStatus": "Completed" if status == "PartiallyReturned" else "PartiallyReturned",
            "timestamp": now.isoformat(),
            "order": order,
        }
        body = {
            "Value": order,
            "WorkflowStep": tenants.step_json(tenant.tenant_id),
            "ReturnOrderFormId": order["returnOrderForms"][-1]["returnId"],
        }
        events.append(
            Event(
                event_id=event_id,
                tenant_id=tenant.tenant_id,
                order_id=order_id,
                group=tenant.group,
                key=order_id.encode(),
                value=orjson.dumps(value),
                url=tenant.url,
                body=orjson.dumps(body),
            )
        )
    return events


def tenant_headers(tenant_id: str) -> dict[str, str]:
    """The headers the step sends for a tenant (SPEC §4), the per-event ones aside."""
    return {
        "User-Agent": "OmniumOms/returnhook-0.1",
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Max-Delivery-Count": "4",
        "Authorization": f"Bearer {BENCH_TOKEN}",
        "X-Erp-Company": tenant_id,
        "X-Source": "oms",
    }


def request_headers(event: Event) -> dict[str, str]:
    """Every header of the first attempt, for the HTTP ceiling's bare client."""
    return {
        **tenant_headers(event.tenant_id),
        "X-Delivery-Count": "1",
        "Idempotency-Key": event.event_id,
    }


# --- how each scenario spreads its orders over tenants -----------------------------------------


def fast_only(tenants: TenantDirectory, delay_ms: int) -> Any:
    pool = tenants.fast[delay_ms]
    return lambda rng, i: pool[rng.randrange(len(pool))]


def with_share(tenants: TenantDirectory, special: Tenant, share: float) -> Any:
    """`share` of the orders go to `special`, the rest to the 0 ms tenants."""
    pool = tenants.fast[0]
    return lambda rng, i: special if rng.random() < share else pool[rng.randrange(len(pool))]
