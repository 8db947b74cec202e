"""Tenant settings (SPEC §3): one record per tenant on the compacted settings topic.

Validated before they are published (``returnhook settings publish``) and again when a worker
reads them, so a bad record on the topic is reported for that tenant instead of crashing anyone.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated

import orjson
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from models.casing import CaseInsensitiveModel
from models.secret_reference import REFERENCE, check_references
from models.timespan import format_timespan, parse_timespan
from models.webhook_url import check_webhook_url

STEP_NAME = "WebhookReturnWorkflowStep"
CONNECTOR_NAME = "Webhook"
MAX_TIMEOUT = timedelta(minutes=5)
DEFAULT_TIMEOUT = timedelta(seconds=30)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def check_signing_secret(text: str) -> str:
    """``whsec_`` + base64 of at least 16 bytes (the Standard Webhooks secret format)."""
    if not text.startswith("whsec_"):
        raise ValueError("a signing secret starts with 'whsec_' followed by base64")
    try:
        key = base64.b64decode(text[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a signing secret's part after 'whsec_' must be base64") from None
    if len(key) < 16:
        raise ValueError("a signing secret must hold at least 16 bytes")
    return text


def _header_name(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value


def check_header_value(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("header values must not contain CR, LF or other control characters")
    return value


RUN_TIME: dict[str, bool] = {"defer_request_checks": True}
"""Validation context of a worker reading the settings topic. URLs and secret references are
checked strictly at publish time; a record that skipped publish still loads, and each step's
request build checks them again, so a bad one fails that step (Error), not the whole tenant."""


def _deferred(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("defer_request_checks"))


def _references(value: str | None, info: ValidationInfo) -> str | None:
    return value if _deferred(info) else check_references(value)


def _url(value: str | None, info: ValidationInfo) -> str | None:
    return value if _deferred(info) else check_url(value)


def check_url(value: str | None) -> str | None:
    """Read as the HTTP client will read it; with a secret reference, checked once resolved."""
    if value is None:
        return value
    check_references(value)
    if not REFERENCE.search(value):
        check_webhook_url(value)
    return value


def _secret_references(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    if value is not None and not _deferred(info):
        check_references(value.get_secret_value())
    return value


def _timeout(value: timedelta) -> timedelta:
    if value <= timedelta(0) or value > MAX_TIMEOUT:
        raise ValueError(f"a timeout must be above 0 and at most {format_timespan(MAX_TIMEOUT)}")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str | None, AfterValidator(check_header_value), AfterValidator(_references)]
Secret = Annotated[SecretStr | None, AfterValidator(_secret_references)]
Url = Annotated[str | None, AfterValidator(_url)]
Timeout = Annotated[
    timedelta,
    BeforeValidator(parse_timespan),
    AfterValidator(_timeout),
    PlainSerializer(format_timespan, return_type=str),
]


class Header(CaseInsensitiveModel):
    key: HeaderName
    value: HeaderValue = None
    sensitive: bool = Field(default=False, exclude_if=lambda marked: not marked)
    """Masked in logs and echoes (Authorization-like names are masked anyway)."""


class Connector(CaseInsensitiveModel):
    name: str = CONNECTOR_NAME
    connector_id: str | None = None
    host: Url = None
    bearer_token: Secret = None
    username: Annotated[str | None, AfterValidator(_references)] = None
    password: Secret = None
    timeout: Timeout = DEFAULT_TIMEOUT
    custom_headers: list[Header] = Field(default_factory=list)
    enabled_for_markets: list[str] = Field(default_factory=list)
    disabled_for_markets: list[str] = Field(default_factory=list)
    signing_secrets: list[SecretStr] = Field(default_factory=list)
    """Opt-in Standard Webhooks signatures: ``whsec_…`` secrets (several while rotating)."""

    @field_serializer("bearer_token", "password", when_used="json")
    def _reveal(self, value: SecretStr | None) -> str | None:
        """Published settings keep the secret (or its ``${NAME}`` reference); repr/logs mask it."""
        return value.get_secret_value() if value is not None else None

    @field_serializer("signing_secrets", when_used="json")
    def _reveal_all(self, values: list[SecretStr]) -> list[str]:
        return [v.get_secret_value() for v in values]

    @field_validator("signing_secrets")
    @classmethod
    def _whsec(cls, values: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        if _deferred(info):
            return values
        for value in values:
            text = value.get_secret_value()
            check_references(text)
            if not REFERENCE.search(text):
                check_signing_secret(text)
        return values


class StepProperty(CaseInsensitiveModel):
    key: str = Field(min_length=1)
    value: str | None = None
    key_group: str | None = None
    sensitive: bool = Field(default=False, exclude_if=lambda marked: not marked)

    @model_validator(mode="after")
    def _header_rules(self, info: ValidationInfo) -> StepProperty:
        if is_request_header(self):
            _header_name(self.key)
            check_header_value(self.value)
            if not _deferred(info):
                check_references(self.value)
        return self


def is_request_header(prop: StepProperty) -> bool:
    return (prop.key_group or "").lower() == "requestheaders"


class WorkflowStep(CaseInsensitiveModel):
    name: str = STEP_NAME
    active: bool = True
    connector: str = CONNECTOR_NAME
    connector_id: str | None = None
    stop_on_error: bool = False
    run_after_order_is_saved: bool = False
    translate_key: str | None = None
    enabled_for_markets: list[str] = Field(default_factory=list)
    disabled_for_markets: list[str] = Field(default_factory=list)
    enabled_for_stores: list[str] = Field(default_factory=list)
    disabled_for_stores: list[str] = Field(default_factory=list)
    enabled_for_tags: list[str] = Field(default_factory=list)
    disabled_for_tags: list[str] = Field(default_factory=list)
    properties: list[StepProperty] = Field(default_factory=list)

    def property_value(self, key: str) -> str | None:
        """A step-level property (not a request header) by key, case-insensitively."""
        for prop in self.properties:
            if not is_request_header(prop) and prop.key.lower() == key.lower():
                return prop.value
        return None

    @property
    def host(self) -> str | None:
        return self.property_value("Host") or None

    @property
    def error_status(self) -> str | None:
        return self.property_value("ErrorStatus") or None

    @property
    def request_headers(self) -> list[StepProperty]:
        return [p for p in self.properties if is_request_header(p)]

    @cached_property
    def body_fragment(self) -> orjson.Fragment:
        """The step as every request body carries it, serialized once per settings version."""
        return orjson.Fragment(
            orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))
        )

    @property
    def is_webhook_return_step(self) -> bool:
        return self.name.lower() == STEP_NAME.lower()

    @model_validator(mode="after")
    def _host_is_url(self, info: ValidationInfo) -> WorkflowStep:
        if _deferred(info):
            return self
        for index, prop in enumerate(self.properties):
            if not is_request_header(prop) and prop.key.lower() == "host":
                try:
                    check_url(prop.value)
                except ValueError as exc:
                    raise ValueError(f"properties[{index}].value (Host): {exc}") from None
        return self


class TenantSettings(CaseInsensitiveModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(min_length=1)
    connectors: list[Connector] = Field(default_factory=list)
    return_workflow: list[WorkflowStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_connector_ids(self) -> TenantSettings:
        seen: set[str] = set()
        for connector in self.connectors:
            if connector.connector_id is None:
                continue
            if connector.connector_id in seen:
                raise ValueError(f"connectorId {connector.connector_id!r} is used twice")
            seen.add(connector.connector_id)
        return self
