"""Case-insensitive field names (models/casing.py): any casing in, camelCase out."""

from __future__ import annotations

import pytest
from pydantic import ConfigDict

from models.casing import CaseInsensitiveModel, get_ci, key_ci


class Sample(CaseInsensitiveModel):
    tenant_id: str
    order_patch: dict | None = None
    value: int = 0


@pytest.mark.parametrize(
    "key",
    ["tenantId", "TenantId", "tenantid", "TENANTID", "tEnAnTiD", "tenant_id", "TENANT_ID"],
)
def test_any_casing_of_a_field_name_is_read(key: str) -> None:
    assert Sample.model_validate({key: "acme"}).tenant_id == "acme"


@pytest.mark.parametrize("key", ["OrderPatch", "orderPatch", "orderpatch", "ORDERPATCH"])
def test_omnium_style_pascal_and_camel_names(key: str) -> None:
    assert Sample.model_validate({"tenantId": "t", key: {"a": 1}}).order_patch == {"a": 1}


@pytest.mark.parametrize("key", ["Value", "value", "VALUE"])
def test_value_in_any_casing(key: str) -> None:
    assert Sample.model_validate({"tenantId": "t", key: 3}).value == 3


def test_output_is_camel_case() -> None:
    model = Sample.model_validate({"TENANTID": "t", "OrderPatch": {}})
    assert model.model_dump(by_alias=True) == {"tenantId": "t", "orderPatch": {}, "value": 0}


@pytest.mark.parametrize(
    "data",
    [
        {"TenantId": "wrong", "tenantId": "right"},
        {"tenantId": "right", "TenantId": "wrong"},
        {"tenantid": "wrong", "tenantId": "right", "TENANTID": "wrong"},
    ],
)
def test_exact_case_key_wins_over_differently_cased_duplicate(data: dict) -> None:
    assert Sample.model_validate(data).tenant_id == "right"


def test_two_differently_cased_duplicates_first_one_wins() -> None:
    assert Sample.model_validate({"TenantId": "first", "TENANTID": "second"}).tenant_id == "first"


def test_unknown_keys_pass_through_untouched() -> None:
    class Open(CaseInsensitiveModel):
        model_config = ConfigDict(extra="allow")
        key: str

    model = Open.model_validate({"Key": "k", "SomethingElse": 1})
    assert model.key == "k"
    assert model.model_extra == {"SomethingElse": 1}


def test_non_dict_input_is_left_to_pydantic() -> None:
    with pytest.raises(ValueError):
        Sample.model_validate(["not", "a", "dict"])


def test_each_subclass_has_its_own_name_table() -> None:
    class Other(CaseInsensitiveModel):
        market_id: str

    assert Other.model_validate({"MARKETID": "NOR"}).market_id == "NOR"
    assert Sample.model_validate({"TENANTID": "t"}).tenant_id == "t"
    assert "marketid" not in Sample._lowered_names
    assert "tenantid" not in Other._lowered_names


# get_ci / key_ci ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["status", "Status", "STATUS"])
def test_get_ci_finds_any_casing(name: str) -> None:
    assert get_ci({"Status": "Returned"}, name) == "Returned"


def test_get_ci_prefers_exact_match() -> None:
    assert get_ci({"STATUS": "a", "status": "b"}, "status") == "b"


def test_get_ci_default_when_absent() -> None:
    assert get_ci({"x": 1}, "status") is None
    assert get_ci({"x": 1}, "status", "dflt") == "dflt"


def test_get_ci_ignores_non_string_keys() -> None:
    assert get_ci({1: "x", "One": "y"}, "one") == "y"


def test_get_ci_returns_falsy_values_rather_than_the_default() -> None:
    assert get_ci({"Tags": []}, "tags", "dflt") == []
    assert get_ci({"Tags": None}, "tags", "dflt") is None


@pytest.mark.parametrize(
    ("mapping", "name", "expected"),
    [
        ({"Tags": []}, "tags", "Tags"),
        ({"tags": []}, "tags", "tags"),
        ({"TAGS": [], "tags": []}, "tags", "tags"),
        ({"other": 1}, "tags", "tags"),
        ({}, "orderType", "orderType"),
    ],
)
def test_key_ci(mapping: dict, name: str, expected: str) -> None:
    assert key_ci(mapping, name) == expected
