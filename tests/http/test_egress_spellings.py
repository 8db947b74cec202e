"""No spelling of an internal address gets a connection out of a guarded client (issue 17).

Hypothesis writes loopback, link-local, private and metadata addresses every way it can
(Unicode digits and full stops, decimal/octal/hex, IPv6 forms, userinfo, trailing dots, case);
each goes through a real ``WebhookClient`` with the default egress policy to a real listening
socket on loopback, and that socket must accept nothing. Every refusal names the address the
host came to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.request import WebhookRequest
from streams.http.egress import EgressPolicy
from streams.http.webhook_client import WebhookClient

FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
CIRCLED = {str(d): chr(0x2460 + d - 1) for d in range(1, 10)}  # ①..⑨ (no circled 0 here)
DOTS = [".", "。", "．", "｡"]  # ASCII, ideographic, full-width, half-width ideographic


class Listener:
    """A plain TCP socket on 127.0.0.1 that counts every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _digits(text: str, style: str) -> str:
    if style == "fullwidth":
        return "".join(FULLWIDTH.get(c, c) for c in text)
    if style == "circled":
        return "".join(CIRCLED.get(c, c) for c in text)
    return text


@st.composite
def ipv4_spelling(draw: st.DrawFn, address: str) -> str:
    """One of the ways to write an IPv4 address that a parser or resolver may accept."""
    octets = [int(o) for o in address.split(".")]
    value = int(ipaddress.IPv4Address(address))
    form = draw(st.sampled_from(["dotted", "decimal", "hex", "octal", "mixed", "short"]))
    if form == "decimal":
        text = str(value)
    elif form == "hex":
        text = draw(st.sampled_from([hex(value), ".".join(hex(o) for o in octets)]))
    elif form == "octal":
        text = ".".join("0" + oct(o)[2:] for o in octets)
    elif form == "mixed":
        text = ".".join(draw(st.sampled_from([str(o), hex(o), "0" + oct(o)[2:]])) for o in octets)
    elif form == "short":  # 127.1, 10.1 style
        text = f"{octets[0]}.{(octets[1] << 16) | (octets[2] << 8) | octets[3]}"
    else:
        text = address
    text = draw(st.sampled_from([text, text.upper()]))
    text = _digits(text, draw(st.sampled_from(["ascii", "fullwidth", "circled"])))
    dot = draw(st.sampled_from(DOTS))
    text = text.replace(".", dot)
    if draw(st.booleans()):
        text += "."
    return text


@st.composite
def ipv6_spelling(draw: st.DrawFn, address: str) -> str:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        forms = [f"::ffff:{ip}", f"::ffff:{int(ip) >> 16:x}:{int(ip) & 0xFFFF:x}", f"::{ip}"]
        forms += [f"64:ff9b::{ip}", f"2002:{int(ip) >> 16:x}:{int(ip) & 0xFFFF:x}::1"]
        text = draw(st.sampled_from(forms))
    else:
        text = draw(st.sampled_from([ip.compressed, ip.exploded]))
    text = draw(st.sampled_from([text, text.upper()]))
    return f"[{text}]"


TARGETS_V4 = [
    "127.0.0.1",
    "127.9.8.7",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "0.0.0.0",
]
TARGETS_V6 = ["::1", "fe80::1", "fec0::1", "fd00:ec2::254"]
NAMES = ["localhost", "LOCALHOST", "localhost.", "ip6-localhost"]


@st.composite
def hostile_url(draw: st.DrawFn, port: int) -> str:
    kind = draw(st.sampled_from(["v4", "v6", "v4-as-v6", "name"]))
    if kind == "v4":
        host = draw(ipv4_spelling(draw(st.sampled_from(TARGETS_V4))))
    elif kind == "v4-as-v6":
        host = draw(ipv6_spelling(draw(st.sampled_from(TARGETS_V4))))
    elif kind == "v6":
        host = draw(ipv6_spelling(draw(st.sampled_from(TARGETS_V6))))
    else:
        host = draw(st.sampled_from(NAMES))
    userinfo = draw(st.sampled_from(["", "user@", "user:pw@", "erp.example.com@", "a%40b@"]))
    scheme = draw(st.sampled_from(["http", "HTTP", "https"]))
    return f"{scheme}://{userinfo}{host}:{port}/hook"


ADDRESS = re.compile(r"\(?([0-9a-fA-F:.]+)\)? is an? ")


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_spelling_of_an_internal_address_connects(
    listener: Listener, data: st.DataObject
) -> None:
    url = data.draw(hostile_url(listener.port))
    request = WebhookRequest(
        url=url, headers={}, body=b"{}", timeout_s=0.5, max_attempts=1, delivery_id="d"
    )
    async with WebhookClient(retry_delays=(), egress=EgressPolicy()) as client:
        delivery = await client.deliver(request)
    assert listener.accepted == 0, url
    assert not delivery.ok
    reason = delivery.reason or ""
    if "egress policy" in reason:
        match = ADDRESS.search(reason)
        assert match is not None, reason
        resolved = ipaddress.ip_address(match.group(1))
        assert EgressPolicy().refusal("x", str(resolved)) is not None, reason
    else:  # never connected: the client refused the URL or the name did not resolve
        assert re.search(
            r"cannot use the URL|not sent|DNS|resolve|Name or service|no answer within", reason
        ), (
            url,
            reason,
        )


async def test_the_listener_counts_connections(listener: Listener) -> None:
    """The property above could not fail if the listener never counted: it does."""
    request = WebhookRequest(
        url=f"http://127.0.0.1:{listener.port}/x",
        headers={},
        body=b"{}",
        timeout_s=2,
        max_attempts=1,
        delivery_id="d",
    )
    before = listener.accepted
    async with WebhookClient(retry_delays=(), egress=EgressPolicy(["127.0.0.0/8"])) as client:
        await client.deliver(request)
    assert listener.accepted == before + 1
    listener.accepted = before
