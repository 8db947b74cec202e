"""Step scope and connector resolution (streams/core/resolution.py, SPEC §3)."""

from __future__ import annotations

from typing import Any

import pytest

from models.order import OrderView
from models.settings import Connector, WorkflowStep
from streams.core.resolution import Endpoint, resolve_connector, resolve_endpoint, step_in_scope


def _step(**fields: Any) -> WorkflowStep:
    return WorkflowStep.model_validate(fields)


def _inline(url: str = "https://inline.example/hook", **fields: Any) -> WorkflowStep:
    return _step(properties=[{"key": "Host", "value": url}], **fields)


def _conn(cid: str | None = None, **fields: Any) -> Connector:
    fields.setdefault("host", f"https://{cid or 'default'}.example/hook")
    return Connector.model_validate({"connectorId": cid, **fields})


def _order(market: str | None = "NOR", store: str | None = None, tags: list[str] | None = None):
    return OrderView.of({"id": "O-1", "marketId": market, "storeId": store, "tags": tags or []})


# step scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "market", "expected"),
    [
        ({}, "NOR", True),
        ({}, None, True),
        ({"enabledForMarkets": ["NOR"]}, "NOR", True),
        ({"enabledForMarkets": ["NOR", "SWE"]}, "SWE", True),
        ({"enabledForMarkets": ["NOR"]}, "SWE", False),
        ({"enabledForMarkets": ["NOR"]}, None, False),
        ({"disabledForMarkets": ["NOR"]}, "NOR", False),
        ({"disabledForMarkets": ["NOR"]}, "SWE", True),
        ({"disabledForMarkets": ["NOR"]}, None, True),
        ({"enabledForMarkets": ["NOR"], "disabledForMarkets": ["NOR"]}, "NOR", False),
        ({"enabledForMarkets": ["nor"]}, "NOR", True),
        ({"enabledForMarkets": ["NOR"]}, "nor", True),
        ({"disabledForMarkets": ["Nor"]}, "nOR", False),
    ],
)
def test_step_scope_by_market(scope: dict, market: str | None, expected: bool) -> None:
    assert step_in_scope(_step(**scope), _order(market=market)) is expected


@pytest.mark.parametrize(
    ("scope", "store", "expected"),
    [
        ({}, "S1", True),
        ({"enabledForStores": ["S1"]}, "S1", True),
        ({"enabledForStores": ["S1"]}, "S2", False),
        ({"enabledForStores": ["S1"]}, None, False),
        ({"disabledForStores": ["S1"]}, "S1", False),
        ({"disabledForStores": ["S1"]}, "S2", True),
        ({"enabledForStores": ["s1"]}, "S1", True),
        ({"disabledForStores": ["s1"]}, "S1", False),
    ],
)
def test_step_scope_by_store(scope: dict, store: str | None, expected: bool) -> None:
    assert step_in_scope(_step(**scope), _order(store=store)) is expected


@pytest.mark.parametrize(
    ("scope", "tags", "expected"),
    [
        ({}, [], True),
        ({}, ["vip"], True),
        ({"enabledForTags": ["vip"]}, ["vip"], True),
        ({"enabledForTags": ["vip"]}, ["b2b", "vip"], True),
        ({"enabledForTags": ["vip", "b2b"]}, ["b2b"], True),
        ({"enabledForTags": ["vip"]}, ["b2b"], False),
        ({"enabledForTags": ["vip"]}, [], False),
        ({"disabledForTags": ["vip"]}, ["vip"], False),
        ({"disabledForTags": ["vip"]}, ["b2b", "vip"], False),
        ({"disabledForTags": ["vip"]}, ["b2b"], True),
        ({"disabledForTags": ["vip"]}, [], True),
        ({"enabledForTags": ["b2b"], "disabledForTags": ["vip"]}, ["b2b", "vip"], False),
        ({"enabledForTags": ["VIP"]}, ["vip"], True),
        ({"disabledForTags": ["vip"]}, ["VIP"], False),
    ],
)
def test_step_scope_by_tags(scope: dict, tags: list[str], expected: bool) -> None:
    assert step_in_scope(_step(**scope), _order(tags=tags)) is expected


def test_step_scope_needs_every_dimension() -> None:
    step = _step(enabledForMarkets=["NOR"], enabledForStores=["S1"], enabledForTags=["vip"])
    assert step_in_scope(step, _order("NOR", "S1", ["vip"]))
    assert not step_in_scope(step, _order("SWE", "S1", ["vip"]))
    assert not step_in_scope(step, _order("NOR", "S2", ["vip"]))
    assert not step_in_scope(step, _order("NOR", "S1", []))


def test_step_scope_ignores_connector_rules() -> None:
    """The step's scope is the step's own; an inactive step is handled by the workflow."""
    assert step_in_scope(_step(active=False), _order())


# connector resolution -------------------------------------------------------------------------


def test_explicit_connector_id() -> None:
    connectors = [_conn("a"), _conn("b"), _conn("c")]
    assert resolve_connector(_step(connectorId="b"), connectors, _order()) is connectors[1]


def test_explicit_connector_id_beats_a_market_explicit_one() -> None:
    connectors = [_conn("market", enabledForMarkets=["NOR"]), _conn("wanted")]
    assert resolve_connector(_step(connectorId="wanted"), connectors, _order()) is connectors[1]


def test_connector_id_is_matched_exactly() -> None:
    """Documented choice: connectorId compared exactly (settings allow 'a' and 'A' side by side)."""
    assert resolve_connector(_step(connectorId="ERP"), [_conn("erp")], _order()) is None


def test_step_connector_id_that_matches_nothing_is_none() -> None:
    """No fallback to another connector: calling another system would be worse."""
    connectors = [_conn("a"), _conn(None)]
    assert resolve_connector(_step(connectorId="missing"), connectors, _order()) is None


def test_step_connector_id_whose_connector_excludes_the_market_is_none() -> None:
    connectors = [_conn("a", disabledForMarkets=["NOR"]), _conn("b")]
    assert resolve_connector(_step(connectorId="a"), connectors, _order("NOR")) is None


@pytest.mark.parametrize("order_first", [True, False])
def test_market_explicit_connector_beats_all_markets_one(order_first: bool) -> None:
    explicit = _conn("explicit", enabledForMarkets=["NOR"])
    general = _conn("general")
    connectors = [explicit, general] if order_first else [general, explicit]
    assert resolve_connector(_step(), connectors, _order("NOR")) is explicit


def test_market_explicit_connector_for_another_market_falls_back_to_all_markets() -> None:
    connectors = [_conn("swe", enabledForMarkets=["SWE"]), _conn("general")]
    assert resolve_connector(_step(), connectors, _order("NOR")) is connectors[1]


def test_name_only_match() -> None:
    connector = Connector.model_validate({"host": "https://h.example"})
    assert resolve_connector(_step(), [connector], _order()) is connector


def test_step_without_connector_id_takes_a_connector_that_has_one() -> None:
    """'If you only have one webhook connector, you can omit ConnectorId on both' - or one."""
    connector = _conn("erp")
    assert resolve_connector(_step(), [connector], _order()) is connector


@pytest.mark.parametrize("name", ["Webhook", "webhook", "WEBHOOK"])
def test_connector_name_is_case_insensitive(name: str) -> None:
    connector = _conn("a", name=name)
    assert resolve_connector(_step(), [connector], _order()) is connector


def test_connectors_with_another_name_are_not_candidates() -> None:
    connectors = [_conn("a", name="Klarna"), _conn("b", name="Webhook")]
    assert resolve_connector(_step(), connectors, _order()) is connectors[1]
    assert resolve_connector(_step(connectorId="a"), connectors, _order()) is None


def test_step_connector_name_selects_connectors() -> None:
    connectors = [_conn("a", name="Webhook"), _conn("b", name="Other")]
    assert resolve_connector(_step(connector="Other"), connectors, _order()) is connectors[1]


@pytest.mark.parametrize(
    "connector_fields",
    [
        {"disabledForMarkets": ["NOR"]},
        {"disabledForMarkets": ["nor"]},
        {"enabledForMarkets": ["NOR"], "disabledForMarkets": ["NOR"]},
        {"enabledForMarkets": ["SWE"]},
        {"enabledForMarkets": ["SWE", "DEN"]},
    ],
)
def test_connector_markets_exclude(connector_fields: dict) -> None:
    assert resolve_connector(_step(), [_conn("a", **connector_fields)], _order("NOR")) is None


def test_disabled_for_markets_always_excludes_even_with_connector_id() -> None:
    connectors = [_conn("a", enabledForMarkets=["NOR"], disabledForMarkets=["NOR"])]
    assert resolve_connector(_step(connectorId="a"), connectors, _order("NOR")) is None


def test_connector_with_enabled_markets_excludes_order_without_market() -> None:
    assert resolve_connector(_step(), [_conn("a", enabledForMarkets=["NOR"])], _order(None)) is None


def test_all_markets_connector_admits_order_without_market() -> None:
    connector = _conn("a", disabledForMarkets=["NOR"])
    assert resolve_connector(_step(), [connector], _order(None)) is connector


def test_ties_go_to_the_first_listed() -> None:
    connectors = [_conn("a"), _conn("b")]
    assert resolve_connector(_step(), connectors, _order()) is connectors[0]
    explicit = [_conn("x", enabledForMarkets=["NOR"]), _conn("y", enabledForMarkets=["nor"])]
    assert resolve_connector(_step(), explicit, _order()) is explicit[0]


def test_market_match_is_case_insensitive() -> None:
    explicit = _conn("x", enabledForMarkets=["nor"])
    assert resolve_connector(_step(), [_conn("g"), explicit], _order("NOR")) is explicit


def test_no_connectors() -> None:
    assert resolve_connector(_step(), [], _order()) is None


def test_step_scope_rules_do_not_affect_connectors() -> None:
    connector = _conn("a")
    step = _step(enabledForMarkets=["SWE"])
    assert resolve_connector(step, [connector], _order("NOR")) is connector


# endpoint -------------------------------------------------------------------------------------


def test_endpoint_from_connector_host() -> None:
    connector = _conn("a")
    assert resolve_endpoint(_step(), [connector], _order()) == Endpoint(
        url="https://a.example/hook", connector=connector
    )


def test_inline_host_wins_but_connector_still_lends_its_config() -> None:
    connector = _conn("a", bearerToken="tok", timeout=5000)
    endpoint = resolve_endpoint(_inline(), [connector], _order())
    assert endpoint is not None
    assert endpoint.url == "https://inline.example/hook"
    assert endpoint.connector is connector


def test_inline_host_with_no_connector() -> None:
    endpoint = resolve_endpoint(_inline(), [], _order())
    assert endpoint == Endpoint(url="https://inline.example/hook", connector=None)


def test_inline_host_when_the_step_connector_id_matches_nothing() -> None:
    endpoint = resolve_endpoint(_inline(connectorId="nope"), [_conn("a")], _order())
    assert endpoint == Endpoint(url="https://inline.example/hook", connector=None)


def test_inline_host_when_the_connector_excludes_the_market() -> None:
    connectors = [_conn("a", disabledForMarkets=["NOR"])]
    endpoint = resolve_endpoint(_inline(), connectors, _order("NOR"))
    assert endpoint == Endpoint(url="https://inline.example/hook", connector=None)


def test_inline_host_works_with_a_connector_that_has_no_host() -> None:
    connector = Connector.model_validate({"connectorId": "a", "bearerToken": "tok"})
    endpoint = resolve_endpoint(_inline(connectorId="a"), [connector], _order())
    assert endpoint is not None and endpoint.connector is connector


def test_no_host_at_all_is_none() -> None:
    connector = Connector.model_validate({"connectorId": "a", "bearerToken": "tok"})
    assert resolve_endpoint(_step(), [connector], _order()) is None


def test_no_connector_and_no_inline_host_is_none() -> None:
    assert resolve_endpoint(_step(), [], _order()) is None


def test_connector_not_found_without_inline_host_is_none() -> None:
    assert resolve_endpoint(_step(connectorId="missing"), [_conn("a")], _order()) is None


def test_a_request_header_named_host_is_not_an_inline_host() -> None:
    step = _step(properties=[{"key": "Host", "value": "x.example", "keyGroup": "RequestHeaders"}])
    assert resolve_endpoint(step, [], _order()) is None
