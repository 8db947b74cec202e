"""streams.ops.redaction: secrets never reach a log line, a metric or an echo of the settings."""

from __future__ import annotations

import copy
import io
import logging
import sys
import uuid
from collections.abc import Iterator

import pytest

from models.settings import TenantSettings
from streams.ops.redaction import (
    MASK,
    RedactingFilter,
    SecretRegistry,
    is_sensitive_header,
    masked_settings,
    settings_secrets,
)

TOKEN = f"tok-{uuid.uuid4().hex}"
PASSWORD = f"pw-{uuid.uuid4().hex}"
API_KEY = f"key-{uuid.uuid4().hex}"
REF = f"ref-{uuid.uuid4().hex}"


@pytest.fixture
def registry() -> SecretRegistry:
    secrets = SecretRegistry()
    secrets.add([TOKEN, PASSWORD, API_KEY, REF])
    return secrets


def settings(**overrides: object) -> TenantSettings:
    document: dict = {
        "tenantId": "acme",
        "connectors": [
            {
                "name": "Webhook",
                "connectorId": "bearer",
                "host": "https://erp.example.com/returns",
                "bearerToken": "${ERP_TOKEN}",
                "customHeaders": [
                    {"key": "X-Api-Key", "value": API_KEY},
                    {"key": "X-Source", "value": "oms"},
                    {"key": "X-Tracking", "value": "tracking-value-1", "sensitive": True},
                ],
            },
            {
                "name": "Webhook",
                "connectorId": "basic",
                "host": "https://erp.example.com/basic",
                "username": "erp-user",
                "password": PASSWORD,
            },
        ],
        "returnWorkflow": [
            {
                "name": "WebhookReturnWorkflowStep",
                "properties": [
                    {"key": "Host", "value": "https://svc:hostpw-1234@erp.example.com/x"},
                    {"key": "ErrorStatus", "value": "ReturnFailed"},
                    {
                        "key": "X-Partner-Ref",
                        "value": REF,
                        "keyGroup": "RequestHeaders",
                        "sensitive": True,
                    },
                    {"key": "X-Plain", "value": "plain-value", "keyGroup": "RequestHeaders"},
                    {
                        "key": "Authorization",
                        "value": "Token lit-5678",
                        "keyGroup": "RequestHeaders",
                    },
                ],
            }
        ],
    }
    document.update(overrides)
    return TenantSettings.model_validate(document)


# --- the registry and the patterns -------------------------------------------------------------


def test_registered_values_are_masked_anywhere_in_text(registry: SecretRegistry) -> None:
    text = f"sent {TOKEN} and x{PASSWORD}y, header={API_KEY}; {REF}."
    masked = registry.mask(text)
    assert masked == f"sent {MASK} and x{MASK}y, header={MASK}; {MASK}."


def test_the_longest_secret_is_masked_first() -> None:
    registry = SecretRegistry()
    registry.add(["abcd", "abcdefgh"])
    assert registry.mask("abcdefgh abcd") == f"{MASK} {MASK}"


def test_short_and_empty_values_are_not_registered() -> None:
    """Three characters would mask ordinary words ("ok", "abc") all over the log."""
    registry = SecretRegistry()
    registry.add(["ab", "abc", "", None])
    assert registry.mask("ab abc") == "ab abc"
    registry.add(["abcd"])
    assert registry.mask("ab abc abcd") == f"ab abc {MASK}"


def test_regex_characters_in_secrets_are_literal() -> None:
    registry = SecretRegistry()
    registry.add(["p.ss+w*rd(1)"])
    assert registry.mask("x p.ss+w*rd(1) y pass+wrd(1)") == f"x {MASK} y pass+wrd(1)"


def test_adding_again_keeps_what_was_there(registry: SecretRegistry) -> None:
    registry.add([TOKEN])
    registry.add(["another-one"])
    assert registry.mask(f"{TOKEN} another-one {API_KEY}") == f"{MASK} {MASK} {MASK}"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Authorization: Bearer eyJhbGciOi.J9x-_~+/=", "eyJhbGciOi.J9x-_~+/="),
        ("header was Bearer abc.def-123", "abc.def-123"),
        ("{'Authorization': 'Basic dXNlcjpwdw=='}", "dXNlcjpwdw=="),
        ('{"authorization": "Token opaque-1"}', "opaque-1"),
        ("authorization=opaque-2, next", "opaque-2"),
        ("Authorization: ApiKey opaque-3", "opaque-3"),
        ("POST https://svc:pa55word@erp.example.com/returns", "pa55word"),
        ("kafka://user:pa55@broker:9092", "pa55"),
    ],
)
def test_patterns_catch_unregistered_credentials(text: str, hidden: str) -> None:
    masked = SecretRegistry().mask(text)
    assert hidden not in masked
    assert MASK in masked


def test_patterns_leave_ordinary_text_alone() -> None:
    registry = SecretRegistry()
    for text in (
        "outcome tenant=acme order=o-1 status=Success attempts=1",
        "webhook attempt 2/4 to https://erp.example.com:443: HTTP 503",
        "no answer within 30 s",
        "mail to someone@example.com",
    ):
        assert registry.mask(text) == text


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("X-Api-Key", True),
        ("x-apikey", True),
        ("X-Auth-Token", True),
        ("X-Client-Secret", True),
        ("Cookie", True),
        ("X-Password", True),
        ("X-Source", False),
        ("Accept", False),
        ("X-Partner-Ref", False),
    ],
)
def test_sensitive_header_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_header(name) is sensitive
    assert is_sensitive_header(name, marked=True) is True


# --- secrets of settings -----------------------------------------------------------------------


def test_settings_secrets_include_resolved_references_but_not_bare_ones() -> None:
    found = settings_secrets(settings(), {("acme", "ERP_TOKEN"): TOKEN})
    assert TOKEN in found  # ${ERP_TOKEN} as it resolves for tenant acme
    assert "${ERP_TOKEN}" not in found  # a reference is no secret
    assert {PASSWORD, API_KEY, REF, "tracking-value-1", "Token lit-5678"} <= found
    assert not {"oms", "plain-value", "erp-user", "ReturnFailed"} & found


def test_settings_secrets_without_the_environment_keep_literal_ones() -> None:
    found = settings_secrets(settings(), {})
    assert TOKEN not in found
    assert PASSWORD in found and API_KEY in found


def test_another_tenants_secret_is_not_resolved_for_masking() -> None:
    found = settings_secrets(settings(), {("beta", "ERP_TOKEN"): TOKEN})
    assert TOKEN not in found


def test_a_partly_referenced_secret_is_registered_both_ways() -> None:
    tenant = settings(
        connectors=[{"name": "Webhook", "host": "https://h", "bearerToken": "v1.${ERP_TOKEN}"}]
    )
    found = settings_secrets(tenant, {("acme", "ERP_TOKEN"): TOKEN})
    assert f"v1.{TOKEN}" in found


def test_settings_secrets_feed_the_registry_so_logs_mask_them() -> None:
    registry = SecretRegistry()
    registry.add(settings_secrets(settings(), {("acme", "ERP_TOKEN"): TOKEN}))
    line = f"calling with {TOKEN}, {API_KEY}, {PASSWORD}, {REF} for erp-user"
    assert registry.mask(line) == f"calling with {MASK}, {MASK}, {MASK}, {MASK} for erp-user"


# --- echoes of the settings --------------------------------------------------------------------


def test_masked_settings_hide_every_secret_and_keep_the_rest() -> None:
    tenant = settings()
    before = copy.deepcopy(tenant.model_dump())
    data = masked_settings(tenant)
    bearer, basic = data["connectors"]
    assert bearer["bearerToken"] == "${ERP_TOKEN}"  # a reference is shown: it tells where
    assert bearer["customHeaders"] == [
        {"key": "X-Api-Key", "value": MASK},
        {"key": "X-Source", "value": "oms"},
        {"key": "X-Tracking", "value": MASK, "sensitive": True},
    ]
    assert bearer["host"] == "https://erp.example.com/returns"
    assert (basic["username"], basic["password"]) == ("erp-user", MASK)
    properties = {p["key"]: p for p in data["returnWorkflow"][0]["properties"]}
    assert properties["X-Partner-Ref"]["value"] == MASK
    assert properties["X-Partner-Ref"]["sensitive"] is True
    assert properties["Authorization"]["value"] == MASK  # by its name
    assert properties["X-Plain"]["value"] == "plain-value"
    assert properties["ErrorStatus"]["value"] == "ReturnFailed"
    assert properties["Host"]["value"] == f"https://{MASK}@erp.example.com/x"
    text = str(data)
    for secret in (PASSWORD, API_KEY, REF, "tracking-value-1", "lit-5678", "hostpw-1234"):
        assert secret not in text
    assert tenant.model_dump() == before  # the settings themselves are untouched


def test_masked_settings_mask_a_literal_bearer_token() -> None:
    tenant = settings(connectors=[{"name": "Webhook", "host": "https://h", "bearerToken": TOKEN}])
    [connector] = masked_settings(tenant)["connectors"]
    assert connector["bearerToken"] == MASK


def test_masked_settings_mask_a_connector_host_with_credentials() -> None:
    tenant = settings(connectors=[{"name": "Webhook", "host": "https://u:hostpw-9@erp/x"}])
    [connector] = masked_settings(tenant)["connectors"]
    assert connector["host"] == f"https://{MASK}@erp/x"


# --- the logging filter ------------------------------------------------------------------------


@pytest.fixture
def captured(registry: SecretRegistry) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(registry))
    logger = logging.Logger(f"test-{uuid.uuid4().hex[:6]}", logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream


def test_the_filter_masks_message_and_arguments(captured: tuple) -> None:
    logger, stream = captured
    logger.info("token %s, key %r, %d%%", TOKEN, API_KEY, 100)
    logger.info(f"inline {PASSWORD}")
    logger.debug("header: %s", {"Authorization": f"Bearer {TOKEN}"})
    out = stream.getvalue()
    assert out.splitlines() == [
        f"INFO token {MASK}, key '{MASK}', 100%",
        f"INFO inline {MASK}",
        f"DEBUG header: {{'Authorization': '{MASK}'}}",
    ]


def test_the_filter_masks_exceptions_and_their_causes(captured: tuple) -> None:
    logger, stream = captured
    try:
        try:
            raise KeyError(API_KEY)
        except KeyError as inner:
            raise RuntimeError(f"request with {TOKEN} failed") from inner
    except RuntimeError:
        logger.exception("delivery failed")
    out = stream.getvalue()
    assert "Traceback" in out and "RuntimeError" in out and "KeyError" in out
    assert TOKEN not in out and API_KEY not in out


def test_the_filter_masks_exc_info_passed_explicitly(captured: tuple) -> None:
    logger, stream = captured
    error = ValueError(f"bad {REF}")
    logger.error("oops", exc_info=(type(error), error, None))
    assert REF not in stream.getvalue() and f"ValueError: bad {MASK}" in stream.getvalue()


def test_the_filter_masks_stack_info() -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "m", None, None, sinfo=f"at {PASSWORD}")
    assert RedactingFilter(_registry_with(PASSWORD)).filter(record)
    assert record.stack_info == f"at {MASK}"


def _registry_with(*values: str) -> SecretRegistry:
    registry = SecretRegistry()
    registry.add(values)
    return registry


def test_the_filter_masks_extra_fields(registry: SecretRegistry) -> None:
    """The JSON format writes extra fields as they are: they must be masked too."""
    record = logging.LogRecord("x", logging.INFO, "", 0, "outcome", None, None)
    record.reason = f"key {API_KEY} refused"
    record.details = {"headers": [f"Bearer {TOKEN}", ("ref", REF)], "attempts": 2}
    record.attempts = 3
    RedactingFilter(registry).filter(record)
    assert record.reason == f"key {MASK} refused"
    assert record.details == {"headers": [f"Bearer {MASK}", ("ref", MASK)], "attempts": 2}
    assert record.attempts == 3


def test_a_broken_format_string_keeps_the_record(registry: SecretRegistry) -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, f"{TOKEN} %d", ("not a number",), None)
    assert RedactingFilter(registry).filter(record) is True
    assert record.getMessage() == f"{MASK} %d"


def test_the_filter_never_drops_records(registry: SecretRegistry) -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "plain %s", ("text",), None)
    assert RedactingFilter(registry).filter(record) is True
    assert record.getMessage() == "plain text"


def test_exc_info_is_kept_for_formatters(registry: SecretRegistry) -> None:
    try:
        raise OSError(f"connect {TOKEN}")
    except OSError:
        info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, "", 0, "failed", None, info)
    RedactingFilter(registry).filter(record)
    assert record.exc_text is not None and TOKEN not in record.exc_text
    formatted = logging.Formatter().format(record)
    assert TOKEN not in formatted and "OSError" in formatted


def test_settings_show_masks_credentials_in_host_urls() -> None:
    from models.settings import TenantSettings
    from streams.ops.redaction import masked_settings

    settings = TenantSettings.model_validate(
        {
            "tenantId": "t",
            "connectors": [{"host": "https://erp.example.com/r?apikey=SECRETQ1&x=1"}],
            "returnWorkflow": [
                {"properties": [{"key": "Host", "value": "https://u:pw-SECRET@h.example/p?t=Q2"}]}
            ],
        }
    )
    shown = str(masked_settings(settings))
    for secret in ("SECRETQ1", "pw-SECRET", "Q2"):
        assert secret not in shown
    assert "https://erp.example.com/r?apikey=***&x=***" in shown
