"""Tenant settings (models/settings.py): parsing, validation, secret references."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from pydantic import ValidationError

from models.settings import (
    CONNECTOR_NAME,
    DEFAULT_TIMEOUT,
    RUN_TIME,
    STEP_NAME,
    Connector,
    Header,
    StepProperty,
    TenantSettings,
    WorkflowStep,
    check_url,
    is_request_header,
)

SPEC_YAML = """
tenantId: acme
connectors:
  - name: Webhook
    connectorId: erp-returns
    host: https://erp.example.com/api/returns
    bearerToken: ${ERP_TOKEN}
    timeout: "00:00:30"
    customHeaders: [{key: X-Api-Key, value: abc}]
    enabledForMarkets: [NOR]
    disabledForMarkets: []
returnWorkflow:
  - name: WebhookReturnWorkflowStep
    active: true
    connector: Webhook
    connectorId: erp-returns
    stopOnError: true
    runAfterOrderIsSaved: false
    translateKey: WorkflowStep_WebhookReturnWorkflowStep
    enabledForMarkets: []
    disabledForMarkets: []
    properties:
      - {key: Host, value: https://erp.example.com/returns}
      - {key: ErrorStatus, value: ReturnFailed}
      - {key: X-Source, value: oms, keyGroup: RequestHeaders}
"""


def _loc(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


def test_the_spec_example_parses() -> None:
    settings = TenantSettings.model_validate(yaml.safe_load(SPEC_YAML))
    assert settings.tenant_id == "acme"
    (connector,) = settings.connectors
    assert connector.name == "Webhook"
    assert connector.connector_id == "erp-returns"
    assert connector.host == "https://erp.example.com/api/returns"
    assert connector.bearer_token is not None
    assert connector.bearer_token.get_secret_value() == "${ERP_TOKEN}"
    assert connector.timeout == timedelta(seconds=30)
    assert [(h.key, h.value) for h in connector.custom_headers] == [("X-Api-Key", "abc")]
    assert connector.enabled_for_markets == ["NOR"]
    (step,) = settings.return_workflow
    assert step.active and step.stop_on_error and not step.run_after_order_is_saved
    assert step.connector == "Webhook" and step.connector_id == "erp-returns"
    assert step.translate_key == "WorkflowStep_WebhookReturnWorkflowStep"
    assert step.host == "https://erp.example.com/returns"
    assert step.error_status == "ReturnFailed"
    assert [(p.key, p.value) for p in step.request_headers] == [("X-Source", "oms")]
    assert step.is_webhook_return_step


def test_defaults() -> None:
    settings = TenantSettings.model_validate({"tenantId": "t", "returnWorkflow": [{}]})
    assert settings.connectors == []
    step = settings.return_workflow[0]
    assert step.name == STEP_NAME and step.connector == CONNECTOR_NAME
    assert step.active is True
    assert step.stop_on_error is False and step.run_after_order_is_saved is False
    assert step.host is None and step.error_status is None and step.request_headers == []
    connector = Connector()
    assert connector.name == CONNECTOR_NAME
    assert connector.timeout == DEFAULT_TIMEOUT == timedelta(seconds=30)
    assert connector.bearer_token is None and connector.username is None


def test_settings_in_pascal_case_as_omnium_exports_them() -> None:
    data = {
        "TenantId": "acme",
        "Connectors": [
            {
                "Name": "Webhook",
                "ConnectorId": "c1",
                "Host": "https://h.example",
                "Username": "u",
                "Password": "p",
                "Timeout": 5000,
                "CustomHeaders": [{"Key": "X-A", "Value": "1"}],
                "EnabledForMarkets": ["NOR"],
                "DisabledForMarkets": ["SWE"],
            }
        ],
        "ReturnWorkflow": [
            {
                "Name": "WebhookReturnWorkflowStep",
                "Active": False,
                "Connector": "Webhook",
                "ConnectorId": "c1",
                "StopOnError": True,
                "RunAfterOrderIsSaved": True,
                "TranslateKey": "k",
                "EnabledForStores": ["S1"],
                "DisabledForTags": ["t"],
                "Properties": [
                    {"Key": "HOST", "Value": "https://inline.example"},
                    {"Key": "X-H", "Value": "v", "KeyGroup": "requestheaders"},
                ],
            }
        ],
    }
    settings = TenantSettings.model_validate(data)
    connector = settings.connectors[0]
    assert connector.connector_id == "c1"
    assert connector.username == "u"
    assert connector.password is not None and connector.password.get_secret_value() == "p"
    assert connector.timeout == timedelta(seconds=5)
    assert connector.custom_headers[0].key == "X-A"
    assert connector.disabled_for_markets == ["SWE"]
    step = settings.return_workflow[0]
    assert step.active is False
    assert step.stop_on_error and step.run_after_order_is_saved
    assert step.enabled_for_stores == ["S1"] and step.disabled_for_tags == ["t"]
    assert step.host == "https://inline.example"
    assert [p.key for p in step.request_headers] == ["X-H"]


def test_unknown_top_level_keys_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        TenantSettings.model_validate({"tenantId": "t", "returnWorkflows": []})
    assert _loc(info.value) == ["returnWorkflows"]


@pytest.mark.parametrize("tenant", [None, ""])
def test_tenant_id_required(tenant: str | None) -> None:
    data = {} if tenant is None else {"tenantId": tenant}
    with pytest.raises(ValidationError):
        TenantSettings.model_validate(data)


# step properties ------------------------------------------------------------------------------


def test_property_lookup_is_case_insensitive_and_ignores_request_headers() -> None:
    step = WorkflowStep.model_validate(
        {
            "properties": [
                {"key": "ErrorStatus", "value": "Hdr", "keyGroup": "RequestHeaders"},
                {"key": "errorstatus", "value": "ReturnFailed"},
                {"key": "host", "value": "https://x.example/a"},
            ]
        }
    )
    assert step.property_value("ERRORSTATUS") == "ReturnFailed"
    assert step.error_status == "ReturnFailed"
    assert step.host == "https://x.example/a"
    assert step.property_value("missing") is None


def test_valueless_host_and_error_status_mean_none() -> None:
    step = WorkflowStep.model_validate(
        {"properties": [{"key": "Host", "value": None}, {"key": "ErrorStatus", "value": ""}]}
    )
    assert step.host is None
    assert step.error_status is None


@pytest.mark.parametrize(
    ("key_group", "expected"),
    [
        ("RequestHeaders", True),
        ("requestheaders", True),
        ("REQUESTHEADERS", True),
        (None, False),
        ("", False),
        ("Headers", False),
    ],
)
def test_is_request_header(key_group: str | None, expected: bool) -> None:
    prop = StepProperty(key="X-A", value="v", key_group=key_group)
    assert is_request_header(prop) is expected


def test_first_matching_property_wins() -> None:
    step = WorkflowStep.model_validate(
        {
            "properties": [
                {"key": "Host", "value": "https://a.example"},
                {"key": "Host", "value": "https://b.example"},
            ]
        }
    )
    assert step.host == "https://a.example"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (STEP_NAME, True),
        (STEP_NAME.lower(), True),
        ("WebhookWorkflowStep", False),
        ("ExportOrder", False),
    ],
)
def test_is_webhook_return_step(name: str, expected: bool) -> None:
    assert WorkflowStep(name=name).is_webhook_return_step is expected


def test_empty_property_key_rejected() -> None:
    with pytest.raises(ValidationError):
        WorkflowStep.model_validate({"properties": [{"key": "", "value": "x"}]})


# URL validation -------------------------------------------------------------------------------

GOOD_URLS = [
    "http://erp.example.com",
    "https://erp.example.com/api/returns",
    "HTTPS://ERP.EXAMPLE.COM/x?y=1",
    "http://127.0.0.1:8080/hook",
    "https://${HOST}/returns",
    "${WEBHOOK_URL}",
]
BAD_URLS = [
    "ftp://erp.example.com",
    "erp.example.com/returns",
    "https://",
    "https:///path",
    "https://erp.example.com/a b",
    "https://erp.example.com/\r\nX-Evil: 1",
    "javascript:alert(1)",
    "",
    "//erp.example.com",
    # what the HTTP client would read differently, or not at all (issue 17)
    "http://example.invalid:99999/x",
    "http://example.invalid:0/x",
    "http://example.invalid:+80/x",
    "http://[zz]/",
    "http://１２７.０.０.１:8080/",
    "http://127。0。0。1/",
    "http://①②⑦.0.0.1/",
    "http://１６９.２５４.１６９.２５４/latest/meta-data/",
    "http://bücher.example/",
    "http://host:８０/",
    "http://127.1/",
    "http://0x7f.0.0.1/",
    "http://2130706433/",
    "http://017.0.0.1/",
    "http://127.0.0.1./",
    "https://${RETURNHOOK_SECRET_BETA__HOST}/x",
    "${RETURNHOOK_BROKER}",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_check_url_accepts(url: str) -> None:
    assert check_url(url) == url


def test_check_url_none() -> None:
    assert check_url(None) is None


@pytest.mark.parametrize("url", BAD_URLS)
def test_check_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url)


@pytest.mark.parametrize("url", BAD_URLS)
def test_connector_host_is_validated(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        Connector.model_validate({"host": url})
    assert _loc(info.value) == ["host"]


@pytest.mark.parametrize("url", BAD_URLS[:-2])
def test_step_host_property_is_validated_with_its_index(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        WorkflowStep.model_validate(
            {"properties": [{"key": "ErrorStatus", "value": "X"}, {"key": "HOST", "value": url}]}
        )
    assert "properties[1].value (Host)" in str(info.value)


def test_a_request_header_called_host_is_not_a_url() -> None:
    step = WorkflowStep.model_validate(
        {"properties": [{"key": "Host", "value": "not a url", "keyGroup": "RequestHeaders"}]}
    )
    assert step.host is None


def test_empty_host_property_is_rejected_like_an_empty_connector_host() -> None:
    """Current choice: an empty string is not a URL (a missing value is fine, see above)."""
    with pytest.raises(ValidationError):
        WorkflowStep.model_validate({"properties": [{"key": "Host", "value": ""}]})


# headers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["X-Api-Key", "Authorization", "x_custom", "A1!#$%&'*+.^`|~"])
def test_valid_header_names(name: str) -> None:
    assert Header(key=name, value="v").key == name
    assert StepProperty(key=name, value="v", key_group="RequestHeaders").key == name


@pytest.mark.parametrize("name", ["X Api", "X:Api", "", "X-Ä", "X\nY", "(x)", "a/b"])
def test_invalid_header_names(name: str) -> None:
    with pytest.raises(ValidationError):
        Header(key=name, value="v")
    with pytest.raises(ValidationError):
        StepProperty(key=name or "x y", value="v", key_group="RequestHeaders")


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "tab\there", "\x7f"])
def test_header_values_with_control_characters_rejected(value: str) -> None:
    with pytest.raises(ValidationError):
        Header(key="X-A", value=value)
    with pytest.raises(ValidationError):
        StepProperty(key="X-A", value=value, key_group="RequestHeaders")


def test_non_header_properties_are_not_held_to_header_rules() -> None:
    prop = StepProperty(key="Some Key", value="multi\nline")
    assert prop.key == "Some Key"


@pytest.mark.parametrize("value", [None, "", "plain value with spaces", "${SECRET}"])
def test_valid_header_values(value: str | None) -> None:
    assert Header(key="X-A", value=value).value == value


# timeouts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("00:00:30", 30), ("00:05:00", 300), (100, 0.1), ("2500", 2.5), ("00:00:00.5", 0.5)],
)
def test_connector_timeout(value: object, expected: float) -> None:
    assert Connector(timeout=value).timeout.total_seconds() == expected


@pytest.mark.parametrize(
    "value",
    [0, "00:00:00", -5, "00:05:01", 300_001, "1.00:00:00", "abc", True, None, 10**20, "9" * 25],
)
def test_connector_timeout_out_of_range_or_invalid(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        Connector(timeout=value)
    assert _loc(info.value) == ["timeout"]


def test_timeout_serializes_as_timespan() -> None:
    connector = Connector(timeout=1500)
    assert connector.model_dump(mode="json", by_alias=True)["timeout"] == "00:00:01.5"


# secrets --------------------------------------------------------------------------------------


def test_secrets_are_masked_in_repr_but_kept_in_json() -> None:
    connector = Connector(bearer_token="tok-123", username="u", password="pw-456")
    assert "tok-123" not in repr(connector) and "pw-456" not in repr(connector)
    dumped = connector.model_dump(mode="json", by_alias=True)
    assert dumped["bearerToken"] == "tok-123"
    assert dumped["password"] == "pw-456"


def test_settings_round_trip_through_json() -> None:
    settings = TenantSettings.model_validate(yaml.safe_load(SPEC_YAML))
    text = json.dumps(settings.model_dump(mode="json", by_alias=True))
    again = TenantSettings.model_validate_json(text)
    assert again == settings
    assert again.connectors[0].bearer_token is not None
    assert again.connectors[0].bearer_token.get_secret_value() == "${ERP_TOKEN}"
    assert '"tenantId"' in text and '"returnWorkflow"' in text and '"timeout": "00:00:30"' in text


# duplicate connectorIds -----------------------------------------------------------------------


def test_duplicate_connector_ids_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        TenantSettings.model_validate(
            {
                "tenantId": "t",
                "connectors": [{"connectorId": "a"}, {"connectorId": "b"}, {"connectorId": "a"}],
            }
        )
    assert "connectorId 'a' is used twice" in str(info.value)


def test_several_connectors_without_id_are_fine() -> None:
    settings = TenantSettings.model_validate(
        {"tenantId": "t", "connectors": [{}, {}, {"connectorId": "a"}]}
    )
    assert len(settings.connectors) == 3


def test_connector_ids_differing_only_in_case_are_distinct() -> None:
    """Documented choice: connectorIds are compared exactly (as resolution does)."""
    settings = TenantSettings.model_validate(
        {"tenantId": "t", "connectors": [{"connectorId": "a"}, {"connectorId": "A"}]}
    )
    assert len(settings.connectors) == 2


# secret references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"connectors": [{"bearerToken": "${RETURNHOOK_SECRET_BETA__TOKEN}"}]},
        {"connectors": [{"password": "${RETURNHOOK_BROKER}", "username": "u"}]},
        {"connectors": [{"username": "${other:TOKEN}"}]},
        {"connectors": [{"customHeaders": [{"key": "X-Leak", "value": "${HOME-}"}]}]},
        {"connectors": [{"signingSecrets": ["${beta.TOKEN}"]}]},
        {
            "returnWorkflow": [
                {
                    "properties": [
                        {"key": "X-Leak", "value": "a ${1A}", "keyGroup": "RequestHeaders"}
                    ]
                }
            ]
        },
        {"returnWorkflow": [{"properties": [{"key": "Host", "value": "https://${A__B}/"}]}]},
    ],
)
def test_references_outside_the_tenants_namespace_are_refused(document: dict) -> None:
    with pytest.raises(ValidationError) as info:
        TenantSettings.model_validate({"tenantId": "acme", **document})
    assert "is not a secret reference" in str(info.value)


def test_references_to_own_and_shared_secrets_are_accepted() -> None:
    settings = TenantSettings.model_validate(
        {
            "tenantId": "acme",
            "connectors": [
                {
                    "host": "https://${ERP_HOST}/r",
                    "bearerToken": "${ERP_TOKEN}",
                    "customHeaders": [{"key": "X-Key", "value": "k ${shared:PARTNER_KEY}"}],
                }
            ],
        }
    )
    assert settings.connectors[0].bearer_token.get_secret_value() == "${ERP_TOKEN}"


def test_a_worker_loads_what_publish_refuses_so_only_the_step_fails() -> None:
    """Written past ``settings publish``: the worker still reads the record (RUN_TIME context);
    the request build checks URL and references again and fails that one step."""
    document = {
        "tenantId": "acme",
        "connectors": [
            {"host": "http://example.invalid:99999/x", "bearerToken": "${RETURNHOOK_BROKER}"}
        ],
        "returnWorkflow": [
            {"properties": [{"key": "Host", "value": "http://１２７.０.０.１/"}]},
            {"properties": [{"key": "X", "value": "${a:b}", "keyGroup": "RequestHeaders"}]},
        ],
    }
    with pytest.raises(ValidationError):
        TenantSettings.model_validate(document)
    settings = TenantSettings.model_validate_json(json.dumps(document), context=RUN_TIME)
    assert settings.connectors[0].host == "http://example.invalid:99999/x"
