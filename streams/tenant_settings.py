"""Reading tenant settings records as the worker sees them on the settings topic."""

from __future__ import annotations

from pydantic import ValidationError

from models.settings import TenantSettings
from streams.response import describe


class SettingsCache:
    """Parses each distinct settings record once: the table hands us the same bytes per event."""

    def __init__(self) -> None:
        self._parsed: dict[bytes, TenantSettings | str] = {}

    def parse(self, raw: bytes) -> TenantSettings | str:
        """The settings, or why the record on the topic is not valid settings."""
        cached = self._parsed.get(raw)
        if cached is None:
            try:
                cached = TenantSettings.model_validate_json(raw)
            except ValidationError as exc:
                cached = describe(exc)
            if len(self._parsed) > 10_000:  # old versions of every tenant's settings
                self._parsed.clear()
            self._parsed[raw] = cached
        return cached
