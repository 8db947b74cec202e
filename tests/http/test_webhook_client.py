"""The HTTP shell against a real aiohttp server on 127.0.0.1 (tests/receiver.py)."""

import asyncio

import pytest

from streams.core.request import WebhookRequest
from streams.http.webhook_client import DEFAULT_RETRY_DELAYS, WebhookClient
from streams.processes.ports import free_port
from tests.receiver import RecordingReceiver, Reply


def request(url: str, *, timeout_s: float = 5.0, max_attempts: int = 4) -> WebhookRequest:
    return WebhookRequest(
        url=url,
        headers={"Idempotency-Key": "d-1", "Content-Type": "application/json"},
        body=b'{"Value": {}}',
        timeout_s=timeout_s,
        max_attempts=max_attempts,
        delivery_id="d-1",
    )


def fast_client(**kwargs) -> WebhookClient:
    return WebhookClient(retry_delays=(0.01, 0.01, 0.01), **kwargs)


def test_the_default_schedule_is_the_steps_promise() -> None:
    client = WebhookClient()
    assert DEFAULT_RETRY_DELAYS == (1.0, 5.0, 15.0)
    assert client.retry_delays == (1.0, 5.0, 15.0)
    assert client.max_attempts == 4


async def test_default_schedule_waits_1_5_15_seconds(receiver: RecordingReceiver) -> None:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    receiver.route("/down", Reply(status=503))
    async with WebhookClient(sleep=record_sleep) as client:
        delivery = await client.deliver(request(receiver.url("/down")))
    assert waits == [1.0, 5.0, 15.0]
    assert delivery.attempts == 4
    assert not delivery.ok
    assert [r.attempt for r in receiver.requests_for("/down")] == [1, 2, 3, 4]


async def test_success_parses_the_body(receiver: RecordingReceiver) -> None:
    receiver.route("/ok", Reply(body={"orderPatch": {"status": "Done"}}))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/ok")))
    assert delivery.ok and delivery.http_status == 200 and delivery.attempts == 1
    assert delivery.result is not None
    assert delivery.result.order_patch == {"status": "Done"}
    sent = receiver.requests_for("/ok")[0]
    assert sent.header("X-Delivery-Count") == "1"
    assert sent.header("Idempotency-Key") == "d-1"


async def test_a_retry_that_recovers(receiver: RecordingReceiver) -> None:
    receiver.route("/flaky", Reply(status=500), Reply(status=502), Reply(status=200))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/flaky")))
    assert delivery.ok and delivery.attempts == 3
    sent = receiver.requests_for("/flaky")
    assert [r.attempt for r in sent] == [1, 2, 3]
    assert {r.header("Idempotency-Key") for r in sent} == {"d-1"}


@pytest.mark.parametrize("status", [400, 404])
async def test_400_and_404_are_final(receiver: RecordingReceiver, status: int) -> None:
    receiver.route("/final", Reply(status=status))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/final")))
    assert not delivery.ok
    assert delivery.attempts == 1 and delivery.http_status == status
    assert "not retried" in (delivery.reason or "")
    assert len(receiver.requests_for("/final")) == 1


@pytest.mark.parametrize("status", [301, 302, 401, 403, 409, 429, 500, 503])
async def test_other_non_success_statuses_are_retried(
    receiver: RecordingReceiver, status: int
) -> None:
    receiver.route("/no", Reply(status=status, headers={"Location": "http://127.0.0.1:9/"}))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/no")))
    assert not delivery.ok and delivery.attempts == 4 and delivery.http_status == status
    assert len(receiver.requests_for("/no")) == 4  # redirects are not followed


async def test_timeouts_are_retried(receiver: RecordingReceiver) -> None:
    receiver.route("/slow", Reply(delay=1.0), Reply(delay=1.0), Reply(status=200))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/slow"), timeout_s=0.2))
    assert delivery.ok and delivery.attempts == 3


async def test_dropped_connections_are_retried(receiver: RecordingReceiver) -> None:
    receiver.route("/drop", Reply(drop=True), Reply(status=200))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/drop")))
    assert delivery.ok and delivery.attempts == 2


async def test_connection_refused_is_retried_and_then_gives_up() -> None:
    port = free_port()  # nobody listens there
    async with fast_client() as client:
        delivery = await client.deliver(request(f"http://127.0.0.1:{port}/x"))
    assert not delivery.ok and delivery.attempts == 4 and delivery.http_status is None
    assert "giving up" in (delivery.reason or "")


async def test_a_bad_2xx_body_fails_without_retry(receiver: RecordingReceiver) -> None:
    receiver.route("/bad", Reply(body=b"<html>oops</html>"))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/bad")))
    assert not delivery.ok and delivery.attempts == 1 and delivery.http_status == 200
    assert "not JSON" in (delivery.reason or "")


async def test_a_body_over_the_cap_is_a_failure(receiver: RecordingReceiver) -> None:
    receiver.route("/big", Reply(body={"orderPatch": {"name": "x" * 5000}}))
    async with fast_client(max_response_bytes=1000) as client:
        delivery = await client.deliver(request(receiver.url("/big")))
    assert not delivery.ok and delivery.attempts == 1
    assert "larger than 1000 bytes" in (delivery.reason or "")


async def test_retry_waits_do_not_hold_a_call_slot(receiver: RecordingReceiver) -> None:
    """One slot in all: a delivery waiting to retry must not keep another order out."""
    receiver.route("/failing", Reply(status=500))
    receiver.route("/fine", Reply(status=200))
    async with WebhookClient(retry_delays=(0.5, 0.5, 0.5), max_in_flight=1) as client:
        failing = asyncio.create_task(client.deliver(request(receiver.url("/failing"))))
        await receiver.wait_for_requests(1, path="/failing")
        fine = await asyncio.wait_for(client.deliver(request(receiver.url("/fine"))), 0.4)
        assert fine.ok
        assert not failing.done()
        failing.cancel()


async def test_per_host_limit_bounds_concurrency(receiver: RecordingReceiver) -> None:
    receiver.route("/slow", Reply(delay=0.1))
    async with fast_client(max_in_flight=50, max_in_flight_per_host=3) as client:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, client.calls_running)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(
            *(client.deliver(request(receiver.url("/slow"))) for _ in range(12))
        )
        watcher.cancel()
    assert all(r.ok for r in results)
    assert receiver.max_concurrent == 3
    assert peak == 3
    assert client.running == {}


# --- the attempt log (Delivery.attempt_log) -------------------------------------------------


class _Clock:
    """A wall clock that moves only when the client sleeps, so due times are exact."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_every_attempt_is_logged_with_its_result_and_due_time(
    receiver: RecordingReceiver,
) -> None:
    receiver.route("/flap", Reply(status=500), Reply(drop=True), Reply(status=200))
    clock = _Clock()
    async with WebhookClient(retry_delays=(1.0, 5.0, 15.0), sleep=clock.sleep, clock=clock) as c:
        delivery = await c.deliver(request(receiver.url("/flap")))
    assert delivery.ok and delivery.attempts == 3
    log = delivery.attempt_log
    assert [(a.attempt, a.http_status, a.error_class) for a in log] == [
        (1, 500, None),
        (2, None, "connection_error"),
        (3, 200, None),
    ]
    assert [a.started_at - clock.now for a in log] == [-6.0, -5.0, 0.0]
    assert [a.retry_at for a in log] == [log[1].started_at, log[2].started_at, None]
    assert log[1].error and "ServerDisconnected" in log[1].error
    assert all(a.duration_ms >= 0 for a in log)


async def test_error_classes_say_what_went_wrong(receiver: RecordingReceiver) -> None:
    receiver.route("/slow", Reply(delay=1.0))
    receiver.route("/html", Reply(body=b"<html>oops</html>"))
    receiver.route("/shape", Reply(body=[1, 2]))
    receiver.route("/big", Reply(body={"orderPatch": {"name": "x" * 5000}}))
    refused = f"http://127.0.0.1:{free_port()}/x"
    async with fast_client(max_response_bytes=1000) as client:
        one = client.deliver
        slow = await one(request(receiver.url("/slow"), timeout_s=0.1, max_attempts=1))
        html = await one(request(receiver.url("/html")))
        shape = await one(request(receiver.url("/shape")))
        big = await one(request(receiver.url("/big")))
        nobody = await one(request(refused, max_attempts=2))
    assert [a.error_class for a in slow.attempt_log] == ["timeout"]
    assert [(a.http_status, a.error_class) for a in html.attempt_log] == [(200, "body_not_json")]
    assert [(a.http_status, a.error_class) for a in shape.attempt_log] == [(200, "bad_response")]
    assert [a.error_class for a in big.attempt_log] == ["response_too_large"]
    assert [a.error_class for a in nobody.attempt_log] == ["connection_refused"] * 2
    assert nobody.attempt_log[0].retry_at is not None and nobody.attempt_log[1].retry_at is None


async def test_a_refused_target_is_one_logged_attempt() -> None:
    from streams.http.egress import EgressPolicy

    async with fast_client(egress=EgressPolicy(())) as client:
        delivery = await client.deliver(request("http://127.0.0.1:9/x"))
    [only] = delivery.attempt_log
    assert only.error_class == "egress_refused" and only.retry_at is None
    assert only.error and "127.0.0.1" in only.error


async def test_a_failed_answers_text_is_in_the_reason(receiver: RecordingReceiver) -> None:
    receiver.route("/bad", Reply(status=400, body=b"ReturnOrderFormId is required\n"))
    receiver.route("/down", Reply(status=500, body=b"x" * 100_000))
    receiver.route("/echo", Reply(status=401, body=b"token Bearer t0ps3cret is not valid"))
    sent = request(receiver.url("/echo"))
    sent = sent.model_copy(
        update={"headers": {**sent.headers, "Authorization": "Bearer t0ps3cret"}}
    )
    async with fast_client() as client:
        bad = await client.deliver(request(receiver.url("/bad")))
        down = await client.deliver(request(receiver.url("/down")))
        echo = await client.deliver(sent)
    assert bad.reason == (
        "the webhook answered HTTP 400 (not retried): ReturnOrderFormId is required"
    )
    assert down.reason is not None
    assert down.reason.startswith(
        "the webhook answered HTTP 500 on attempt 4 of 4; giving up: xxxx"
    )
    assert len(down.reason) < 300
    assert echo.reason is not None and "t0ps3cret" not in echo.reason
    assert echo.reason.endswith(": token *** is not valid")


async def test_a_moved_delivery_continues_at_its_next_attempt_and_due_time(
    receiver: RecordingReceiver,
) -> None:
    """X-Delivery-Count never goes back and the promise of 4 attempts holds across owners."""
    waits: list[float] = []
    noted: list[tuple[int, float]] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    receiver.route("/down", Reply(status=503))
    async with WebhookClient(sleep=record_sleep, clock=lambda: 1_000.0) as client:
        delivery = await client.deliver(
            request(receiver.url("/down")),
            first_attempt=3,
            not_before=1_004.5,
            on_wait=lambda made, due: noted.append((made, due)),
        )
    assert [r.attempt for r in receiver.requests_for("/down")] == [3, 4]
    assert waits == [4.5, 15.0]  # until the due time, then the schedule's last delay
    assert noted == [(3, 1_015.0)]
    assert delivery.attempts == 4 and not delivery.ok
    assert "attempt 4 of 4" in (delivery.reason or "")


async def test_a_due_time_in_the_past_does_not_wait(receiver: RecordingReceiver) -> None:
    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}")

    receiver.route("/ok", Reply(status=200))
    async with WebhookClient(sleep=no_sleep, clock=lambda: 1_000.0) as client:
        delivery = await client.deliver(
            request(receiver.url("/ok")), first_attempt=2, not_before=990.0
        )
    assert delivery.ok and delivery.attempts == 2
    assert [r.attempt for r in receiver.requests_for("/ok")] == [2]


async def test_no_attempt_is_made_beyond_the_promise(receiver: RecordingReceiver) -> None:
    receiver.route("/down", Reply(status=503))
    async with fast_client() as client:
        delivery = await client.deliver(request(receiver.url("/down")), first_attempt=5)
    assert receiver.requests_for("/down") == []
    assert not delivery.ok and delivery.attempts == 4
    assert "before the partition moved" in (delivery.reason or "")


async def test_every_retry_is_announced_before_its_wait(receiver: RecordingReceiver) -> None:
    noted: list[int] = []
    receiver.route("/down", Reply(status=503))
    async with fast_client() as client:
        await client.deliver(
            request(receiver.url("/down")), on_wait=lambda made, due: noted.append(made)
        )
    assert noted == [1, 2, 3]  # none after the last attempt: nothing is waiting then


async def test_retry_waits_and_a_full_host_are_waited_out_parked(
    receiver: RecordingReceiver,
) -> None:
    """The worker's intake does not count a delivery as under way while it waits on a retry's
    delay, or on a webhook host with a limit's worth of others already waiting."""
    parked: list[str] = []
    active = 0

    class Park:
        async def __aenter__(self) -> None:
            nonlocal active
            active += 1

        async def __aexit__(self, *exc: object) -> None:
            nonlocal active
            active -= 1

    async def record_sleep(seconds: float) -> None:
        parked.append(f"sleep {seconds:g} parked={active}")

    receiver.route("/down", Reply(status=503), Reply(status=200))
    receiver.route("/held", Reply(delay=0.2), Reply(delay=0.2), Reply(delay=0.2))
    async with WebhookClient(
        retry_delays=(1.0,), sleep=record_sleep, max_in_flight_per_host=1, park=Park
    ) as client:
        delivery = await client.deliver(request(receiver.url("/down")))
        assert delivery.ok and parked == ["sleep 1 parked=1"]
        calls = []
        for _ in range(3):
            calls.append(asyncio.ensure_future(client.deliver(request(receiver.url("/held")))))
            await asyncio.sleep(0.05)
        # One runs, one waits for the host's slot as work under way, the third waits parked.
        assert active == 1
        await asyncio.gather(*calls)
    assert active == 0
