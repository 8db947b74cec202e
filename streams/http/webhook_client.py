"""The HTTP shell: one aiohttp session per worker, the step's retry promise, nothing else.

Which statuses are final and how a body is read are decided here; what they mean for the order
is decided by ``streams.core.outcome``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import orjson

from models.delivery import AttemptResult, Delivery, ErrorClass
from streams.core.request import WebhookRequest
from streams.core.response import EXCERPT_CHARS, answer_excerpt, parse_response
from streams.http.egress import EgressPolicy, EgressRefused, GuardedConnector, check_literal
from streams.http.signing import signature_headers

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 5.0, 15.0)
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
FINAL_STATUSES = frozenset({400, 404})
#: Bytes read of a non-2xx answer: enough for the start that goes into the reason.
ERROR_BODY_BYTES = EXCERPT_CHARS * 4
_SENSITIVE_HEADER = ("authorization", "key", "token", "secret", "cookie", "password", "signature")

# (tenant, attempt number, HTTP status or None, error or None, seconds) after every attempt
AttemptObserver = Callable[[str, int, int | None, str | None, float], None]
# (attempts made, when the next one is due in epoch seconds) before every wait for a retry
RetryObserver = Callable[[int, float], None]


class ResponseTooLarge(Exception):
    pass


class UnusableUrl(Exception):
    """A URL or request the HTTP client refuses (``http://h:99999/``): final, never retried."""


class WebhookClient:
    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_in_flight: int = 256,
        max_in_flight_per_host: int = 64,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_attempt: AttemptObserver | None = None,
        egress: EgressPolicy | None = None,
        clock: Callable[[], float] = time.time,
        park: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        """``egress`` None calls anything (library use); the worker always passes its policy.

        ``park``: entered while a delivery waits on something other than the worker's own
        capacity (a retry's delay; a webhook host at its limit with a limit's worth of others
        already waiting), so the worker's intake does not count it as work under way
        (KeyedLanes.parked)."""
        self.retry_delays = tuple(retry_delays)
        self.max_response_bytes = max_response_bytes
        self.max_in_flight = max_in_flight
        self.max_in_flight_per_host = max_in_flight_per_host
        self._sleep = sleep
        self._on_attempt = on_attempt
        self.egress = egress
        self._clock = clock
        self._park = park
        self._session: aiohttp.ClientSession | None = None
        # Slots are held for one attempt only: a retry's wait must not keep other orders out.
        self._slots = asyncio.Semaphore(max_in_flight)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._host_queue: dict[str, int] = {}
        """Deliveries waiting for a slot, per origin."""
        self.running: dict[str, int] = {}
        """Attempts in flight per origin (scheme://host:port), for metrics."""

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    async def start(self) -> None:
        if self._session is None:
            limits = {"limit": self.max_in_flight, "limit_per_host": self.max_in_flight_per_host}
            connector = (
                GuardedConnector(self.egress, **limits)
                if self.egress is not None
                else aiohttp.TCPConnector(**limits)
            )
            # Our own per-attempt timeout applies; the session's default 5 minutes must not.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                trust_env=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> WebhookClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def deliver(
        self,
        request: WebhookRequest,
        *,
        first_attempt: int = 1,
        not_before: float | None = None,
        on_wait: RetryObserver | None = None,
    ) -> Delivery:
        """Posts until a final answer or the attempts run out; never raises for HTTP trouble.

        ``first_attempt``/``not_before`` continue a delivery another worker began (its progress
        record): the next attempt keeps its number (``X-Delivery-Count`` never goes back) and
        its due time (epoch seconds). ``on_wait`` hears of every retry before its wait, so
        the caller can record where the delivery stands.
        """
        if self._session is None:
            await self.start()
        started = time.monotonic()
        attempts = min(request.max_attempts, self.max_attempts)
        last_status: int | None = None
        reason = "not attempted"
        try:
            _ = request.origin  # parses the URL as the client will; a bad one must not escape
        except (ValueError, TypeError) as exc:
            return Delivery(
                ok=False,
                attempts=0,
                duration_ms=_ms_since(started),
                reason=f"not sent: the client cannot use the URL ({exc})",
            )
        if first_attempt > attempts:
            return Delivery(
                ok=False,
                attempts=first_attempt - 1,
                reason=f"all {attempts} attempts were made before the partition moved; giving up",
            )
        if not_before is not None:
            delay = not_before - self._clock()
            if delay > 0:
                await self._wait(delay)
        log: list[AttemptResult] = []
        said: str | None = None
        for attempt in range(max(first_attempt, 1), attempts + 1):
            began, clock_began = time.monotonic(), self._clock()
            try:
                status, body, error, error_class = await self._attempt(request, attempt)
            except (EgressRefused, UnusableUrl) as exc:
                log.append(
                    AttemptResult(
                        attempt=attempt,
                        started_at=clock_began,
                        duration_ms=_ms_since(began),
                        error_class="egress_refused"
                        if isinstance(exc, EgressRefused)
                        else "unusable_url",
                        error=str(exc),
                    )
                )
                return Delivery(
                    ok=False,
                    attempts=attempt,
                    duration_ms=_ms_since(started),
                    reason=f"{exc} (not retried)",
                    attempt_log=log,
                )
            result = AttemptResult(
                attempt=attempt,
                started_at=clock_began,
                duration_ms=_ms_since(began),
                http_status=status,
                error_class=error_class,
                error=error,
            )
            log.append(result)
            last_status = status
            if status is not None and 200 <= status < 300:
                parsed = parse_response(body) if error is None else error
                ok = not isinstance(parsed, str)
                if not ok and result.error_class is None:
                    result.error_class = "bad_response" if _is_json(body) else "body_not_json"
                    result.error = str(parsed)
                return Delivery(
                    ok=ok,
                    attempts=attempt,
                    http_status=status,
                    duration_ms=_ms_since(started),
                    result=parsed if ok else None,
                    reason=None if ok else parsed,
                    attempt_log=log,
                )
            reason = error or f"the webhook answered HTTP {status}"
            said = answer_excerpt(body, request_secrets(request)) if error is None else None
            if status in FINAL_STATUSES:
                return Delivery(
                    ok=False,
                    attempts=attempt,
                    http_status=status,
                    duration_ms=_ms_since(started),
                    reason=f"{reason} (not retried)" + (f": {said}" if said else ""),
                    attempt_log=log,
                )
            if attempt < attempts:
                delay = self.retry_delays[attempt - 1]
                result.retry_at = self._clock() + delay
                if on_wait is not None:
                    on_wait(attempt, self._clock() + delay)
                await self._wait(delay)
        return Delivery(
            ok=False,
            attempts=attempts,
            http_status=last_status,
            duration_ms=_ms_since(started),
            reason=f"{reason} on attempt {attempts} of {attempts}; giving up"
            + (f": {said}" if said else ""),
            attempt_log=log,
        )

    async def _attempt(
        self, request: WebhookRequest, attempt: int
    ) -> tuple[int | None, bytes, str | None, ErrorClass | None]:
        """One POST: (status, body, error, error class); error set when no usable answer."""
        origin = request.origin
        host_slots = self._host_slots.get(origin)
        if host_slots is None:
            host_slots = self._host_slots[origin] = asyncio.Semaphore(self.max_in_flight_per_host)
        if host_slots.locked():
            await self._queue_for(origin, host_slots)
        else:
            await host_slots.acquire()
        try:
            async with self._slots:
                self.running[origin] = self.running.get(origin, 0) + 1
                started = time.monotonic()
                try:
                    status, body, error, error_class = await self._post(request, attempt)
                finally:
                    self.running[origin] -= 1
                    if not self.running[origin]:
                        del self.running[origin]
        finally:
            host_slots.release()
        if self._on_attempt is not None:
            self._on_attempt(request.tenant_id, attempt, status, error, time.monotonic() - started)
        return status, body, error, error_class

    async def _queue_for(self, origin: str, host_slots: asyncio.Semaphore) -> None:
        """Waits for a slot of a host at its limit. Beyond one limit's worth of waiters the host
        has a backlog of its own: those wait parked (see ``park``)."""
        queued = self._host_queue.get(origin, 0)
        self._host_queue[origin] = queued + 1
        try:
            if queued >= self.max_in_flight_per_host and self._park is not None:
                async with self._park():
                    await host_slots.acquire()
            else:
                await host_slots.acquire()
        finally:
            left = self._host_queue[origin] - 1
            if left:
                self._host_queue[origin] = left
            else:
                del self._host_queue[origin]

    async def _wait(self, delay: float) -> None:
        if self._park is None:
            await self._sleep(delay)
            return
        async with self._park():
            await self._sleep(delay)

    @property
    def calls_running(self) -> int:
        return sum(self.running.values())

    async def _post(
        self, request: WebhookRequest, attempt: int
    ) -> tuple[int | None, bytes, str | None, ErrorClass | None]:
        assert self._session is not None
        if self.egress is not None:
            check_literal(self.egress, request.hostname)
        headers = dict(request.headers)
        headers["X-Delivery-Count"] = str(attempt)
        if request.signing_secrets:
            headers.update(
                signature_headers(
                    request.delivery_id, int(self._clock()), request.body, request.signing_secrets
                )
            )
        try:
            async with asyncio.timeout(request.timeout_s):
                async with self._session.post(
                    request.parsed_url, data=request.body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    if 200 <= status < 300:
                        body = await self._read_capped(response)
                    else:  # only its start, for the reason
                        body = await response.content.read(ERROR_BODY_BYTES)
        except TimeoutError:
            error = f"no answer within {request.timeout_s:g} s"
            status, body, error_class = None, b"", "timeout"
        except ResponseTooLarge:
            too_large = f"the answer is larger than {self.max_response_bytes} bytes"
            return status, b"", too_large, "response_too_large"
        except aiohttp.InvalidURL as exc:
            raise UnusableUrl(f"the client cannot use the URL ({exc})") from None
        except (ValueError, TypeError) as exc:  # aiohttp building the request (URL, headers)
            raise UnusableUrl(f"the client cannot build the request ({exc})") from None
        except aiohttp.ClientError as exc:
            refused = _egress_cause(exc)
            if refused is not None:
                raise refused from None
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            status, body, error_class = None, b"", _connection_error_class(exc)
        else:
            error, error_class = None, None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "webhook attempt %d/%d to %s: %s",
                attempt,
                request.max_attempts,
                request.origin,
                error or f"HTTP {status}",
                extra={"delivery_id": request.delivery_id},
            )
        return status, body, error, error_class

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """Reads no more than the cap: a hostile endpoint must not fill our memory."""
        cap = self.max_response_bytes
        if response.content_length is not None and response.content_length > cap:
            raise ResponseTooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > cap:
                raise ResponseTooLarge
            chunks.append(chunk)
        return b"".join(chunks)


def request_secrets(request: WebhookRequest) -> list[str]:
    """What an endpoint might echo that must not reach a reason: credentials the request sent."""
    found = list(request.signing_secrets)
    for name, value in request.headers.items():
        if any(word in name.lower() for word in _SENSITIVE_HEADER):
            found.append(value)
            found.extend(value.split(" ", 1)[1:])  # the token after "Bearer " / "Basic "
    return found


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def _connection_error_class(exc: aiohttp.ClientError) -> ErrorClass:
    """``connection_refused`` when nothing listens there; any other transport trouble is
    ``connection_error`` (reset, dropped, DNS, TLS)."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
        exc.os_error, ConnectionRefusedError
    ):
        return "connection_refused"
    return "connection_error"


def _egress_cause(exc: BaseException) -> EgressRefused | None:
    """aiohttp wraps resolver errors; find our refusal in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EgressRefused):
            return seen
        for attr in ("os_error", "__cause__", "__context__"):
            nested = getattr(seen, attr, None)
            if isinstance(nested, EgressRefused):
                return nested
        seen = seen.__cause__ or seen.__context__
    return None
