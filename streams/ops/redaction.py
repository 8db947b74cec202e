"""Secrets never reach a log line, a metric or an echo of the settings.

Two nets: the secret values themselves (tokens, passwords, sensitive header values, as they are
in the settings and as their ``${NAME}`` references resolve in the tenant's secrets), registered
as settings are read and as secrets are looked up; and patterns
(``Authorization``, ``Bearer``/``Basic`` credentials, ``user:password@`` in URLs) for anything
that slips past the first.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from models.secret_reference import (
    SecretLookup,
    SecretReferenceError,
    is_reference_only,
    resolve_references,
)
from models.settings import TenantSettings

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

SENSITIVE_HEADER_HINTS = ("authorization", "token", "secret", "password", "api-key", "apikey")
SENSITIVE_HEADERS = frozenset({"cookie", "set-cookie", "proxy-authorization", "x-api-key"})

_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + MASK),
    # Any scheme, not just Bearer/Basic: "Authorization: Token abc" must not keep "abc".
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:[A-Za-z][\w.-]*\s+)?[^'\",}\s]+"),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + MASK + "@"),
]


def is_sensitive_header(name: str, marked: bool = False) -> bool:
    lowered = name.lower()
    return (
        marked or lowered in SENSITIVE_HEADERS or any(h in lowered for h in SENSITIVE_HEADER_HINTS)
    )


class SecretRegistry:
    """Known secret values, masked wherever they appear in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, values: Iterable[str | None]) -> None:
        fresh = {v for v in values if v and len(v) >= _MIN_SECRET_LENGTH} - self._values
        if fresh:
            with self._lock:
                self._values |= fresh
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        # Each pattern needs one of these words; most log lines have none (one check, not three
        # regular expression scans, per line and per extra field).
        lowered = text.lower()
        if "://" in text or "bearer" in lowered or "basic" in lowered or "authoriz" in lowered:
            for regex, replacement in _PATTERNS:
                text = regex.sub(replacement, text)
        return text


SECRETS = SecretRegistry()


def settings_secrets(settings: TenantSettings, secrets: SecretLookup) -> set[str]:
    """Every secret a tenant's settings hold, as written and as their references resolve."""
    raw: set[str] = set()
    for connector in settings.connectors:
        if connector.bearer_token is not None:
            raw.add(connector.bearer_token.get_secret_value())
        if connector.password is not None:
            raw.add(connector.password.get_secret_value())
        raw.update(secret.get_secret_value() for secret in connector.signing_secrets)
        for header in connector.custom_headers:
            if is_sensitive_header(header.key, header.sensitive) and header.value:
                raw.add(header.value)
    for step in settings.return_workflow:
        for prop in step.request_headers:
            if is_sensitive_header(prop.key, prop.sensitive) and prop.value:
                raw.add(prop.value)
    resolved = set()
    for value in raw:
        try:
            resolved.add(resolve_references(value, settings.tenant_id, secrets))
        except SecretReferenceError:
            pass  # the step that needs it fails with that reason; nothing to mask
    # A bare ${NAME} reference is not itself secret; its value is.
    return {v for v in raw | resolved if not is_reference_only(v)}


def mask_url(url: str) -> str:
    """A URL fit to print: no user:password, no query values, no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{key}={MASK}" for key, _ in parse_qsl(parts.query, keep_blank_values=True) if key
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def masked_settings(settings: TenantSettings) -> dict[str, Any]:
    """The settings as JSON with every secret replaced, for ``settings show`` and logs."""
    data = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    for connector in data.get("connectors", []):
        for field in ("bearerToken", "password"):
            if connector.get(field) and not is_reference_only(connector[field]):
                connector[field] = MASK
        connector["signingSecrets"] = [
            s if is_reference_only(s) else MASK for s in connector.get("signingSecrets", [])
        ]
        for header in connector.get("customHeaders", []):
            value = header.get("value") or ""
            sensitive = is_sensitive_header(header["key"], header.get("sensitive", False))
            if sensitive and not is_reference_only(value):
                header["value"] = MASK
        if connector.get("host"):
            connector["host"] = mask_url(SECRETS.mask(connector["host"]))
    for step in data.get("returnWorkflow", []):
        for prop in step.get("properties", []):
            header = (prop.get("keyGroup") or "").lower() == "requestheaders"
            sensitive = header and is_sensitive_header(prop["key"], prop.get("sensitive", False))
            if sensitive and not is_reference_only(prop.get("value") or ""):
                prop["value"] = MASK
            elif prop.get("value") and prop["key"].lower() == "host":
                prop["value"] = mask_url(SECRETS.mask(prop["value"]))
            elif prop.get("value"):
                prop["value"] = SECRETS.mask(prop["value"])
    return data


# LogRecord attributes that are not "extra" fields of the call.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def _mask_value(value: Any, registry: SecretRegistry) -> Any:
    """Strings masked, also inside dicts, lists and tuples; other values as they are."""
    if isinstance(value, str):
        return registry.mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(v, registry) for k, v in value.items()}
    if isinstance(value, list) or type(value) is tuple:
        return type(value)(_mask_value(v, registry) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments, its extra fields and any exception text.

    Extra fields (``log.info(..., extra={"reason": ...})``) matter for the JSON format, which
    writes each of them as a field of its own.
    """

    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = self.registry.mask(message)
        record.args = None
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
        }
        for key, value in extras.items():
            setattr(record, key, _mask_value(value, self.registry))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.registry.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.registry.mask(record.stack_info)
        return True
