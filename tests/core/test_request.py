"""Building the webhook request (streams/core/request.py, SPEC §4)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from models.settings import Connector, StepProperty, WorkflowStep
from streams.core.request import (
    DEFAULT_USER_AGENT,
    RESERVED_HEADERS,
    InvalidRequest,
    WebhookRequest,
    build_request,
    request_body,
)
from streams.core.resolution import Endpoint

URL = "https://erp.example.com/returns"
ORDER = {"id": "O-1", "marketId": "NOR", "customField": {"kept": [1, 2]}, "Lines": [{"sku": "x"}]}


def _step(headers: dict[str, str] | None = None, **fields: Any) -> WorkflowStep:
    props = [
        {"key": k, "value": v, "keyGroup": "RequestHeaders"} for k, v in (headers or {}).items()
    ]
    props += fields.pop("properties", [])
    return WorkflowStep.model_validate({"properties": props, **fields})


def _connector(**fields: Any) -> Connector:
    return Connector.model_validate(fields)


def _build(
    step: WorkflowStep | None = None,
    connector: Connector | None = None,
    *,
    url: str = URL,
    order: dict | None = None,
    return_id: str | None = "R-1",
    delivery: str = "delivery-1",
    env: dict[str, str] | None = None,
    max_attempts: int = 4,
    **kwargs: Any,
) -> WebhookRequest:
    return build_request(
        step or _step(),
        Endpoint(url=url, connector=connector),
        ORDER if order is None else order,
        return_id,
        delivery,
        secrets={(kwargs.get("tenant_id", TENANT), k): v for k, v in (env or {}).items()},
        max_attempts=max_attempts,
        **{"tenant_id": TENANT, **kwargs},
    )


TENANT = "acme"


def _header(request: WebhookRequest, name: str) -> str | None:
    matches = [v for k, v in request.headers.items() if k.lower() == name.lower()]
    assert len(matches) <= 1, f"{name} set twice: {request.headers}"
    return matches[0] if matches else None


# protocol headers -----------------------------------------------------------------------------


def test_default_headers() -> None:
    request = _build()
    assert request.headers == {
        "User-Agent": DEFAULT_USER_AGENT,
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Max-Delivery-Count": "4",
        "Idempotency-Key": "delivery-1",
    }
    assert DEFAULT_USER_AGENT.startswith("OmniumOms/")


def test_user_agent_is_configurable() -> None:
    assert _header(_build(user_agent="OmniumOms/9.9"), "User-Agent") == "OmniumOms/9.9"


@pytest.mark.parametrize("attempts", [1, 4, 10])
def test_max_delivery_count(attempts: int) -> None:
    request = _build(max_attempts=attempts)
    assert _header(request, "X-Max-Delivery-Count") == str(attempts)
    assert request.max_attempts == attempts


def test_idempotency_key_is_the_delivery_id() -> None:
    request = _build(delivery="abc-123")
    assert _header(request, "Idempotency-Key") == "abc-123"
    assert request.delivery_id == "abc-123"


def test_delivery_count_is_left_to_the_client() -> None:
    assert _header(_build(), "X-Delivery-Count") is None


def test_the_request_is_a_post_target() -> None:
    request = _build()
    assert request.url == URL


# auth -----------------------------------------------------------------------------------------


def test_bearer_token() -> None:
    request = _build(connector=_connector(bearerToken="tok-1"))
    assert _header(request, "Authorization") == "Bearer tok-1"


@pytest.mark.parametrize(
    ("username", "password", "pair"),
    [("user", "pw", "user:pw"), ("user", None, "user:"), ("ü", "p:w", "ü:p:w")],
)
def test_basic_auth(username: str, password: str | None, pair: str) -> None:
    request = _build(connector=_connector(username=username, password=password))
    expected = "Basic " + base64.b64encode(pair.encode()).decode()
    assert _header(request, "Authorization") == expected


def test_bearer_wins_over_basic_when_both_are_set() -> None:
    request = _build(connector=_connector(bearerToken="tok", username="u", password="p"))
    assert _header(request, "Authorization") == "Bearer tok"


def test_no_auth_without_connector_credentials() -> None:
    assert _header(_build(connector=_connector()), "Authorization") is None
    assert _header(_build(connector=_connector(password="orphan")), "Authorization") is None


def test_inline_mode_auth_via_request_headers() -> None:
    request = _build(_step({"Authorization": "Bearer inline"}))
    assert _header(request, "Authorization") == "Bearer inline"


# custom headers -------------------------------------------------------------------------------


def test_connector_custom_headers() -> None:
    connector = _connector(
        customHeaders=[{"key": "X-Api-Key", "value": "abc"}, {"key": "X-Empty", "value": None}]
    )
    request = _build(connector=connector)
    assert _header(request, "X-Api-Key") == "abc"
    assert _header(request, "X-Empty") == ""


def test_step_request_headers() -> None:
    request = _build(_step({"X-Source": "oms"}, properties=[{"key": "ErrorStatus", "value": "F"}]))
    assert _header(request, "X-Source") == "oms"
    assert _header(request, "ErrorStatus") is None


@pytest.mark.parametrize("step_name", ["X-Api-Key", "x-api-key", "X-API-KEY"])
def test_step_header_wins_on_a_clash(step_name: str) -> None:
    connector = _connector(customHeaders=[{"key": "X-Api-Key", "value": "connector"}])
    request = _build(_step({step_name: "step"}), connector)
    assert _header(request, "x-api-key") == "step"
    assert step_name in request.headers


def test_step_header_overrides_connector_authorization() -> None:
    connector = _connector(bearerToken="connector-token")
    request = _build(_step({"authorization": "Bearer step"}), connector)
    assert _header(request, "Authorization") == "Bearer step"


def test_connector_header_overrides_connector_authorization() -> None:
    connector = _connector(
        bearerToken="tok", customHeaders=[{"key": "Authorization", "value": "ApiKey k"}]
    )
    assert _header(_build(connector=connector), "Authorization") == "ApiKey k"


@pytest.mark.parametrize(
    "name",
    [
        "X-Delivery-Count",
        "x-max-delivery-count",
        "Idempotency-Key",
        "IDEMPOTENCY-KEY",
        "Content-Type",
        "content-length",
        "Host",
        "Transfer-Encoding",
    ],
)
def test_reserved_headers_cannot_be_overridden(name: str) -> None:
    assert name.lower() in RESERVED_HEADERS
    connector = _connector(customHeaders=[{"key": name, "value": "evil-connector"}])
    request = _build(_step({name: "evil-step"}), connector, delivery="d-1", max_attempts=4)
    assert "evil-connector" not in request.headers.values()
    assert "evil-step" not in request.headers.values()
    assert _header(request, "Idempotency-Key") == "d-1"
    assert _header(request, "X-Max-Delivery-Count") == "4"
    assert _header(request, "Content-Type") == "application/json"


@pytest.mark.parametrize(("name", "value"), [("User-Agent", "Custom/1"), ("Accept", "*/*")])
def test_non_reserved_defaults_may_be_overridden(name: str, value: str) -> None:
    assert _header(_build(_step({name.lower(): value})), name) == value


# secret references (the env dicts here are the tenant's own secrets) ----------------------------

ENV = {
    "ERP_TOKEN": "secret-tok",
    "ERP_USER": "svc",
    "ERP_PASS": "pw",
    "API_KEY": "k-1",
    "ERP_HOST": "erp.example.com",
    "SOURCE": "oms",
}


def test_env_in_bearer_token() -> None:
    request = _build(connector=_connector(bearerToken="${ERP_TOKEN}"), env=ENV)
    assert _header(request, "Authorization") == "Bearer secret-tok"


def test_env_in_basic_auth() -> None:
    request = _build(connector=_connector(username="${ERP_USER}", password="${ERP_PASS}"), env=ENV)
    assert _header(request, "Authorization") == "Basic " + base64.b64encode(b"svc:pw").decode()


def test_env_in_headers() -> None:
    connector = _connector(customHeaders=[{"key": "X-Api-Key", "value": "key=${API_KEY}"}])
    request = _build(_step({"X-Source": "${SOURCE}"}), connector, env=ENV)
    assert _header(request, "X-Api-Key") == "key=k-1"
    assert _header(request, "X-Source") == "oms"


def test_env_in_url() -> None:
    request = _build(url="https://${ERP_HOST}/returns", env=ENV)
    assert request.url == "https://erp.example.com/returns"


@pytest.mark.parametrize(
    ("kwargs", "var"),
    [
        ({"connector": _connector(bearerToken="${NO_TOKEN}")}, "NO_TOKEN"),
        ({"connector": _connector(username="${NO_USER}")}, "NO_USER"),
        ({"connector": _connector(username="u", password="${NO_PASS}")}, "NO_PASS"),
        ({"connector": _connector(customHeaders=[{"key": "X-A", "value": "${NO_HDR}"}])}, "NO_HDR"),
        ({"step": _step({"X-B": "${NO_STEP_HDR}"})}, "NO_STEP_HDR"),
        ({"url": "https://${NO_HOST}/x"}, "NO_HOST"),
    ],
)
def test_missing_env_var_is_an_invalid_request_naming_it(kwargs: dict, var: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _build(env=ENV, **kwargs)
    assert str(info.value) == f"secret {var} is not available to tenant 'acme'"
    assert "secret-tok" not in str(info.value)


def test_another_tenants_secret_is_not_reached() -> None:
    """The same name in another tenant's namespace is not this tenant's secret."""
    connector = _connector(bearerToken="${ERP_TOKEN}")
    with pytest.raises(InvalidRequest, match="not available to tenant 'beta'"):
        build_request(
            _step(),
            Endpoint(url=URL, connector=connector),
            ORDER,
            None,
            "d",
            secrets={("acme", "ERP_TOKEN"): "acme-token"},
            max_attempts=4,
            tenant_id="beta",
        )


@pytest.mark.parametrize(
    "inner", ["RETURNHOOK_SECRET_BETA__ERP_TOKEN", "RETURNHOOK_BROKER", "beta:ERP_TOKEN"]
)
def test_a_reference_out_of_the_namespace_is_never_expanded(inner: str) -> None:
    """Written past ``settings publish``: an error naming the reference, no value."""
    step = WorkflowStep.model_construct(
        properties=[
            StepProperty.model_construct(
                key="X-Leak", value="${" + inner + "}", key_group="RequestHeaders", sensitive=False
            )
        ]
    )
    with pytest.raises(InvalidRequest, match="is not a secret reference") as info:
        _build(step, env={inner: "planted", "ERP_TOKEN": "planted"})
    assert "planted" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "http://example.invalid:99999/x",
        "http://[zz]/",
        "http://１２７.０.０.１:8080/",
        "http://127。0。0。1/",
        "http://①②⑦.0.0.1/",
    ],
)
def test_a_url_the_client_would_misread_is_invalid_without_showing_the_secret(value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _build(url="${HOOK_URL}", env={"HOOK_URL": value})
    assert "webhook URL" in str(info.value)
    assert "${HOOK_URL}" in str(info.value)
    assert value not in str(info.value)


@pytest.mark.parametrize("value", ["ftp://x.example", "not a url", "x.example/path", "https://"])
def test_url_that_is_not_http_after_expansion_is_invalid(value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _build(url="${HOOK_URL}", env={"HOOK_URL": value})
    assert "webhook URL" in str(info.value)


def test_invalid_request_is_a_value_error() -> None:
    assert issubclass(InvalidRequest, ValueError)


# timeout --------------------------------------------------------------------------------------


def test_timeout_defaults_to_30_seconds() -> None:
    assert _build().timeout_s == 30.0
    assert _build(connector=_connector()).timeout_s == 30.0


@pytest.mark.parametrize(("value", "seconds"), [("00:00:05", 5.0), (2500, 2.5), ("00:01:00", 60)])
def test_timeout_from_the_connector(value: object, seconds: float) -> None:
    assert _build(connector=_connector(timeout=value)).timeout_s == seconds


def test_inline_host_uses_the_connectors_auth_timeout_and_headers() -> None:
    connector = _connector(
        host="https://connector.example",
        bearerToken="tok",
        timeout=1000,
        customHeaders=[{"key": "X-C", "value": "c"}],
    )
    step = _step(properties=[{"key": "Host", "value": "https://inline.example"}])
    request = _build(step, connector, url="https://inline.example")
    assert request.url == "https://inline.example"
    assert _header(request, "Authorization") == "Bearer tok"
    assert _header(request, "X-C") == "c"
    assert request.timeout_s == 1.0


# body -----------------------------------------------------------------------------------------


def test_body_shape() -> None:
    step = _step(
        {"X-Source": "oms"},
        stopOnError=True,
        connectorId="erp",
        properties=[{"key": "ErrorStatus", "value": "ReturnFailed"}],
    )
    body = orjson.loads(_build(step, return_id="R-9").body)
    assert list(body) == ["Value", "WorkflowStep", "ReturnOrderFormId"]
    assert body["Value"] == ORDER
    assert body["ReturnOrderFormId"] == "R-9"
    workflow_step = body["WorkflowStep"]
    assert workflow_step["name"] == "WebhookReturnWorkflowStep"
    assert workflow_step["connector"] == "Webhook"
    assert workflow_step["connectorId"] == "erp"
    assert workflow_step["stopOnError"] is True
    assert workflow_step["active"] is True
    assert {"key": "ErrorStatus", "value": "ReturnFailed"} in workflow_step["properties"]
    assert {"key": "X-Source", "value": "oms", "keyGroup": "RequestHeaders"} in workflow_step[
        "properties"
    ]


def test_body_keeps_unknown_order_fields_and_their_casing() -> None:
    order = {
        "Id": "O-1",
        "MarketId": "NOR",
        "customerNote": "ünïcode ✓",
        "nested": {"A": [None]},
        "Amount": 12.5,
        "flag": False,
    }
    assert orjson.loads(_build(order=order).body)["Value"] == order


def test_body_with_no_return_order_form_id() -> None:
    assert orjson.loads(_build(return_id=None).body)["ReturnOrderFormId"] is None


def test_body_does_not_expand_env_in_the_step() -> None:
    """The step travels 'as configured': a secret referenced by a header stays a reference."""
    body = orjson.loads(_build(_step({"X-Key": "${API_KEY}"}), env=ENV).body)
    assert "k-1" not in orjson.dumps(body).decode()


def test_body_never_contains_connector_secrets() -> None:
    request = _build(
        connector=_connector(bearerToken="tok-secret", password="pw-secret", username="u")
    )
    assert b"tok-secret" not in request.body and b"pw-secret" not in request.body


def test_request_body_function_directly() -> None:
    body = orjson.loads(request_body({"id": "O"}, WorkflowStep(), "R"))
    assert body["Value"] == {"id": "O"} and body["ReturnOrderFormId"] == "R"
    assert body["WorkflowStep"]["name"] == "WebhookReturnWorkflowStep"


# WebhookRequest -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://erp.example.com/returns?x=1", "https://erp.example.com:443"),
        ("http://erp.example.com/returns", "http://erp.example.com:80"),
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080"),
        ("HTTPS://ERP.Example.com/x", "https://erp.example.com:443"),
        ("https://user:pw@erp.example.com/x", "https://erp.example.com:443"),
    ],
)
def test_origin(url: str, origin: str) -> None:
    assert _build(url=url).origin == origin


def test_request_is_frozen() -> None:
    request = _build()
    with pytest.raises(ValidationError):
        request.url = "https://other.example"  # type: ignore[misc]


def test_a_referenced_secret_is_read_again_for_every_request() -> None:
    """A rotated secret file takes effect on the next call: nothing that used it is reused."""
    step, connector = _step(), _connector(bearerToken="${ERP_TOKEN}")
    endpoint = Endpoint(url=URL, connector=connector)
    secrets = {(TENANT, "ERP_TOKEN"): "old-token"}

    def build(delivery: str) -> WebhookRequest:
        return build_request(
            step, endpoint, ORDER, None, delivery, secrets=secrets, max_attempts=4, tenant_id=TENANT
        )

    assert _header(build("d-1"), "Authorization") == "Bearer old-token"
    secrets[(TENANT, "ERP_TOKEN")] = "new-token"
    assert _header(build("d-2"), "Authorization") == "Bearer new-token"


def test_reused_parts_keep_each_request_its_own_key_and_each_tenant_its_own_headers() -> None:
    step = _step({"X-Source": "oms"})
    connector = _connector(bearerToken="plain-token", customHeaders=[{"key": "X-Co", "value": "1"}])
    first = _build(step, connector, delivery="d-1", tenant_id="acme")
    second = _build(step, connector, delivery="d-2", tenant_id="beta")
    assert _header(first, "Idempotency-Key") == "d-1"
    assert _header(second, "Idempotency-Key") == "d-2"
    assert first.headers.keys() == second.headers.keys()
    assert first.headers is not second.headers
    assert list(first.headers)[:5] == [
        "User-Agent",
        "Accept",
        "Content-Type",
        "X-Max-Delivery-Count",
        "Idempotency-Key",
    ]
