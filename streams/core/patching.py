"""Order patches: what the webhook may change, how a patch lands on the order, error entries. Pure.

A patch replaces whole fields, like Omnium's PATCH Order API. Applying it to our copy of the order
lets the next step of the same workflow see the previous step's changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.casing import get_ci, key_ci
from models.settings import STEP_NAME

# lower-cased name as the webhook may send it -> the field's name on the order
PATCHABLE = {
    "status": "status",
    "ordertype": "orderType",
    "tags": "tags",
    "properties": "properties",
    "followupdate": "followUpDate",
    "assets": "assets",
    "orderorigin": "orderOrigin",
    "origin": "orderOrigin",
    "errors": "errors",
    "name": "name",
}
_TEXT = {"status", "orderType", "followUpDate", "orderOrigin", "name"}


class PatchShapeError(ValueError):
    pass


def normalize_patch(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The patchable fields under their order names, and the names of the fields ignored.

    Raises PatchShapeError when a patchable field has the wrong type: applying half of such a
    patch would leave the order in a state nobody asked for.
    """
    patch: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in raw.items():
        field = PATCHABLE.get(key.lower()) if isinstance(key, str) else None
        if field is None:
            ignored.append(str(key))
            continue
        _check_type(field, value)
        patch[field] = value
    return patch, ignored


def _check_type(field: str, value: Any) -> None:
    if value is None:
        return
    if field in _TEXT:
        if not isinstance(value, str):
            raise PatchShapeError(f"orderPatch.{field}: expected a string")
        return
    if not isinstance(value, list):
        raise PatchShapeError(f"orderPatch.{field}: expected a list")
    if field == "tags" and not all(isinstance(t, str) for t in value):
        raise PatchShapeError("orderPatch.tags: expected a list of strings")
    if field in {"properties", "errors"}:
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise PatchShapeError(f"orderPatch.{field}[{index}]: expected an object")
            if field == "properties" and not isinstance(get_ci(item, "key"), str):
                raise PatchShapeError(f"orderPatch.properties[{index}].key: expected a string")


def apply_patch(order: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A new order with the patch's fields set, keeping the order's own casing of each key."""
    patched = dict(order)
    for field, value in patch.items():
        patched[key_ci(patched, field)] = value
    return patched


def order_errors(order: Mapping[str, Any]) -> list[Any]:
    errors = get_ci(order, "errors")
    return list(errors) if isinstance(errors, list) else []


def is_step_error(entry: Any) -> bool:
    return isinstance(entry, dict) and str(get_ci(entry, "key") or "").lower() == STEP_NAME.lower()


def without_step_errors(errors: list[Any]) -> list[Any]:
    return [e for e in errors if not is_step_error(e)]


def error_entry(
    message: str, details: str | None, reference_id: str, severity: str, occurred: str
) -> dict[str, Any]:
    return {
        "key": STEP_NAME,
        "message": message,
        "details": details,
        "referenceId": reference_id,
        "severity": severity,
        "status": "New",
        "occurred": occurred,
    }
