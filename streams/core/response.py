"""Reading the webhook's 2xx body. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson
from pydantic import ValidationError

from models.order import OrderView
from models.webhook import PatchResult
from streams.core.patching import PatchShapeError, normalize_patch

_EMPTY = PatchResult()
_NOT_A_RESULT = "the webhook's answer is not an OmniumOrderWorkflowExecutionPatchResult"


def parse_response(body: bytes) -> PatchResult | str:
    """The patch result, or why the body is not one (a 2xx like that is a failure, not retried)."""
    if not body.strip():
        return _EMPTY
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return f"the webhook answered with a body that is not JSON ({exc}; {_preview(body)})"
    if data is None:
        return _EMPTY
    if not isinstance(data, dict):
        return (
            "the webhook answered with JSON that is not an object "
            f"(a {type(data).__name__}); expected OmniumOrderWorkflowExecutionPatchResult"
        )
    try:
        result = PatchResult.model_validate(data)
    except ValidationError as exc:
        return f"{_NOT_A_RESULT}: {describe(exc)}"
    try:
        patch, _ = normalize_patch(result.order_patch or {})
        # The next step reads the patched order through OrderView: a patch it cannot read
        # (``errors: [{"key": 5}]``) is as bad an answer as a wrong shape, not a later crash.
        if patch:
            OrderView.of(patch)
    except PatchShapeError as exc:
        return f"{_NOT_A_RESULT}: {exc}"
    except ValidationError as exc:
        return f"{_NOT_A_RESULT}: {describe(exc, prefix='orderPatch.')}"
    return result


def describe(exc: ValidationError, prefix: str = "") -> str:
    """Each bad field as ``path: problem``, the form every error message here uses.

    ``prefix`` goes in front of every path (``order.``), not just the first one.
    """
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors()
    )


def _preview(body: bytes, limit: int = 80) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return f"starts {text!r}" + ("…" if len(body) > limit else "")


#: How much of a failed answer goes into the reason (order-events, the order's error entry).
EXCERPT_CHARS = 200
_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\s]+")


def answer_excerpt(
    body: bytes, secrets: Iterable[str] = (), limit: int = EXCERPT_CHARS
) -> str | None:
    """The start of an endpoint's answer, fit for the order history (Omnium shows it there).

    Control characters and runs of whitespace become one space, ``secrets`` (what the request
    carried: tokens, keys) are masked in case the endpoint echoes them, and the text is capped.
    """
    text = _CONTROL_RUN.sub(" ", body[: limit * 4].decode("utf-8", "replace")).strip()
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
