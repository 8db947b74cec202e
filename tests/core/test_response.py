"""Reading the webhook's 2xx body (streams/core/response.py, models/webhook.py, SPEC §6)."""

from __future__ import annotations

import orjson
import pytest

from models.webhook import ActionResult, PatchResult, Severity
from streams.core.response import parse_response


def _ok(body: bytes | str) -> PatchResult:
    result = parse_response(body.encode() if isinstance(body, str) else body)
    assert isinstance(result, PatchResult), result
    return result


def _fail(body: bytes | str) -> str:
    result = parse_response(body.encode() if isinstance(body, str) else body)
    assert isinstance(result, str), result
    return result


# empty answers mean success ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\t ", b"{}", b"null", b" null ", b"{ }"])
def test_empty_answers_are_success_with_no_changes(body: bytes) -> None:
    result = _ok(body)
    assert result.order_action_execution_results == []
    assert result.order_patch is None


@pytest.mark.parametrize(
    "body",
    [
        {"orderActionExecutionResults": None, "orderPatch": None},
        {"orderActionExecutionResults": [], "orderPatch": {}},
        {"somethingElse": 1},
    ],
)
def test_null_and_empty_fields(body: dict) -> None:
    result = _ok(orjson.dumps(body))
    assert result.order_action_execution_results == []
    assert not result.order_patch


# shapes and casings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results_key", "patch_key", "status_key", "cancel_key", "reason_key"),
    [
        (
            "orderActionExecutionResults",
            "orderPatch",
            "actionStatus",
            "cancelWorkflow",
            "errorReason",
        ),
        (
            "OrderActionExecutionResults",
            "OrderPatch",
            "ActionStatus",
            "CancelWorkflow",
            "ErrorReason",
        ),
        (
            "orderactionexecutionresults",
            "orderpatch",
            "actionstatus",
            "cancelworkflow",
            "errorreason",
        ),
        (
            "ORDERACTIONEXECUTIONRESULTS",
            "ORDERPATCH",
            "ACTIONSTATUS",
            "CANCELWORKFLOW",
            "ERRORREASON",
        ),
    ],
)
@pytest.mark.parametrize("as_list", [True, False])
def test_list_or_single_object_in_any_casing(
    results_key: str,
    patch_key: str,
    status_key: str,
    cancel_key: str,
    reason_key: str,
    as_list: bool,
) -> None:
    item = {status_key: "Warning", cancel_key: True, reason_key: "stock mismatch"}
    body = {results_key: [item] if as_list else item, patch_key: {"Tags": ["checked"]}}
    result = _ok(orjson.dumps(body))
    assert result.order_action_execution_results == [
        ActionResult(action_status="Warning", cancel_workflow=True, error_reason="stock mismatch")
    ]
    assert result.order_patch == {"Tags": ["checked"]}


def test_several_results_are_kept_in_order() -> None:
    body = {
        "orderActionExecutionResults": [
            {"actionStatus": "Success"},
            {"actionStatus": "Error", "errorReason": "x"},
        ]
    }
    statuses = [r.action_status for r in _ok(orjson.dumps(body)).order_action_execution_results]
    assert statuses == ["Success", "Error"]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("Success", "Success"),
        ("success", "Success"),
        ("WARNING", "Warning"),
        ("error", "Error"),
        (None, None),
        ("", None),
    ],
)
def test_action_status_any_case(sent: str | None, expected: str | None) -> None:
    body = {"orderActionExecutionResults": {"actionStatus": sent}}
    assert _ok(orjson.dumps(body)).order_action_execution_results[0].action_status == expected


@pytest.mark.parametrize(("sent", "expected"), [(None, False), (False, False), (True, True)])
def test_cancel_workflow_null_is_false(sent: bool | None, expected: bool) -> None:
    body = {"orderActionExecutionResults": {"cancelWorkflow": sent}}
    assert _ok(orjson.dumps(body)).order_action_execution_results[0].cancel_workflow is expected


def test_exact_case_key_wins_over_other_casing() -> None:
    body = b'{"OrderPatch": {"status": "wrong"}, "orderPatch": {"status": "right"}}'
    assert _ok(body).order_patch == {"status": "right"}


def test_non_patchable_fields_are_not_a_failure() -> None:
    assert _ok(b'{"orderPatch": {"id": "O-2", "status": "X"}}').order_patch == {
        "id": "O-2",
        "status": "X",
    }


def test_origin_is_accepted() -> None:
    assert _ok(b'{"OrderPatch": {"Origin": "Store"}}').order_patch == {"Origin": "Store"}


def test_severity_ranking() -> None:
    assert Severity.Error > Severity.Warning > Severity.Success


# failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"not json", b"<html>502 Bad Gateway</html>", b'{"orderPatch": ', b"\xff\xfe", b"{'a': 1}"],
)
def test_invalid_json_is_a_failure(body: bytes) -> None:
    reason = _fail(body)
    assert "not JSON" in reason


def test_invalid_json_reason_previews_the_body() -> None:
    assert "<html>502" in _fail(b"<html>502 Bad Gateway</html>")
    long = _fail(b"x" * 500)
    assert "…" in long and "x" * 80 in long and "x" * 81 not in long


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[]", "list"),
        (b'[{"actionStatus": "Success"}]', "list"),
        (b'"ok"', "str"),
        (b"42", "int"),
        (b"true", "bool"),
        (b"1.5", "float"),
    ],
)
def test_json_that_is_not_an_object_is_a_failure(body: bytes, kind: str) -> None:
    reason = _fail(body)
    assert "not an object" in reason and f"a {kind}" in reason
    assert "OmniumOrderWorkflowExecutionPatchResult" in reason


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"orderActionExecutionResults": "Success"}, "orderActionExecutionResults"),
        ({"orderActionExecutionResults": [5]}, "orderActionExecutionResults.0"),
        (
            {"orderActionExecutionResults": {"actionStatus": "Fine"}},
            "orderActionExecutionResults.0.actionStatus",
        ),
        (
            {"orderActionExecutionResults": {"actionStatus": 1}},
            "orderActionExecutionResults.0.actionStatus",
        ),
        (
            {"orderActionExecutionResults": {"cancelWorkflow": "perhaps"}},
            "orderActionExecutionResults.0.cancelWorkflow",
        ),
        (
            {"orderActionExecutionResults": {"errorReason": ["a"]}},
            "orderActionExecutionResults.0.errorReason",
        ),
        ({"OrderPatch": ["status", "X"]}, "orderPatch"),
        ({"orderPatch": "status=X"}, "orderPatch"),
        ({"orderPatch": {"status": 5}}, "orderPatch.status"),
        ({"orderPatch": {"Tags": "vip"}}, "orderPatch.tags"),
        ({"orderPatch": {"properties": [{"value": "no key"}]}}, "orderPatch.properties[0].key"),
        ({"orderPatch": {"errors": ["x"]}}, "orderPatch.errors[0]"),
    ],
)
def test_wrong_field_types_are_a_failure_naming_the_field(body: dict, path: str) -> None:
    reason = _fail(orjson.dumps(body))
    assert reason.startswith(
        "the webhook's answer is not an OmniumOrderWorkflowExecutionPatchResult: "
    )
    assert path in reason


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"errors": [{"key": 5}]}, "orderPatch.errors.0.key"),
        ({"errors": [{"key": "K", "message": {"text": "m"}}]}, "orderPatch.errors.0.message"),
        ({"properties": [{"key": "K", "keyGroup": 3}]}, "orderPatch.properties.0.keyGroup"),
    ],
)
def test_patch_the_next_step_could_not_read_is_a_failure(patch: dict, path: str) -> None:
    """The patched order is read again by the next step; a patch it cannot read is a bad body."""
    reason = _fail(orjson.dumps({"orderPatch": patch}))
    assert path in reason


def test_boolean_like_cancel_workflow_strings_are_accepted() -> None:
    body = {"orderActionExecutionResults": {"cancelWorkflow": "true"}}
    assert _ok(orjson.dumps(body)).order_action_execution_results[0].cancel_workflow is True


def test_an_answer_excerpt_is_the_start_of_the_text_on_one_line() -> None:
    from streams.core.response import answer_excerpt

    assert answer_excerpt(b"ReturnOrderFormId is required") == "ReturnOrderFormId is required"
    assert answer_excerpt(b"line one\r\n\tline\x00two\x1b[31m") == "line one line two [31m"
    assert answer_excerpt(b"") is None and answer_excerpt(b" \n ") is None
    assert answer_excerpt("caf\u00e9".encode()) == "caf\u00e9"
    assert answer_excerpt(b"\xff\xfeok") == "\ufffd\ufffdok"


def test_an_answer_excerpt_is_capped() -> None:
    from streams.core.response import EXCERPT_CHARS, answer_excerpt

    text = answer_excerpt(b"x" * 5000)
    assert text is not None and len(text) == EXCERPT_CHARS and text.endswith("\u2026")
    assert answer_excerpt(b"abcdef", limit=4) == "abc\u2026"


def test_an_answer_excerpt_masks_what_the_request_carried() -> None:
    from streams.core.response import answer_excerpt

    body = b'{"error": "bad token", "echo": "Bearer s3cr3t-token", "key": "abc123"}'
    text = answer_excerpt(body, ["Bearer s3cr3t-token", "s3cr3t-token", "abc123", "ab"])
    assert text == '{"error": "bad token", "echo": "***", "key": "***"}'
