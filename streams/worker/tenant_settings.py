"""Reading tenant settings records as the worker sees them on the settings topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from models.secret_reference import SecretLookup
from models.settings import RUN_TIME, TenantSettings
from streams.core.decoder import Rejected
from streams.core.response import describe
from streams.ops.redaction import SECRETS, SecretRegistry, settings_secrets


class SettingsCache:
    """Parses each distinct settings record once: the table hands us the same bytes per event."""

    def __init__(
        self, secrets: SecretLookup | None = None, registry: SecretRegistry = SECRETS
    ) -> None:
        self._parsed: dict[bytes, TenantSettings | str] = {}
        self._secrets: SecretLookup = secrets if secrets is not None else {}
        self._registry = registry

    def parse(self, raw: bytes) -> TenantSettings | str:
        """The settings, or why the record on the topic is not valid settings."""
        cached = self._parsed.get(raw)
        if cached is None:
            try:
                cached = TenantSettings.model_validate_json(raw, context=RUN_TIME)
            except ValidationError as exc:
                cached = describe(exc)
            else:
                # Registered before any request is built: from here on, logs mask them.
                self._registry.add(settings_secrets(cached, self._secrets))
            if len(self._parsed) > 10_000:  # old versions of every tenant's settings
                self._parsed.clear()
            self._parsed[raw] = cached
        return cached

    def lookup(self, tenant: str, raw: bytes | None, topic: str) -> TenantSettings | Rejected:
        """A tenant's settings from its record on the settings topic, or why not (dead letter)."""
        if raw is None:
            return Rejected(
                reason="unknown_tenant", error=f"no settings for tenant {tenant!r} on {topic}"
            )
        parsed = self.parse(raw)
        if isinstance(parsed, str):
            return Rejected(
                reason="invalid_tenant_settings",
                error=f"the settings of tenant {tenant!r} are invalid: {parsed}",
            )
        return parsed


async def await_settings(
    lookup: Callable[[], TenantSettings | Rejected],
    grace_s: float,
    *,
    poll_s: float = 0.1,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TenantSettings | Rejected:
    """The tenant's settings, waiting up to ``grace_s`` for them to arrive.

    Settings reach the workers about a second after ``settings publish``; an event produced
    right after its tenant's first settings must not be dead-lettered as ``unknown_tenant``.
    Only this order's lane waits: other orders and tenants go on. Invalid settings do not wait.
    """
    found = lookup()
    deadline = clock() + grace_s
    while isinstance(found, Rejected) and found.reason == "unknown_tenant":
        left = deadline - clock()
        if left <= 0:
            return found.model_copy(
                update={"error": f"{found.error} (waited {grace_s:g} s for them)"}
            )
        await sleep(min(poll_s, left))
        found = lookup()
    return found
