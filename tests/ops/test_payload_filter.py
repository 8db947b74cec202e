"""Record payloads never reach the logs; debug is scoped to returnhook's own loggers."""

from __future__ import annotations

import io
import logging

from aiokafka.protocol.produce import ProduceRequest
from aiokafka.structs import ConsumerRecord

from streams.ops.log_format import install
from streams.ops.payload_filter import OWN_LOGGERS, payload_free, scope_levels

MARKER = "PLANTED-7f3a"


def test_bytes_and_records_are_replaced_by_what_they_are() -> None:
    record = ConsumerRecord("t", 0, 1, 0, 0, b"k", MARKER.encode(), None, 1, len(MARKER), [])
    assert payload_free(MARKER.encode()) == f"<{len(MARKER)} bytes>"
    assert payload_free(bytearray(b"ab")) == "<2 bytes>"
    assert payload_free(record) == "<ConsumerRecord>"
    assert payload_free([record, record]) == "<list of 2>"
    assert payload_free({"value": MARKER.encode()}) == "<dict of 1>"
    request = ProduceRequest(None, 1, 1000, [("t", [(0, MARKER.encode())])])
    assert payload_free(request) == "<ProduceRequest>"


def test_everything_else_is_left_alone() -> None:
    for value in ["text", 3, None, ["a"], {"a": 1}, ("t", 0)]:
        assert payload_free(value) is value


def test_a_library_debug_line_with_a_record_keeps_no_payload() -> None:
    root = logging.getLogger("test-payload-root")
    stream = io.StringIO()
    root.handlers = [logging.StreamHandler(stream)]
    root.propagate = False
    root.setLevel(logging.DEBUG)
    install(root, "text")

    root.debug("Sending (key=%s value=%s) to %s", b"o-1", MARKER.encode(), "t-0")
    root.debug(
        "%s Request %d: %s",
        "conn",
        7,
        ProduceRequest(None, 1, 1000, [("t", [(0, MARKER.encode())])]),
    )
    root.debug("fetched %r", {"records": [MARKER.encode()]})

    text = stream.getvalue()
    assert MARKER not in text
    assert "value=<12 bytes>" in text and "Request 7: <ProduceRequest>" in text


def test_debug_is_for_our_loggers_unless_libraries_are_asked_for() -> None:
    assert scope_levels("debug", False) == ("INFO", dict.fromkeys(OWN_LOGGERS, "DEBUG"))
    assert scope_levels("debug", True) == ("DEBUG", {})
    assert scope_levels("info", False) == ("INFO", {})
    assert scope_levels("warning", True) == ("WARNING", {})
