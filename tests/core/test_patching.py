"""Order patches (streams/core/patching.py): patchable fields, applying, error entries."""

from __future__ import annotations

from typing import Any

import pytest

from models.settings import STEP_NAME
from streams.core.patching import (
    PATCHABLE,
    PatchShapeError,
    apply_patch,
    error_entry,
    is_step_error,
    normalize_patch,
    order_errors,
    without_step_errors,
)

# normalize_patch ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "field", "value"),
    [
        ("status", "status", "ReturnApproved"),
        ("Status", "status", "ReturnApproved"),
        ("STATUS", "status", "ReturnApproved"),
        ("orderType", "orderType", "Return"),
        ("OrderType", "orderType", "Return"),
        ("tags", "tags", ["a", "b"]),
        ("Tags", "tags", []),
        ("properties", "properties", [{"key": "K", "value": "V"}]),
        ("Properties", "properties", [{"Key": "K", "Value": 1, "KeyGroup": "G"}]),
        ("followUpDate", "followUpDate", "2024-06-01T00:00:00Z"),
        ("FollowUpDate", "followUpDate", "2024-06-01"),
        ("assets", "assets", [{"url": "https://x.example/a.png"}]),
        ("Assets", "assets", ["anything", 1]),
        ("orderOrigin", "orderOrigin", "Store"),
        ("OrderOrigin", "orderOrigin", "Store"),
        ("origin", "orderOrigin", "Web"),
        ("Origin", "orderOrigin", "Web"),
        ("errors", "errors", [{"key": "X", "message": "m"}]),
        ("Errors", "errors", []),
        ("name", "name", "Return of O-1"),
        ("Name", "name", "Return of O-1"),
    ],
)
def test_each_patchable_field_in_any_casing(sent: str, field: str, value: Any) -> None:
    assert normalize_patch({sent: value}) == ({field: value}, [])


def test_patchable_names() -> None:
    assert set(PATCHABLE.values()) == {
        "status",
        "orderType",
        "tags",
        "properties",
        "followUpDate",
        "assets",
        "orderOrigin",
        "errors",
        "name",
    }


@pytest.mark.parametrize("field", list(PATCHABLE))
def test_null_is_accepted_for_every_field(field: str) -> None:
    patch, ignored = normalize_patch({field: None})
    assert patch == {PATCHABLE[field]: None} and ignored == []


def test_non_patchable_fields_are_ignored_and_reported() -> None:
    patch, ignored = normalize_patch(
        {"Status": "X", "id": "O-2", "marketId": "SWE", "OrderLines": [], "Tags": ["t"], "foo": 1}
    )
    assert patch == {"status": "X", "tags": ["t"]}
    assert ignored == ["id", "marketId", "OrderLines", "foo"]


def test_empty_patch() -> None:
    assert normalize_patch({}) == ({}, [])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"status": 5}, "orderPatch.status: expected a string"),
        ({"Status": ["a"]}, "orderPatch.status: expected a string"),
        ({"orderType": True}, "orderPatch.orderType: expected a string"),
        ({"followUpDate": 20240601}, "orderPatch.followUpDate: expected a string"),
        ({"origin": {}}, "orderPatch.orderOrigin: expected a string"),
        ({"name": 1}, "orderPatch.name: expected a string"),
        ({"tags": "vip"}, "orderPatch.tags: expected a list"),
        ({"tags": ["vip", 1]}, "orderPatch.tags: expected a list of strings"),
        ({"tags": [None]}, "orderPatch.tags: expected a list of strings"),
        ({"assets": {"url": "x"}}, "orderPatch.assets: expected a list"),
        ({"properties": {"key": "K"}}, "orderPatch.properties: expected a list"),
        ({"properties": ["K=V"]}, "orderPatch.properties[0]: expected an object"),
        (
            {"properties": [{"key": "A"}, {"value": "no key"}]},
            "orderPatch.properties[1].key: expected a string",
        ),
        ({"properties": [{"key": 5}]}, "orderPatch.properties[0].key: expected a string"),
        ({"errors": "oops"}, "orderPatch.errors: expected a list"),
        ({"errors": [{"key": "a"}, "oops"]}, "orderPatch.errors[1]: expected an object"),
    ],
)
def test_wrong_types_are_rejected_with_the_field_path(raw: dict, message: str) -> None:
    with pytest.raises(PatchShapeError) as info:
        normalize_patch(raw)
    assert str(info.value) == message


def test_property_key_is_read_case_insensitively() -> None:
    assert normalize_patch({"properties": [{"KEY": "A"}]})[0] == {"properties": [{"KEY": "A"}]}


def test_a_wrong_type_among_ignored_fields_does_not_matter() -> None:
    assert normalize_patch({"id": 5, "status": "X"}) == ({"status": "X"}, ["id"])


# apply_patch ----------------------------------------------------------------------------------


def test_apply_patch_replaces_whole_fields_and_keeps_the_rest() -> None:
    order = {"id": "O-1", "tags": ["a"], "properties": [{"key": "K", "value": "1"}], "x": 1}
    patched = apply_patch(order, {"tags": ["b"], "status": "New"})
    assert patched == {
        "id": "O-1",
        "tags": ["b"],
        "properties": [{"key": "K", "value": "1"}],
        "x": 1,
        "status": "New",
    }


def test_apply_patch_keeps_the_orders_casing() -> None:
    order = {"Id": "O-1", "Tags": ["a"], "Status": "Returned"}
    assert apply_patch(order, {"tags": ["b"], "status": "Done"}) == {
        "Id": "O-1",
        "Tags": ["b"],
        "Status": "Done",
    }


def test_apply_patch_does_not_mutate_the_input() -> None:
    order = {"id": "O-1", "tags": ["a"]}
    apply_patch(order, {"tags": ["b"]})
    assert order == {"id": "O-1", "tags": ["a"]}


def test_apply_empty_patch_is_a_copy() -> None:
    order = {"id": "O-1"}
    patched = apply_patch(order, {})
    assert patched == order and patched is not order


def test_apply_patch_null_sets_null() -> None:
    assert apply_patch({"followUpDate": "x"}, {"followUpDate": None}) == {"followUpDate": None}


# errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"errors": [{"key": "a"}]}, [{"key": "a"}]),
        ({"Errors": [{"key": "a"}]}, [{"key": "a"}]),
        ({"errors": None}, []),
        ({"errors": "x"}, []),
        ({}, []),
    ],
)
def test_order_errors(order: dict, expected: list) -> None:
    assert order_errors(order) == expected


def test_order_errors_is_a_copy() -> None:
    errors = [{"key": "a"}]
    order_errors({"errors": errors}).append({"key": "b"})
    assert errors == [{"key": "a"}]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"key": STEP_NAME}, True),
        ({"Key": STEP_NAME}, True),
        ({"key": STEP_NAME.lower()}, True),
        ({"KEY": STEP_NAME.upper()}, True),
        ({"key": "WebhookWorkflowStep"}, False),
        ({"key": None}, False),
        ({}, False),
        ("WebhookReturnWorkflowStep", False),
        (None, False),
    ],
)
def test_is_step_error(entry: Any, expected: bool) -> None:
    assert is_step_error(entry) is expected


def test_without_step_errors_keeps_other_keys_and_order() -> None:
    errors = [
        {"key": "A"},
        {"key": STEP_NAME, "message": "old"},
        {"Key": "B"},
        {"Key": STEP_NAME},
        "junk",
    ]
    assert without_step_errors(errors) == [{"key": "A"}, {"Key": "B"}, "junk"]


def test_error_entry_shape() -> None:
    assert error_entry("boom", "HTTP 500 after 4 attempts", "ref-1", "Error", "2024-05-01Z") == {
        "key": "WebhookReturnWorkflowStep",
        "message": "boom",
        "details": "HTTP 500 after 4 attempts",
        "referenceId": "ref-1",
        "severity": "Error",
        "status": "New",
        "occurred": "2024-05-01Z",
    }
