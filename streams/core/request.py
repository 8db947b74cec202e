"""Building the webhook request (SPEC §4). Pure: the client only adds ``X-Delivery-Count``."""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from functools import cached_property
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from models.secret_reference import (
    REFERENCE,
    SecretLookup,
    SecretReferenceError,
    resolve_references,
)
from models.settings import (
    DEFAULT_TIMEOUT,
    WorkflowStep,
    check_header_value,
    check_signing_secret,
)
from models.webhook_url import check_webhook_url
from streams.core.resolution import Endpoint

DEFAULT_USER_AGENT = "OmniumOms/returnhook-0.1"

# Protocol headers that settings cannot override: retries and deduplication depend on them.
RESERVED_HEADERS = frozenset(
    {
        "x-delivery-count",
        "x-max-delivery-count",
        "idempotency-key",
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
    }
)


class WebhookRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    headers: dict[str, str] = Field(repr=False)
    body: bytes = Field(repr=False)
    timeout_s: float
    max_attempts: int
    delivery_id: str
    tenant_id: str = ""
    """For metric labels and logs only; never sent."""
    step_index: int = 0
    """The workflow step this request belongs to, for progress records; never sent."""
    signing_secrets: tuple[str, ...] = Field(default=(), repr=False)

    @cached_property
    def parsed_url(self) -> URL:
        """The URL as the client parses it; ValueError for one it cannot use."""
        return _url_parts(self.url)[0]

    @cached_property
    def origin(self) -> str:
        """scheme://host:port: what per-host limits and metric labels key on (no path, no query)."""
        return _url_parts(self.url)[1]

    @cached_property
    def hostname(self) -> str:
        """The host exactly as the client connects to it (after yarl's normalisation)."""
        return _url_parts(self.url)[2]


@functools.lru_cache(maxsize=4096)
def _url_parts(url: str) -> tuple[URL, str, str]:
    """Parsed once per URL, not per request: a tenant's calls all go to the same few URLs."""
    parsed = URL(url)
    origin = f"{parsed.scheme}://{parsed.host_subcomponent}:{parsed.port}"
    return parsed, origin, parsed.raw_host or ""


#: URLs that passed check_webhook_url (pure: the same text always gets the same verdict).
_CHECKED_URLS: dict[str, None] = {}
_MAX_CHECKED_URLS = 4096


def _check_url(url: str, shown: str) -> None:
    if url in _CHECKED_URLS:
        return
    check_webhook_url(url, shown=shown)
    if len(_CHECKED_URLS) >= _MAX_CHECKED_URLS:
        _CHECKED_URLS.clear()
    _CHECKED_URLS[url] = None


class InvalidRequest(ValueError):
    """The settings cannot make a request (a secret the tenant lacks, a URL the client refuses)."""


def request_body(
    order: Mapping[str, Any], step: WorkflowStep, return_order_form_id: str | None
) -> bytes:
    return orjson.dumps(
        {
            "Value": order,
            "WorkflowStep": step.body_fragment,
            "ReturnOrderFormId": return_order_form_id,
        }
    )


def _set(headers: dict[str, str], name: str, value: str) -> None:
    """Sets a header, replacing any differently cased earlier one."""
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def build_request(
    step: WorkflowStep,
    endpoint: Endpoint,
    order: Mapping[str, Any],
    return_order_form_id: str | None,
    delivery_id: str,
    *,
    secrets: SecretLookup,
    max_attempts: int,
    user_agent: str = DEFAULT_USER_AGENT,
    tenant_id: str = "",
    trace: Mapping[str, str] | None = None,
    step_index: int = 0,
) -> WebhookRequest:
    """``${NAME}`` references resolve in ``tenant_id``'s own secrets only (or shared ones).
    ``trace``: the input's W3C trace context; it wins over settings' headers of that name."""
    try:
        return _build(
            step,
            endpoint,
            order,
            return_order_form_id,
            delivery_id,
            secrets,
            max_attempts,
            user_agent,
            tenant_id,
            trace or {},
            step_index,
        )
    except SecretReferenceError as exc:
        raise InvalidRequest(str(exc)) from None


class _Static(NamedTuple):
    """Everything of a request that depends on the step and endpoint only, not on the event."""

    url: str
    headers: dict[str, str]
    """Every header but the trace's, ``Idempotency-Key`` empty (reserved: settings never
    replace it, so each request sets it in place)."""
    timeout_s: float
    signing_secrets: tuple[str, ...]
    keep: tuple[object, ...]
    """The step and connector whose ids key the cache: alive as long as the entry."""


#: (step, connector, url, tenant, attempts, user agent) -> _Static, for settings that reference
#: no secret (a referenced secret is read on every request: files may be rotated).
_STATIC: dict[tuple[int, int, str, str, int, str], _Static] = {}
_MAX_STATIC = 4096


def _build(
    step: WorkflowStep,
    endpoint: Endpoint,
    order: Mapping[str, Any],
    return_order_form_id: str | None,
    delivery_id: str,
    lookup: SecretLookup,
    max_attempts: int,
    user_agent: str,
    tenant_id: str,
    trace: Mapping[str, str],
    step_index: int,
) -> WebhookRequest:
    key = (id(step), id(endpoint.connector), endpoint.url, tenant_id, max_attempts, user_agent)
    static = _STATIC.get(key)
    if static is None:
        static, cacheable = _static(step, endpoint, lookup, max_attempts, user_agent, tenant_id)
        if cacheable:
            if len(_STATIC) >= _MAX_STATIC:
                _STATIC.clear()
            _STATIC[key] = static
    headers = dict(static.headers)
    headers["Idempotency-Key"] = delivery_id
    for name, value in trace.items():
        _set(headers, name, value)
    for name, value in (("Idempotency-Key", delivery_id), *trace.items()):
        try:
            check_header_value(value)
        except ValueError as exc:
            raise InvalidRequest(f"header {name}: {exc}") from None
    return WebhookRequest(
        url=static.url,
        headers=headers,
        body=request_body(order, step, return_order_form_id),
        timeout_s=static.timeout_s,
        max_attempts=max_attempts,
        delivery_id=delivery_id,
        tenant_id=tenant_id,
        step_index=step_index,
        signing_secrets=static.signing_secrets,
    )


def _static(
    step: WorkflowStep,
    endpoint: Endpoint,
    lookup: SecretLookup,
    max_attempts: int,
    user_agent: str,
    tenant_id: str,
) -> tuple[_Static, bool]:
    """The event-independent part of a request, and whether it may be reused (no references)."""
    references = False

    def resolve(text: str) -> str:
        nonlocal references
        if REFERENCE.search(text) is None:
            return text
        references = True
        return resolve_references(text, tenant_id, lookup)

    url = resolve(endpoint.url)
    try:
        _check_url(url, endpoint.url)
    except ValueError as exc:
        raise InvalidRequest(f"webhook URL: {exc}") from None
    headers: dict[str, str] = {
        "User-Agent": user_agent,
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Max-Delivery-Count": str(max_attempts),
        "Idempotency-Key": "",
    }
    connector = endpoint.connector
    if connector is not None:
        if connector.bearer_token is not None:
            token = resolve(connector.bearer_token.get_secret_value())
            headers["Authorization"] = f"Bearer {token}"
        elif connector.username is not None:
            password = connector.password.get_secret_value() if connector.password else ""
            pair = f"{resolve(connector.username)}:{resolve(password)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        for header in connector.custom_headers:
            if header.key.lower() not in RESERVED_HEADERS:
                _set(headers, header.key, resolve(header.value or ""))
    for prop in step.request_headers:
        if prop.key.lower() not in RESERVED_HEADERS:
            _set(headers, prop.key, resolve(prop.value or ""))
    timeout = connector.timeout if connector is not None else DEFAULT_TIMEOUT
    secrets: tuple[str, ...] = ()
    if connector is not None and connector.signing_secrets:
        secrets = tuple(resolve(s.get_secret_value()) for s in connector.signing_secrets)
        for secret in secrets:
            try:
                check_signing_secret(secret)
            except ValueError as exc:
                raise InvalidRequest(f"signing secret: {exc}") from None
    for name, value in headers.items():
        try:
            check_header_value(value)
        except ValueError as exc:
            raise InvalidRequest(f"header {name}: {exc}") from None
    static = _Static(
        url=url,
        headers=headers,
        timeout_s=timeout.total_seconds(),
        signing_secrets=secrets,
        keep=(step, connector),
    )
    return static, not references
