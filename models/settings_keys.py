"""Which parts of a tenant settings document returnhook reads, and which look like typos.

Pydantic ignores keys a model does not know, so ``bearerTokn:`` or ``stopOnErorr: true`` would
publish as "no token" and ``stopOnError: false``. This check runs on the raw document before it
is validated. A near miss of a known key or name is an error with a suggestion; anything else we
do not use (an Omnium settings export carries other connectors and step kinds) is a warning, so
nothing is dropped without a word. Keys are compared case-insensitively (SPEC §3). Pure.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, Field

from models.casing import CaseInsensitiveModel
from models.settings import (
    CONNECTOR_NAME,
    STEP_NAME,
    Connector,
    Header,
    StepProperty,
    TenantSettings,
    WorkflowStep,
)
from models.timespan import SMALLEST_BARE_MILLISECONDS

#: How alike a key must be to a known one to be taken for a typo of it (difflib's ratio).
KEY_CUTOFF = 0.85
#: Names are stricter: Omnium has step kinds whose names share most letters with ours.
NAME_CUTOFF = 0.9


class SettingsCheck(BaseModel):
    """Errors stop a publish; warnings are printed; ``document`` is what gets validated."""

    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    document: dict[str, Any] = Field(default_factory=dict)
    typo_paths: set[str] = Field(default_factory=set)
    """Paths reported as typos here, so the model's own "extra input" error is not repeated."""


def check_settings_document(document: dict[str, Any], prefix: str = "") -> SettingsCheck:
    """Typos are errors, unused parts are warnings; unused connectors are left out.

    Steps of other kinds are kept as ``{name, active}`` placeholders: a step's index in the
    order-events is its position in the tenant's return workflow, as in Omnium.
    """
    check = SettingsCheck()
    doc = dict(document)
    _keys(check, doc, TenantSettings, prefix, top_level=True)
    steps = _get(doc, "returnWorkflow")
    connectors = _get(doc, "connectors")
    used_connector_names = {CONNECTOR_NAME.lower()}
    for step in steps if isinstance(steps, list) else []:
        connector = _get(step, "connector") if isinstance(step, dict) and _is_ours(step) else None
        if isinstance(connector, str):
            used_connector_names.add(connector.lower())
    kept_connectors = connectors
    if isinstance(connectors, list):
        kept_connectors = [
            connector
            for index, connector in enumerate(connectors)
            if _connector(check, connector, f"{prefix}connectors.{index}", used_connector_names)
        ]
        doc[_key(doc, "connectors")] = kept_connectors
    if isinstance(steps, list):
        doc[_key(doc, "returnWorkflow")] = [
            _step(check, step, f"{prefix}returnWorkflow.{index}")
            for index, step in enumerate(steps)
        ]
        _connector_ids(
            check, kept_connectors if isinstance(kept_connectors, list) else [], steps, prefix
        )
    check.document = doc
    return check


def _step(check: SettingsCheck, step: Any, path: str) -> Any:
    if not isinstance(step, dict):
        return step  # the model names the problem
    name = _get(step, "name", STEP_NAME)
    if not isinstance(name, str):
        return step
    if name.lower() != STEP_NAME.lower():
        if _near(name, [STEP_NAME], NAME_CUTOFF):
            check.errors.append(
                f"{path}.name: {name!r} is not a step returnhook runs; did you mean {STEP_NAME!r}?"
            )
            return step
        check.warnings.append(
            f"{path} ({name}): not used by returnhook (it runs only {STEP_NAME}); "
            "kept as a placeholder so step numbers match"
        )
        placeholder: dict[str, Any] = {"name": name}
        active = _get(step, "active")
        if isinstance(active, bool):
            placeholder["active"] = active
        return placeholder
    _keys(check, step, WorkflowStep, f"{path}.")
    properties = _get(step, "properties")
    if isinstance(properties, list):
        for index, prop in enumerate(properties):
            if isinstance(prop, dict):
                _keys(check, prop, StepProperty, f"{path}.properties.{index}.")
    return step


def _connector(check: SettingsCheck, connector: Any, path: str, used: set[str]) -> bool:
    """Checks a connector; False when it is not used by returnhook (then it is left out)."""
    if not isinstance(connector, dict):
        return True  # the model names the problem
    name = _get(connector, "name", CONNECTOR_NAME)
    if isinstance(name, str) and name.lower() not in used:
        if _near(name, [CONNECTOR_NAME], NAME_CUTOFF):
            check.errors.append(
                f"{path}.name: {name!r} is not a connector name returnhook uses; "
                f"did you mean {CONNECTOR_NAME!r}?"
            )
            return True
        check.warnings.append(
            f"{path} ({name}): not used by returnhook (no return step names this connector); "
            "left out of what is published"
        )
        return False
    _keys(check, connector, Connector, f"{path}.")
    headers = _get(connector, "customHeaders")
    if isinstance(headers, list):
        for index, header in enumerate(headers):
            if isinstance(header, dict):
                _keys(check, header, Header, f"{path}.customHeaders.{index}.")
    timeout = _get(connector, "timeout")
    bare = timeout if isinstance(timeout, int | float) and not isinstance(timeout, bool) else None
    if isinstance(timeout, str) and timeout.strip().isdigit():
        bare = int(timeout.strip())
    if bare is not None and bare < SMALLEST_BARE_MILLISECONDS:
        check.errors.append(
            f"{path}.timeout: a bare {bare:g} reads as {bare:g} milliseconds; write a TimeSpan "
            f"('00:00:30'), or give the unit ('{bare:g}s', '{bare:g}ms')"
        )
    return True


def _connector_ids(
    check: SettingsCheck, connectors: list[Any], steps: list[Any], prefix: str
) -> None:
    """A step's connectorId must name a connector: otherwise it is "not found" at every call."""
    ids = [
        cid
        for c in connectors
        if isinstance(c, dict) and isinstance(cid := _get(c, "connectorId"), str)
    ]
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not _is_ours(step):
            continue
        wanted = _get(step, "connectorId")
        if not isinstance(wanted, str) or not wanted or wanted in ids:
            continue
        close = difflib.get_close_matches(wanted, ids, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(repr(i) for i in ids) or "none"
        check.errors.append(
            f"{prefix}returnWorkflow.{index}.connectorId: {wanted!r} matches no connector "
            f"(connectorIds: {known}){hint}"
        )


def _keys(
    check: SettingsCheck,
    mapping: dict[Any, Any],
    model: type[CaseInsensitiveModel],
    path: str,
    *,
    top_level: bool = False,
) -> None:
    known = model._lowered_names  # lower-cased name or alias -> the documented (camelCase) name
    for key in mapping:
        if not isinstance(key, str) or key.lower() in known:
            continue
        close = _near(key, list(known), KEY_CUTOFF)
        if close is not None:
            check.errors.append(f"{path}{key}: unknown key; did you mean {known[close]!r}?")
            check.typo_paths.add(f"{path}{key}")
        elif not top_level:  # unknown top-level keys are refused by the model itself
            check.warnings.append(f"{path}{key}: not used by returnhook")


def _near(word: str, candidates: list[str], cutoff: float) -> str | None:
    """The candidate ``word`` is a typo of: alike by difflib, or one edit or swap away."""
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    if match:
        return lowered[match[0]]
    if len(word) >= 4:
        for candidate in lowered:
            if _one_edit(word.lower(), candidate):
                return lowered[candidate]
    return None


def _one_edit(a: str, b: str) -> bool:
    """One letter added, dropped, changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = diff[0], diff[-1]
        return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _is_ours(step: dict[Any, Any]) -> bool:
    name = _get(step, "name", STEP_NAME)
    return isinstance(name, str) and name.lower() == STEP_NAME.lower()


def _key(mapping: dict[Any, Any], name: str) -> Any:
    for key in mapping:
        if isinstance(key, str) and key.lower() == name.lower():
            return key
    return name


def _get(mapping: dict[Any, Any], name: str, default: Any = None) -> Any:
    key = _key(mapping, name)
    return mapping.get(key, default)
