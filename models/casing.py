"""Case-insensitive field names.

Omnium itself mixes ``Value``/``value`` and ``OrderPatch``/``orderPatch``, so every model that
reads JSON written by someone else accepts any casing of its field names. Output keeps camelCase.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class CaseInsensitiveModel(BaseModel):
    """Accepts ``TenantId``, ``tenantid`` and ``tenantId`` alike; writes ``tenantId``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    _lowered_names: ClassVar[dict[str, str]] = {}
    _aliases: ClassVar[frozenset[str]] = frozenset()
    _drop_unknown: ClassVar[bool] = True

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names: dict[str, str] = {}
        for field_name, field in cls.model_fields.items():
            alias = field.alias or field_name
            names[alias.lower()] = alias
            names.setdefault(field_name.lower(), alias)
            if field.validation_alias and isinstance(field.validation_alias, str):
                names[field.validation_alias.lower()] = alias
        cls._lowered_names = names
        cls._aliases = frozenset(names.values())
        # Models that ignore unknown fields anyway need not carry them through the validation
        # (an order has dozens of fields the views do not read); "allow" and "forbid" see them.
        cls._drop_unknown = cls.model_config.get("extra") in (None, "ignore")

    @model_validator(mode="before")
    @classmethod
    def _fold_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names, aliases, drop = cls._lowered_names, cls._aliases, cls._drop_unknown
        folded: dict[str, Any] = {}
        for key, value in data.items():
            if key in aliases:
                target = key
            elif isinstance(key, str):
                target = names.get(key.lower(), key)
                if drop and target is key:
                    continue
            else:
                target = key
            # An exact-case key wins over a differently cased duplicate.
            if target in folded and key != target:
                continue
            folded[target] = value
        return folded


def get_ci(mapping: dict[str, Any], name: str, default: Any = None) -> Any:
    """Looks a key up in a raw JSON object regardless of its case (exact match first)."""
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return default


def key_ci(mapping: dict[str, Any], name: str) -> str:
    """The key under which ``name`` is stored in ``mapping``, or ``name`` when absent."""
    if name in mapping:
        return name
    lowered = name.lower()
    for key in mapping:
        if isinstance(key, str) and key.lower() == lowered:
            return key
    return name
