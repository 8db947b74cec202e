"""W3C trace context from input headers to webhook requests and output records."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.settings import TenantSettings
from streams.core.decoder import Accepted, decode
from streams.core.trace_context import kafka_headers, trace_context, valid_traceparent
from tests.core.test_request import _build, _header, _step
from tests.core.test_workflow import _cancel, _run, _script
from tests.core.test_workflow import _step as _workflow_step

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
STATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


@pytest.mark.parametrize(
    "value",
    [
        PARENT,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
    ],
)
def test_valid_traceparents(value: str) -> None:
    assert valid_traceparent(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has no extras
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
    ],
)
def test_invalid_traceparents(value: str) -> None:
    assert not valid_traceparent(value)


def test_from_kafka_header_pairs_any_case_first_wins() -> None:
    headers = [
        ("TraceParent", PARENT.encode()),
        ("traceparent", b"00-11111111111111111111111111111111-2222222222222222-01"),
        ("tracestate", STATE.encode()),
        ("other", b"kept out"),
    ]
    assert trace_context(headers) == {"traceparent": PARENT, "tracestate": STATE}


def test_from_a_mapping_with_str_values() -> None:
    assert trace_context({"traceparent": PARENT}) == {"traceparent": PARENT}


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("tracestate", STATE.encode())],  # no parent: the state means nothing
        [("traceparent", b"not-a-traceparent"), ("tracestate", STATE.encode())],
        [("traceparent", b"\xff\xfe")],
        [("traceparent", None)],
    ],
)
def test_nothing_carried_without_a_valid_parent(headers: object) -> None:
    assert trace_context(headers) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["x" * 513, "a=b\r\nInjected: yes", "é=1"])
def test_unusable_tracestate_is_dropped_parent_kept(state: str) -> None:
    headers = [("traceparent", PARENT.encode()), ("tracestate", state.encode("utf-8"))]
    assert trace_context(headers) == {"traceparent": PARENT}


@given(st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=80)), max_size=6))
def test_never_raises_and_only_carries_trace_headers(headers: list) -> None:
    carried = trace_context(headers)
    assert set(carried) <= {"traceparent", "tracestate"}
    assert all(v.isascii() and "\n" not in v for v in carried.values())


def test_kafka_headers() -> None:
    assert kafka_headers({"traceparent": PARENT}) == [("traceparent", PARENT.encode())]


# carried through the decoder, the request and the workflow's outputs ----------------------------


def _accepted(headers: list[tuple[str, bytes]] | None) -> Accepted:
    event = {"tenantId": "acme", "status": "Returned", "order": {"id": "O-1"}}
    result = decode(orjson.dumps(event), headers=headers)
    assert isinstance(result, Accepted)
    return result


def test_decoder_keeps_the_trace_context() -> None:
    headers = [("traceparent", PARENT.encode()), ("tracestate", STATE.encode())]
    assert _accepted(headers).trace == {"traceparent": PARENT, "tracestate": STATE}
    assert _accepted(None).trace == {}


def test_request_carries_it_and_it_wins_over_settings_headers() -> None:
    step = _step({"traceparent": "from-settings", "X-Other": "1"})
    request = _build(step, trace={"traceparent": PARENT, "tracestate": STATE})
    assert _header(request, "traceparent") == PARENT
    assert _header(request, "tracestate") == STATE
    assert _header(request, "X-Other") == "1"


def test_request_without_trace_has_no_trace_headers() -> None:
    request = _build()
    assert _header(request, "traceparent") is None
    assert _header(request, "tracestate") is None


async def test_every_output_record_carries_it() -> None:
    settings = TenantSettings.model_validate(
        {
            "tenantId": "acme",
            "returnWorkflow": [_workflow_step(0, stop=True, error_status="ReturnFailed")],
        }
    )
    deliver, calls = _script(_cancel(patch={"tags": ["x"]}))
    accepted = _accepted([("traceparent", PARENT.encode()), ("tracestate", STATE.encode())])
    outputs = await _run(accepted, settings, deliver)
    assert {o.role for o in outputs} == {"patches", "events"}
    expected = [("traceparent", PARENT.encode()), ("tracestate", STATE.encode())]
    assert all(o.headers == expected for o in outputs)
    assert calls[0].headers["traceparent"] == PARENT


async def test_outputs_without_trace_have_no_headers() -> None:
    settings = TenantSettings.model_validate(
        {"tenantId": "acme", "returnWorkflow": [_workflow_step(0)]}
    )
    deliver, _ = _script(_cancel())
    outputs = await _run(_accepted(None), settings, deliver)
    assert outputs and all(o.headers == [] for o in outputs)
