"""From input bytes to Accepted / Ignored / Rejected (streams/core/decoder.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from streams.core.decoder import DEFAULT_MAX_RECORD_BYTES, Accepted, Ignored, Rejected, decode


def _event(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "eventId": "E-1",
        "tenantId": "acme",
        "status": "Returned",
        "order": {"id": "O-1", "marketId": "NOR"},
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not _DROP}


_DROP = object()


def _decode(data: Any, **kw: Any):
    return decode(orjson.dumps(data), **kw)


def _accepted(data: Any) -> Accepted:
    result = _decode(data)
    assert isinstance(result, Accepted), result
    return result


def _rejected(value: bytes | None, **kw: Any) -> Rejected:
    result = decode(value, **kw)
    assert isinstance(result, Rejected), result
    return result


# accepted -------------------------------------------------------------------------------------


def test_accepted() -> None:
    result = _accepted(_event(returnOrderFormId="R-1"))
    assert result.order_id == "O-1"
    assert result.return_order_form_id == "R-1"
    assert result.event.tenant_id == "acme"
    assert result.order_view.market_id == "NOR"


@pytest.mark.parametrize(
    "status", ["Returned", "PartiallyReturned", "returned", "RETURNED", "partiallyReturned"]
)
def test_return_statuses_in_any_case_are_accepted(status: str) -> None:
    assert _accepted(_event(status=status)).event.status == status


@pytest.mark.parametrize("how", ["pascal", "lower", "upper"])
def test_event_fields_in_any_casing(how: str) -> None:
    def recase(key: str) -> str:
        return {"pascal": key[:1].upper() + key[1:], "lower": key.lower(), "upper": key.upper()}[
            how
        ]

    data = {recase(k): v for k, v in _event(orderId="O-9", returnOrderFormId="R").items()}
    data[recase("order")] = {recase("id"): "O-1", recase("marketId"): "NOR"}
    result = _accepted(data)
    assert result.event.tenant_id == "acme"
    assert result.order_id == "O-9"
    assert result.return_order_form_id == "R"
    assert result.order_view.market_id == "NOR"


def test_order_id_defaults_to_order_dot_id() -> None:
    assert _accepted(_event()).order_id == "O-1"
    assert _accepted(_event(order={"Id": "O-7"})).order_id == "O-7"


def test_explicit_order_id_wins() -> None:
    assert _accepted(_event(orderId="O-2")).order_id == "O-2"


def test_empty_order_id_falls_back_to_order_dot_id() -> None:
    assert _accepted(_event(orderId="")).order_id == "O-1"


def test_unknown_event_fields_are_tolerated() -> None:
    assert _accepted(_event(somethingNew={"x": 1})).order_id == "O-1"


def test_order_is_kept_verbatim() -> None:
    order = {"Id": "O-1", "custom": {"a": [1, None]}, "Tags": None}
    assert _accepted(_event(order=order)).event.order == order


# returnOrderFormId default --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forms", "expected"),
    [
        ([{"returnId": "R-1"}, {"returnId": "R-2"}], "R-2"),
        ([{"returnId": "R-1"}, {"id": "R-2"}], "R-2"),
        ([{"id": "R-1"}], "R-1"),
        ([{"ReturnId": "R-1", "Id": "X"}], "R-1"),
        ([{"returnId": "R-1"}, {}], None),
        ([], None),
        (None, None),
    ],
)
def test_return_order_form_id_defaults_to_the_newest_form(
    forms: list | None, expected: str | None
) -> None:
    order = {"id": "O-1", "returnOrderForms": forms}
    assert _accepted(_event(order=order)).return_order_form_id == expected


def test_explicit_return_order_form_id_wins() -> None:
    order = {"id": "O-1", "ReturnOrderForms": [{"returnId": "R-1"}, {"returnId": "R-2"}]}
    assert _accepted(_event(order=order, returnOrderFormId="R-1")).return_order_form_id == "R-1"


# ignored --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["New", "Completed", "InProgress", "Cancelled", "Return"])
def test_non_return_statuses_are_ignored(status: str) -> None:
    assert _decode(_event(status=status)) == Ignored(status=status)


@pytest.mark.parametrize("key", ["status", "Status", "STATUS"])
def test_ignored_regardless_of_status_key_casing(key: str) -> None:
    data = _event(status=_DROP)
    data[key] = "Completed"
    assert _decode(data) == Ignored(status="Completed")


def test_non_return_events_are_ignored_even_if_otherwise_invalid() -> None:
    """We do not dead-letter events we would not act on anyway."""
    assert _decode({"status": "New"}) == Ignored(status="New")
    assert _decode({"status": "New", "order": "x", "tenantId": ""}) == Ignored(status="New")


# rejected -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, b""])
def test_empty_value(value: bytes | None) -> None:
    assert _rejected(value).reason == "empty_value"


def test_too_large() -> None:
    value = orjson.dumps(_event(order={"id": "O-1", "pad": "x" * 200}))
    rejected = _rejected(value, max_bytes=100)
    assert rejected.reason == "record_too_large"
    assert str(len(value)) in rejected.error and "100" in rejected.error


def test_exactly_at_the_cap_is_fine() -> None:
    value = orjson.dumps(_event())
    assert isinstance(decode(value, max_bytes=len(value)), Accepted)
    assert DEFAULT_MAX_RECORD_BYTES == 1024 * 1024


@pytest.mark.parametrize("value", [b"{", b"not json", b"\xff\xfe\x00", b"{'a': 1}", b" "])
def test_invalid_json(value: bytes) -> None:
    rejected = _rejected(value)
    assert rejected.reason == "invalid_json"
    assert "not JSON" in rejected.error


@pytest.mark.parametrize(
    ("value", "kind"), [(b"[]", "list"), (b'"x"', "str"), (b"1", "int"), (b"null", "NoneType")]
)
def test_not_an_object(value: bytes, kind: str) -> None:
    rejected = _rejected(value)
    assert rejected.reason == "not_an_object"
    assert kind in rejected.error


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"tenantId": _DROP}, "tenantId"),
        ({"tenantId": ""}, "tenantId"),
        ({"tenantId": "  "}, "tenantId"),
        ({"tenantId": 5}, "tenantId"),
        ({"status": _DROP}, "status"),
        ({"status": ""}, "status"),
        ({"status": None}, "status"),
        ({"status": 5}, "status"),
        ({"order": _DROP}, "order"),
        ({"order": None}, "order"),
        ({"order": [1, 2]}, "order"),
        ({"timestamp": "not a date"}, "timestamp"),
        ({"returnOrderFormId": 42}, "returnOrderFormId"),
        ({"eventId": ["x"]}, "eventId"),
    ],
)
def test_invalid_event_names_the_field(overrides: dict, path: str) -> None:
    rejected = _rejected(orjson.dumps(_event(**overrides)))
    assert rejected.reason == "invalid_event"
    assert rejected.error.startswith(f"{path}: "), rejected.error


def test_invalid_event_lists_every_bad_field() -> None:
    rejected = _rejected(orjson.dumps({"status": "Returned"}))
    assert "tenantId: " in rejected.error and "; order: " in rejected.error


@pytest.mark.parametrize(
    ("order", "path"),
    [
        ({"id": "O-1", "tags": "vip"}, "order.tags"),
        ({"id": "O-1", "Tags": [1]}, "order.tags.0"),
        ({"id": "O-1", "properties": [{"value": "x"}]}, "order.properties.0.key"),
        ({"id": "O-1", "errors": ["x"]}, "order.errors.0"),
        ({"id": 5}, "order.id"),
        ({"id": "O-1", "marketId": 47}, "order.marketId"),
        ({"id": "O-1", "returnOrderForms": "R"}, "order.returnOrderForms"),
    ],
)
def test_invalid_order_names_the_field(order: dict, path: str) -> None:
    rejected = _rejected(orjson.dumps(_event(order=order)))
    assert rejected.reason == "invalid_order"
    assert rejected.error.startswith(f"{path}: "), rejected.error


def test_invalid_order_prefixes_every_path() -> None:
    rejected = _rejected(orjson.dumps(_event(order={"id": "O", "tags": "x", "properties": 5})))
    assert rejected.error.startswith("order.tags: ")
    assert "; order.properties: " in rejected.error


@pytest.mark.parametrize("order", [{}, {"id": None}, {"id": ""}, {"marketId": "NOR"}])
def test_missing_order_id(order: dict) -> None:
    rejected = _rejected(orjson.dumps(_event(order=order)))
    assert rejected.reason == "missing_order_id"
    assert "orderId" in rejected.error and "order.id" in rejected.error


# never raises ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_order = st.fixed_dictionaries(
    {},
    optional={
        "id": _json,
        "marketId": _json,
        "tags": _json,
        "properties": _json,
        "errors": _json,
        "returnOrderForms": _json,
        "Id": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_never_raises_on_bytes(value: bytes) -> None:
    assert isinstance(decode(value), Accepted | Ignored | Rejected)


# Event-like JSON that reaches every branch: each field is mostly a value the decoder accepts
# and sometimes anything at all, so one run has draws accepted (order id given or from the
# order, return form given, from the order's forms or none), ignored, and rejected for each
# reason. OUTCOME_KINDS below is checked after the run.


def _mostly(valid: st.SearchStrategy[Any], junk: st.SearchStrategy[Any] = _json) -> Any:
    """`valid` four draws in five, `junk` the fifth."""
    return st.integers(0, 4).flatmap(lambda n: junk if n == 0 else valid)


_name = st.text(min_size=1, max_size=6)
_form = st.fixed_dictionaries(
    {},
    optional={
        "returnId": _mostly(_name | st.just("")),
        "id": _mostly(_name),
    },
)
_sane_order = st.fixed_dictionaries(
    {
        "id": _mostly(_name, st.just("") | st.none() | _json),
        "returnOrderForms": _mostly(st.lists(_form, min_size=1, max_size=3), st.none() | _json),
    },
    optional={
        "marketId": _mostly(st.sampled_from(["NOR", "SWE"])),
        "tags": _mostly(st.lists(st.text(max_size=4), max_size=2)),
    },
)
_event_like = st.fixed_dictionaries(
    {
        "status": _mostly(
            st.sampled_from(["Returned", "returned", "PartiallyReturned"]),
            st.sampled_from(["Shipped", "New", " "]) | _json,
        ),
        "tenantId": _mostly(st.just("acme")),
        "order": _mostly(_sane_order, _order | _json),
    },
    optional={
        "orderId": _mostly(_name | st.just("")),
        "returnOrderFormId": _mostly(_name),
        "timestamp": _mostly(st.just("2026-03-01T10:00:00Z")),
        "eventId": _mostly(_name),
    },
)

# Every kind of outcome the run must reach, or it proves nothing about that path.
OUTCOME_KINDS = {
    "ignored",
    "rejected invalid_event",
    "rejected invalid_order",
    "rejected missing_order_id",
    "accepted, order id from orderId",
    "accepted, order id from order.id",
    "accepted, return form given",
    "accepted, return form from the newest order form",
    "accepted, no return form",
}


def _ci(data: dict, name: str) -> list[Any]:
    """The values of `name` in every casing present (the junk order spells `id` twice)."""
    return [v for k, v in data.items() if k.lower() == name.lower()]


def _check_accepted(data: dict, result: Accepted) -> list[str]:
    """The accepted values, worked out from the input by hand; returns the kinds reached."""
    [order] = _ci(data, "order")
    [explicit_id] = _ci(data, "orderId") or [None]
    if explicit_id:
        assert result.order_id == explicit_id
        kinds = ["accepted, order id from orderId"]
    else:
        assert result.order_id and result.order_id in _ci(order, "id")
        kinds = ["accepted, order id from order.id"]
    [explicit_form] = _ci(data, "returnOrderFormId") or [None]
    [forms] = _ci(order, "returnOrderForms") or [None]
    if explicit_form is not None:
        assert result.return_order_form_id == explicit_form
        kinds.append("accepted, return form given")
    elif forms:
        newest = forms[-1]
        identifiers = [*_ci(newest, "returnId"), *_ci(newest, "id")]
        assert result.return_order_form_id == (next((i for i in identifiers if i), None))
        kinds.append("accepted, return form from the newest order form")
    else:
        assert result.return_order_form_id is None
        kinds.append("accepted, no return form")
    return kinds


def test_decode_never_raises_on_event_like_json() -> None:
    reached: Counter[str] = Counter()

    @settings(max_examples=500, deadline=None)
    @given(_event_like)
    def check(data: dict) -> None:
        result = decode(orjson.dumps(data))
        if isinstance(result, Accepted):
            kinds = _check_accepted(data, result)
        elif isinstance(result, Ignored):
            kinds = ["ignored"]
        else:
            assert isinstance(result, Rejected) and result.error
            kinds = [f"rejected {result.reason}"]
        for kind in kinds:
            event(kind)
            reached[kind] += 1

    check()
    missing = OUTCOME_KINDS - set(reached)
    assert not missing, f"never reached: {sorted(missing)}; reached: {dict(reached)}"
