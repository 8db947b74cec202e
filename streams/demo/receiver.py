"""A small webhook receiver that answers like a real ERP would, for the demo and docker-compose.

Each route shows one behaviour of the Webhook Return Workflow Step (SPEC §6): accept, enrich the
order, reject the return, fail once and then succeed, and a wrong URL. Answers use Omnium's
``OmniumOrderWorkflowExecutionPatchResult`` in camelCase, as a .NET endpoint would send it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

ENRICH_TAG = "erp-synced"
ENRICH_PROPERTY = "ErpReturnId"
REJECT_REASON = "Return window expired"
# Enough for any demo or compose run; old keys are forgotten first so memory stays bounded.
MAX_REMEMBERED_KEYS = 10_000

_SEEN_KEYS = web.AppKey("seen_idempotency_keys", OrderedDict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _result(status: str, *, cancel: bool = False, reason: str | None = None) -> dict[str, Any]:
    """One entry of ``orderActionExecutionResults``."""
    return {"actionStatus": status, "cancelWorkflow": cancel, "errorReason": reason}


def _field(body: dict[str, Any], name: str) -> Any:
    """Reads a field case-insensitively: Omnium mixes ``Value`` and ``value``."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return None


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 a webhook author would want to see."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def accept(request: web.Request) -> web.Response:
    """Success with no changes: Omnium reads an empty 200 body that way."""
    return web.Response(status=200)


async def enrich(request: web.Request) -> web.Response:
    """Success that updates the order: a tag and the ERP's return id, keeping what is there.

    An order patch replaces whole lists, so the existing tags and properties are sent back too.
    """
    body = await _json_object(request)
    order = _field(body, "Value")
    if not isinstance(order, dict):
        raise web.HTTPBadRequest(text="Value must be the order object")
    return_id = _field(body, "ReturnOrderFormId")
    if not return_id:
        raise web.HTTPBadRequest(text="ReturnOrderFormId is required")

    tags = [tag for tag in (_field(order, "tags") or []) if isinstance(tag, str)]
    if ENRICH_TAG not in tags:
        tags.append(ENRICH_TAG)
    properties = [
        prop
        for prop in (_field(order, "properties") or [])
        if isinstance(prop, dict) and _field(prop, "key") != ENRICH_PROPERTY
    ]
    properties.append({"key": ENRICH_PROPERTY, "value": f"RMA-{return_id}"})

    return web.json_response(
        {
            "orderActionExecutionResults": [_result("Success")],
            "orderPatch": {"tags": tags, "properties": properties},
        }
    )


async def reject(request: web.Request) -> web.Response:
    """A business refusal: HTTP succeeds, the answer cancels the workflow."""
    return web.json_response(
        {
            "orderActionExecutionResults": [
                _result("Error", cancel=True, reason=REJECT_REASON),
            ],
            "orderPatch": None,
        }
    )


async def flaky(request: web.Request) -> web.Response:
    """Fails the first delivery of each event, to show retries and the stable Idempotency-Key.

    Remembering the key (not trusting ``X-Delivery-Count`` alone) is what a real endpoint does:
    a redelivery after a worker crash starts counting at 1 again but carries the same key.
    """
    key = request.headers.get("Idempotency-Key")
    if key:
        seen: OrderedDict[str, None] = request.app[_SEEN_KEYS]
        first = key not in seen
        seen[key] = None
        seen.move_to_end(key)
        while len(seen) > MAX_REMEMBERED_KEYS:
            seen.popitem(last=False)
    else:
        first = _attempt(request) in ("1", "?")
    if first:
        return web.json_response(
            {"error": "temporarily unavailable"}, status=503, headers={"Retry-After": "1"}
        )
    return web.json_response({})


async def missing(request: web.Request) -> web.Response:
    """A wrong URL: Omnium fails at once on 404, without retrying."""
    return web.Response(status=404, text="no such return endpoint")


async def health(request: web.Request) -> web.Response:
    """For docker-compose's healthcheck and the demo's wait-until-ready."""
    return web.Response(text="ok")


def _attempt(request: web.Request) -> str:
    return request.headers.get("X-Delivery-Count", "?")


@web.middleware
async def _log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request; headers are never logged because they carry credentials."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info(
            "%s %s -> %s (attempt %s)", request.method, request.path, status, _attempt(request)
        )


def build_app() -> web.Application:
    """The receiver's routes; each app has its own memory of idempotency keys."""
    app = web.Application(middlewares=[_log_requests])
    app[_SEEN_KEYS] = OrderedDict()
    app.add_routes(
        [
            web.post("/returns/accept", accept),
            web.post("/returns/enrich", enrich),
            web.post("/returns/reject", reject),
            web.post("/returns/flaky", flaky),
            web.post("/returns/missing", missing),
            web.get("/health", health),
        ]
    )
    return app


async def serve(host: str = "127.0.0.1", port: int = 8080) -> web.AppRunner:
    """Starts the receiver and returns its runner; the caller awaits ``runner.cleanup()``.

    aiohttp's access log is off: its default format logs request headers, and the middleware
    already writes one safe line per request. Port 0 picks a free port (see ``runner.addresses``).
    """
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
