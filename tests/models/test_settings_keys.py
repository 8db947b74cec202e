"""Typos in tenant settings are errors with a suggestion; unused parts are warnings (pure)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from models.settings import TenantSettings
from models.settings_keys import check_settings_document


def _doc(connector: dict[str, Any] | None = None, step: dict[str, Any] | None = None) -> dict:
    return {
        "tenantId": "acme",
        "connectors": [
            {"name": "Webhook", "connectorId": "erp", "host": "https://erp.example.com/r"}
            | (connector or {})
        ],
        "returnWorkflow": [
            {"name": "WebhookReturnWorkflowStep", "connectorId": "erp"} | (step or {})
        ],
    }


def test_a_clean_document_has_nothing_to_say() -> None:
    check = check_settings_document(_doc())
    assert check.errors == [] and check.warnings == []
    TenantSettings.model_validate(check.document)


@pytest.mark.parametrize(
    ("doc", "path", "suggestion"),
    [
        (_doc(connector={"bearerTokn": "t"}), "connectors.0.bearerTokn", "'bearerToken'"),
        (_doc(connector={"timout": "00:00:05"}), "connectors.0.timout", "'timeout'"),
        (_doc(step={"stopOnErorr": True}), "returnWorkflow.0.stopOnErorr", "'stopOnError'"),
        (_doc(step={"runAfterOrderSaved": True}), "returnWorkflow.0.runAfterOrderSaved", None),
        (
            _doc(connector={"customHeaders": [{"key": "X-A", "valeu": "1"}]}),
            "connectors.0.customHeaders.0.valeu",
            "'value'",
        ),
        (
            _doc(step={"properties": [{"key": "X-A", "value": "1", "keyGrup": "RequestHeaders"}]}),
            "returnWorkflow.0.properties.0.keyGrup",
            "'keyGroup'",
        ),
        (_doc() | {"returnWorkflw": []}, "returnWorkflw", "'returnWorkflow'"),
        (
            _doc(step={"name": "WebhookReturnWorkflowStp"}),
            "returnWorkflow.0.name",
            "'WebhookReturnWorkflowStep'",
        ),
        (_doc(connector={"name": "Webhok"}), "connectors.0.name", "'Webhook'"),
    ],
)
def test_each_typo_is_an_error_with_its_path_and_a_suggestion(
    doc: dict, path: str, suggestion: str | None
) -> None:
    check = check_settings_document(doc)
    matching = [e for e in check.errors if e.startswith(f"{path}:")]
    assert matching, check.errors
    assert "did you mean" in matching[0]
    if suggestion:
        assert suggestion in matching[0]


def test_keys_are_case_insensitive_and_typos_are_found_in_any_case() -> None:
    fine = check_settings_document(_doc(connector={"BearerToken": "t"}, step={"STOPONERROR": 1}))
    assert fine.errors == [] and fine.warnings == []
    typo = check_settings_document(_doc(connector={"BEARERTOKN": "t"}))
    assert typo.errors == ["connectors.0.BEARERTOKN: unknown key; did you mean 'bearerToken'?"]


def test_the_path_carries_the_documents_prefix() -> None:
    check = check_settings_document(_doc(step={"stopOnErorr": True}), prefix="[2].")
    assert check.errors[0].startswith("[2].returnWorkflow.0.stopOnErorr:")
    assert "[2].returnWorkflow.0.stopOnErorr" in check.typo_paths


def test_a_connector_id_that_matches_no_connector_is_an_error() -> None:
    check = check_settings_document(_doc(step={"connectorId": "erp-returns"}))
    assert check.errors == [
        "returnWorkflow.0.connectorId: 'erp-returns' matches no connector (connectorIds: 'erp')"
    ]
    near = _doc(connector={"connectorId": "erp-returns"}, step={"connectorId": "erp-retuns"})
    assert check_settings_document(near).errors == [
        "returnWorkflow.0.connectorId: 'erp-retuns' matches no connector "
        "(connectorIds: 'erp-returns'); did you mean 'erp-returns'?"
    ]


def test_a_connector_id_with_no_connectors_at_all() -> None:
    doc = _doc(step={"connectorId": "x"}) | {"connectors": []}
    assert check_settings_document(doc).errors == [
        "returnWorkflow.0.connectorId: 'x' matches no connector (connectorIds: none)"
    ]


@pytest.mark.parametrize("timeout", [30, "30", 999, 0.5])
def test_a_bare_number_under_1000_is_refused(timeout: object) -> None:
    check = check_settings_document(_doc(connector={"timeout": timeout}))
    assert len(check.errors) == 1
    assert check.errors[0].startswith("connectors.0.timeout: a bare ")
    assert "milliseconds" in check.errors[0] and "'00:00:30'" in check.errors[0]


@pytest.mark.parametrize("timeout", [1000, "5000", "00:00:30", "30s", "500ms"])
def test_timeouts_with_a_unit_or_from_1000_ms_are_fine(timeout: object) -> None:
    check = check_settings_document(_doc(connector={"timeout": timeout}))
    assert check.errors == []
    TenantSettings.model_validate(check.document)


OMNIUM_EXPORT = """
tenantId: acme
connectors:
  - name: Webhook
    connectorId: erp-returns
    host: https://erp.example.com/api/returns
    timeout: "00:00:30"
    isDefault: true
  - name: Klarna
    host: not a url at all
    apiKey: k
    timeout: 30
  - name: Voyado
    connectorId: crm
returnWorkflow:
  - name: SendReturnConfirmationEmailStep
    active: true
    emailTemplate: return-received
    properties: [{key: Host, value: "not a url"}]
  - name: WebhookReturnWorkflowStep
    connector: Webhook
    connectorId: erp-returns
    stopOnError: true
    lastModified: "2026-01-01"
"""


def test_an_omnium_export_publishes_with_warnings_for_what_is_not_used() -> None:
    check = check_settings_document(yaml.safe_load(OMNIUM_EXPORT))
    assert check.errors == []
    assert check.warnings == [
        "connectors.0.isDefault: not used by returnhook",
        "connectors.1 (Klarna): not used by returnhook (no return step names this connector); "
        "left out of what is published",
        "connectors.2 (Voyado): not used by returnhook (no return step names this connector); "
        "left out of what is published",
        "returnWorkflow.0 (SendReturnConfirmationEmailStep): not used by returnhook (it runs "
        "only WebhookReturnWorkflowStep); kept as a placeholder so step numbers match",
        "returnWorkflow.1.lastModified: not used by returnhook",
    ]
    settings = TenantSettings.model_validate(check.document)
    assert [c.connector_id for c in settings.connectors] == ["erp-returns"]
    # The other step stays, so ours is still step 1 as in Omnium, and it is never run.
    assert [s.name for s in settings.return_workflow] == [
        "SendReturnConfirmationEmailStep",
        "WebhookReturnWorkflowStep",
    ]
    assert settings.return_workflow[0].properties == []


def test_a_connector_named_by_a_step_is_checked_even_with_another_name() -> None:
    doc = _doc(step={"connector": "ErpHook"}, connector={"name": "ErpHook", "bearerTokn": "t"})
    check = check_settings_document(doc)
    assert check.errors == ["connectors.0.bearerTokn: unknown key; did you mean 'bearerToken'?"]


def test_far_unknown_top_level_keys_are_left_to_the_model() -> None:
    check = check_settings_document(_doc() | {"unexpected": 1})
    assert check.errors == [] and check.warnings == []
    assert "unexpected" in check.document


def test_the_input_document_is_not_changed() -> None:
    doc = yaml.safe_load(OMNIUM_EXPORT)
    before = yaml.safe_dump(doc)
    check_settings_document(doc)
    assert yaml.safe_dump(doc) == before


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("valeu", "value", True),
        ("hots", "host", True),
        ("hst", "host", True),
        ("hostx", "host", True),
        ("url", "host", False),
        ("abcd", "dcba", False),
    ],
)
def test_one_edit(a: str, b: str, expected: bool) -> None:
    from models.settings_keys import _one_edit

    assert _one_edit(a, b) is expected


@pytest.mark.parametrize(
    "not_a_typo",
    ["WebhookWorkflowStep", "ErpWebhookStep", "SetOrderStatusStep"],
)
def test_other_omnium_step_kinds_are_not_taken_for_typos(not_a_typo: str) -> None:
    check = check_settings_document(_doc(step={"name": not_a_typo}))
    assert check.errors == []
    assert check.warnings[0].startswith(f"returnWorkflow.0 ({not_a_typo}): not used")
