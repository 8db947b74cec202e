import asyncio
import time

import aiohttp
import pytest

from tests.receiver import RecordedRequest, RecordingReceiver, Reply


async def post(
    session: aiohttp.ClientSession, url: str, payload: object, attempt: int | None = None
) -> tuple[int, bytes]:
    headers = {"X-Delivery-Count": str(attempt)} if attempt is not None else {}
    async with session.post(url, json=payload, headers=headers) as response:
        return response.status, await response.read()


async def test_replies_follow_the_sequence_and_the_last_repeats(
    receiver: RecordingReceiver,
) -> None:
    receiver.route(
        "/hook",
        Reply(status=500),
        Reply(status=503, headers={"Retry-After": "1"}),
        Reply(status=200, body={"ok": True}),
    )
    async with aiohttp.ClientSession() as session:
        answers = [await post(session, receiver.url("/hook"), {"n": n}, n + 1) for n in range(4)]
    assert [status for status, _ in answers] == [500, 503, 200, 200]
    assert answers[2][1] == b'{"ok":true}'
    recorded = receiver.requests_for("/hook")
    assert [r.attempt for r in recorded] == [1, 2, 3, 4]
    assert [r.json() for r in recorded] == [{"n": n} for n in range(4)]
    assert [r.status for r in recorded] == [500, 503, 200, 200]
    assert all(r.method == "POST" and r.finished_at is not None for r in recorded)


async def test_headers_keep_their_case_and_bytes_bodies_pass_through(
    receiver: RecordingReceiver,
) -> None:
    receiver.route("/raw", Reply(status=202, body=b"plain"))
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            receiver.url("raw"), data=b"\x00\x01", headers={"X-Tenant-ID": "acme"}
        ) as response,
    ):
        assert (response.status, await response.read()) == (202, b"plain")
    [request] = receiver.requests
    assert request.headers["X-Tenant-ID"] == "acme"
    assert request.header("x-tenant-id") == "acme"
    assert request.body == b"\x00\x01"
    assert request.attempt is None


async def test_a_function_decides_per_request(receiver: RecordingReceiver) -> None:
    def by_order(request: RecordedRequest) -> Reply:
        return Reply(status=409 if request.json()["order"] == "bad" else 204)

    receiver.route("/decide", by_order)
    async with aiohttp.ClientSession() as session:
        statuses = [
            (await post(session, receiver.url("/decide"), {"order": o}))[0]
            for o in ["ok", "bad", "ok"]
        ]
    assert statuses == [204, 409, 204]


async def test_delays_run_concurrently_and_are_measured(receiver: RecordingReceiver) -> None:
    receiver.route("/slow", Reply(delay=0.4))
    orders = ["A", "A", "B", "C", "C"]
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        await asyncio.gather(*(post(session, receiver.url("/slow"), {"order": o}) for o in orders))
        elapsed = time.monotonic() - started
        # Back to back per order: never concurrent for the same key.
        for _ in range(2):
            await post(session, receiver.url("/slow"), {"order": "D"})
    assert 0.4 <= elapsed < 1.2
    assert receiver.max_concurrent == 5
    assert receiver.max_concurrent_by(lambda r: r.json()["order"]) == {
        "A": 2,
        "B": 1,
        "C": 2,
        "D": 1,
    }


async def test_drop_closes_the_connection(receiver: RecordingReceiver) -> None:
    receiver.route("/flaky", Reply(drop=True, delay=0.1), Reply(status=200))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(session, receiver.url("/flaky"), {"try": 1}, attempt=1)
        assert (await post(session, receiver.url("/flaky"), {"try": 2}, attempt=2))[0] == 200
    first, second = receiver.requests_for("/flaky")
    assert (first.attempt, first.status) == (1, None)
    assert first.finished_at is not None and first.finished_at - first.received_at >= 0.1
    assert (second.attempt, second.status) == (2, 200)


async def test_unknown_path_is_404_and_recorded(receiver: RecordingReceiver) -> None:
    async with aiohttp.ClientSession() as session:
        assert (await post(session, receiver.url("/nowhere"), {}))[0] == 404
    assert [(r.path, r.status) for r in receiver.requests] == [("/nowhere", 404)]


async def test_wait_for_requests(receiver: RecordingReceiver) -> None:
    receiver.route("/w")
    async with aiohttp.ClientSession() as session:
        sender = asyncio.create_task(post(session, receiver.url("/w"), {"late": True}))
        got = await receiver.wait_for_requests(1, path="/w", timeout=5)
        await sender
    assert got[0].json() == {"late": True}
    with pytest.raises(TimeoutError, match="got 1 of 2 requests to /w"):
        await receiver.wait_for_requests(2, path="/w", timeout=0.2)


async def test_held_answers_wait_for_their_event(receiver: RecordingReceiver) -> None:
    gate = asyncio.Event()
    receiver.route("/held", Reply(hold=gate))
    async with aiohttp.ClientSession() as session:
        calls = [
            asyncio.create_task(post(session, receiver.url("/held"), {"n": n})) for n in range(3)
        ]
        await receiver.wait_for_requests(3, path="/held", timeout=5)
        await asyncio.sleep(0.05)
        assert receiver.in_flight == 3
        assert not any(call.done() for call in calls)
        assert [r.status for r in receiver.requests_for("/held")] == [None, None, None]
        gate.set()
        assert [status for status, _ in await asyncio.gather(*calls)] == [200, 200, 200]
    assert receiver.in_flight == 0
    assert receiver.max_concurrent == 3
