"""JSON Schemas of what returnhook writes: the contract for downstream consumers.

Generated from the pydantic models (``returnhook schemas --out schemas/``) and committed under
``schemas/``; a test keeps the committed files equal to what the models generate.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from models.records import AttemptRecord, DeadLetterRecord, OrderEventRecord, OrderPatchRecord

DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: file stem → (topic role in topics.yaml, model)
OUTPUTS: dict[str, tuple[str, type[BaseModel]]] = {
    "order-patch": ("patches", OrderPatchRecord),
    "order-event": ("events", OrderEventRecord),
    "dead-letter": ("deadLetters", DeadLetterRecord),
    "attempt": ("attempts", AttemptRecord),
}


def output_schema(stem: str) -> dict[str, Any]:
    """One record type's schema, as serialized (camelCase names, every field written)."""
    role, model = OUTPUTS[stem]
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    description = " ".join((model.__doc__ or "").split())
    return {
        "$schema": DIALECT,
        **schema,
        "title": model.__name__,
        "description": f"The value of a record on the `{role}` topic (role in topics.yaml). "
        + description,
    }


def output_schema_files() -> dict[str, str]:
    """``{file name: text}``, stable byte for byte (sorted keys, two-space indent, newline)."""
    return {
        f"{stem}.schema.json": json.dumps(output_schema(stem), indent=2, sort_keys=True) + "\n"
        for stem in OUTPUTS
    }
