"""A real HTTP server standing in for a tenant's webhook, scripted per test.

Tests assert on what actually went over the wire (headers, bodies, retries, concurrency), so
this is an aiohttp server on 127.0.0.1, not a mock of the client.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

DELIVERY_COUNT_HEADER = "X-Delivery-Count"


@dataclass
class Reply:
    """How to answer one request; `drop` closes the TCP connection instead (after `delay`).

    `hold`: the answer waits until the event is set (then `delay` runs), so a test can keep
    calls in flight for as long as it needs them, with no guess at how long that is.
    """

    status: int = 200
    body: bytes | dict | list | None = None
    delay: float = 0.0
    hold: asyncio.Event | None = None
    drop: bool = False
    headers: dict[str, str] | None = None  # e.g. Retry-After


@dataclass
class RecordedRequest:
    """One request as received; times are `time.monotonic()` seconds."""

    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    attempt: int | None
    received_at: float
    finished_at: float | None = None
    status: int | None = None  # what was answered; None when dropped or still in flight

    def json(self) -> Any:
        return orjson.loads(self.body)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup (`headers` keeps the sender's spelling)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


Scenario = Reply | Callable[[RecordedRequest], Reply]


class _Route:
    """The replies of one path: a sequence used one per request, its last one repeating."""

    def __init__(self, replies: tuple[Scenario, ...]) -> None:
        self._replies: Iterator[Scenario] = itertools.chain(
            replies[:-1], itertools.repeat(replies[-1])
        )

    def next(self, request: RecordedRequest) -> Reply:
        scenario = next(self._replies)
        return scenario(request) if callable(scenario) else scenario


class RecordingReceiver:
    """Records every request (404s for unknown paths too) and answers per `route`."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self.requests: list[RecordedRequest] = []
        self.max_concurrent = 0
        self._in_flight = 0
        self._routes: dict[str, _Route] = {}
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Short shutdown: a test ending with delayed requests in flight must not wait for them.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RecordingReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("receiver not started")
        return f"http://{self.host}:{self.port}"

    @property
    def in_flight(self) -> int:
        """Requests received and not yet answered (held, delayed or being answered)."""
        return self._in_flight

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(self, path: str, *replies: Scenario) -> None:
        """Script `path` (replacing any earlier script); no replies means always 200."""
        self._routes[path] = _Route(replies or (Reply(),))

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    async def wait_for_requests(
        self,
        count: int,
        *,
        path: str | None = None,
        timeout: float = 20.0,
    ) -> list[RecordedRequest]:
        """Wait until `count` requests (to `path`, if given) have arrived; TimeoutError if not."""

        def matching() -> list[RecordedRequest]:
            return self.requests if path is None else self.requests_for(path)

        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"receiver got {len(matching())} of {count} requests"
                f"{f' to {path}' if path else ''} within {timeout:g} s"
            ) from None
        return list(matching())

    def max_concurrent_by(self, key: Callable[[RecordedRequest], str]) -> dict[str, int]:
        """Most requests in flight at once per key (e.g. per order id); key errors propagate."""
        events: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for request in self.requests:
            end = request.finished_at if request.finished_at is not None else math.inf
            events[key(request)] += [(request.received_at, 1), (end, -1)]
        result: dict[str, int] = {}
        for name, points in events.items():
            # At equal times an end sorts before a start: back-to-back is not concurrent.
            running = peak = 0
            for _, change in sorted(points):
                running += change
                peak = max(peak, running)
            result[name] = peak
        return result

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received_at = time.monotonic()
        body = await request.read()
        recorded = RecordedRequest(
            path=request.path,
            method=request.method,
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.raw_headers},
            body=body,
            attempt=_attempt(request.headers.get(DELIVERY_COUNT_HEADER)),
            received_at=received_at,
        )
        self._in_flight += 1
        self.max_concurrent = max(self.max_concurrent, self._in_flight)
        async with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        try:
            route = self._routes.get(recorded.path)
            reply = route.next(recorded) if route else Reply(status=404, body=b"no such route")
            if reply.hold is not None:
                await reply.hold.wait()
            if reply.delay > 0:
                await asyncio.sleep(reply.delay)
            if reply.drop:
                _drop_connection(request)
                raise asyncio.CancelledError  # aiohttp ends the handler without writing
            recorded.status = reply.status
            return _response(reply)
        finally:
            recorded.finished_at = time.monotonic()
            self._in_flight -= 1


def _attempt(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _response(reply: Reply) -> web.Response:
    headers = dict(reply.headers or {})
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    if isinstance(reply.body, bytes):
        return web.Response(status=reply.status, body=reply.body, headers=headers)
    headers.setdefault("Content-Type", "application/json")
    return web.Response(status=reply.status, body=orjson.dumps(reply.body), headers=headers)


def _drop_connection(request: web.Request) -> None:
    """Close the socket so the client sees a disconnect, not an HTTP answer."""
    transport = request.transport
    if transport is not None:
        transport.close()
