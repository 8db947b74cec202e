"""The input event (models/event.py) and the order view (models/order.py), any casing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from models.event import OrderStatusChanged, is_return_status
from models.order import OrderError, OrderView, ReturnOrderForm


def _event(**overrides: object) -> dict:
    data: dict = {"tenantId": "acme", "status": "Returned", "order": {"id": "O-1"}}
    data.update(overrides)
    return data


# OrderStatusChanged ---------------------------------------------------------------------------


def test_minimal_event() -> None:
    event = OrderStatusChanged.model_validate(_event())
    assert event.tenant_id == "acme"
    assert event.status == "Returned"
    assert event.order == {"id": "O-1"}
    assert event.event_id is None
    assert event.order_id is None
    assert event.previous_status is None
    assert event.return_order_form_id is None
    assert event.timestamp is None


@pytest.mark.parametrize(
    "keys",
    [
        (
            "eventId",
            "tenantId",
            "orderId",
            "status",
            "previousStatus",
            "returnOrderFormId",
            "timestamp",
            "order",
        ),
        (
            "EventId",
            "TenantId",
            "OrderId",
            "Status",
            "PreviousStatus",
            "ReturnOrderFormId",
            "Timestamp",
            "Order",
        ),
        (
            "eventid",
            "tenantid",
            "orderid",
            "status",
            "previousstatus",
            "returnorderformid",
            "timestamp",
            "order",
        ),
        (
            "EVENTID",
            "TENANTID",
            "ORDERID",
            "STATUS",
            "PREVIOUSSTATUS",
            "RETURNORDERFORMID",
            "TIMESTAMP",
            "ORDER",
        ),
    ],
)
def test_every_field_in_any_casing(keys: tuple[str, ...]) -> None:
    values = (
        "E-1",
        "acme",
        "O-1",
        "Returned",
        "Completed",
        "R-1",
        "2024-05-01T10:00:00Z",
        {"Id": "O-1", "Custom": 1},
    )
    event = OrderStatusChanged.model_validate(dict(zip(keys, values, strict=True)))
    assert event.event_id == "E-1"
    assert event.tenant_id == "acme"
    assert event.order_id == "O-1"
    assert event.status == "Returned"
    assert event.previous_status == "Completed"
    assert event.return_order_form_id == "R-1"
    assert event.timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert event.order == {"Id": "O-1", "Custom": 1}


def test_order_is_kept_unchanged_with_unknown_fields_and_casing() -> None:
    order = {"Id": "O-1", "customField": {"nested": [1, 2]}, "LINES": [{"sku": "x"}], "n": None}
    assert OrderStatusChanged.model_validate(_event(order=order)).order == order


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("tenantId", None, "tenantId"),
        ("tenantId", "", "tenantId"),
        ("tenantId", "   ", "tenantId"),
        ("status", "", "status"),
        ("status", " ", "status"),
        ("status", 5, "status"),
        ("order", None, "order"),
        ("order", [1], "order"),
        ("order", "O-1", "order"),
        ("timestamp", "yesterday", "timestamp"),
        ("orderId", 12, "orderId"),
    ],
)
def test_invalid_fields(field: str, value: object, loc: str) -> None:
    with pytest.raises(ValidationError) as info:
        OrderStatusChanged.model_validate(_event(**{field: value}))
    assert [e["loc"][0] for e in info.value.errors()] == [loc]


@pytest.mark.parametrize("missing", ["tenantId", "status", "order"])
def test_required_fields(missing: str) -> None:
    data = _event()
    del data[missing]
    with pytest.raises(ValidationError) as info:
        OrderStatusChanged.model_validate(data)
    assert info.value.errors()[0]["loc"] == (missing,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (
            "2024-05-01T12:00:00+02:00",
            datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-05-01T10:00:00.250Z", datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10)),
    ],
)
def test_timestamp_iso8601(text: str, expected: datetime) -> None:
    assert OrderStatusChanged.model_validate(_event(timestamp=text)).timestamp == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Returned", True),
        ("PartiallyReturned", True),
        ("returned", True),
        ("RETURNED", True),
        ("partiallyreturned", True),
        ("PARTIALLYRETURNED", True),
        ("Completed", False),
        ("New", False),
        ("ReturnedX", False),
        ("Return", False),
        ("", False),
        (None, False),
    ],
)
def test_is_return_status(status: str | None, expected: bool) -> None:
    assert is_return_status(status) is expected


# OrderView ------------------------------------------------------------------------------------

FULL_ORDER = {
    "id": "O-1",
    "status": "Returned",
    "marketId": "NOR",
    "storeId": "S-1",
    "orderType": "Online",
    "tags": ["vip", "b2b"],
    "properties": [{"key": "Channel", "value": "web", "keyGroup": "Meta"}],
    "errors": [{"key": "Other", "message": "m", "customExtra": 1}],
    "returnOrderForms": [{"returnId": "R-1"}, {"id": "R-2", "created": "2024-01-01"}],
    "lines": [{"sku": "ignored"}],
}


def test_order_view_reads_what_the_step_needs() -> None:
    view = OrderView.of(FULL_ORDER)
    assert view.id == "O-1"
    assert view.status == "Returned"
    assert view.market_id == "NOR"
    assert view.store_id == "S-1"
    assert view.order_type == "Online"
    assert view.tags == ["vip", "b2b"]
    assert [(p.key, p.value, p.key_group) for p in view.properties] == [("Channel", "web", "Meta")]
    assert view.errors[0].key == "Other"
    assert [f.identifier for f in view.return_order_forms] == ["R-1", "R-2"]


def _recase(data: object, how: str) -> object:
    if isinstance(data, dict):
        return {getattr(k, how)(): _recase(v, how) for k, v in data.items()}
    if isinstance(data, list):
        return [_recase(v, how) for v in data]
    return data


@pytest.mark.parametrize("how", ["upper", "lower"])
def test_order_view_any_casing(how: str) -> None:
    pascal = _recase(FULL_ORDER, how)
    view = OrderView.of(pascal)  # type: ignore[arg-type]
    assert view.id == "O-1"
    assert view.market_id == "NOR"
    assert view.store_id == "S-1"
    assert view.tags == ["vip", "b2b"]
    assert view.properties[0].key_group == "Meta"
    assert view.errors[0].key == "Other"
    assert [f.identifier for f in view.return_order_forms] == ["R-1", "R-2"]


def test_order_view_pascal_case() -> None:
    view = OrderView.of(
        {"Id": "O-1", "MarketId": "NOR", "Tags": ["x"], "ReturnOrderForms": [{"ReturnId": "R"}]}
    )
    assert (view.id, view.market_id, view.tags) == ("O-1", "NOR", ["x"])
    assert view.return_order_forms[0].identifier == "R"


def test_empty_order_view() -> None:
    view = OrderView.of({})
    assert view.id is None
    assert view.tags == [] and view.properties == [] and view.errors == []
    assert view.return_order_forms == []


@pytest.mark.parametrize("key", ["tags", "Tags", "properties", "ERRORS", "returnOrderForms"])
def test_null_lists_read_as_empty(key: str) -> None:
    view = OrderView.of({"id": "O-1", key: None})
    assert view.tags == [] and view.properties == [] and view.errors == []
    assert view.return_order_forms == []


@pytest.mark.parametrize(
    "order",
    [
        {"tags": "vip"},
        {"tags": [1]},
        {"properties": [{"value": "no key"}]},
        {"properties": "x"},
        {"errors": [5]},
        {"returnOrderForms": {"id": "R"}},
        {"marketId": 5},
    ],
)
def test_order_view_rejects_what_it_cannot_read(order: dict) -> None:
    with pytest.raises(ValidationError):
        OrderView.of(order)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"returnId": "R-1"}, "R-1"),
        ({"id": "R-2"}, "R-2"),
        ({"returnId": "R-1", "id": "X"}, "R-1"),
        ({"ReturnId": "R-1"}, "R-1"),
        ({"ID": "R-2"}, "R-2"),
        ({}, None),
        ({"returnId": "", "id": "R-2"}, "R-2"),
    ],
)
def test_return_order_form_identifier(form: dict, expected: str | None) -> None:
    assert ReturnOrderForm.model_validate(form).identifier == expected


def test_order_error_keeps_unknown_fields() -> None:
    error = OrderError.model_validate({"Key": "K", "Custom": 1})
    assert error.key == "K"
    assert error.model_extra == {"Custom": 1}
