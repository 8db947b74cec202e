"""The egress policy, pure and through the real client (resolver and IP literals)."""

import pytest

from streams.core.request import WebhookRequest
from streams.http.egress import EgressPolicy, EgressRefused, check_literal, parse_allow
from streams.http.webhook_client import WebhookClient
from tests.receiver import RecordingReceiver, Reply

DENY = EgressPolicy()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),
        ("100.100.100.200", "shared"),
        ("0.0.0.0", "unspecified"),  # connects to the local host on Linux
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("224.0.0.1", "multicast"),
        ("fec0::1", "site-local"),  # issue 17
        ("feff::1", "site-local"),
        ("2002:7f00:1::1", "6to4"),
        ("64:ff9b::7f00:1", "NAT64"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("2001:db8::1", "documentation"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_internal_addresses_are_refused_by_default(address: str, kind: str) -> None:
    reason = DENY.refusal("erp.example.com", address)
    assert reason is not None
    assert kind in reason
    assert "RETURNHOOK_EGRESS_ALLOW" in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    assert DENY.refusal("erp.example.com", address) is None


def test_an_allow_list_of_cidrs_and_hosts_reenables_targets() -> None:
    policy = EgressPolicy(["10.1.0.0/16", "erp.internal", ".corp.example"])
    assert policy.refusal("x", "10.1.2.3") is None
    assert policy.refusal("x", "10.2.0.1") is not None
    assert policy.refusal("erp.internal", "10.9.9.9") is None
    assert policy.refusal("ERP.INTERNAL.", "10.9.9.9") is None
    assert policy.refusal("a.corp.example", "192.168.0.1") is None
    assert policy.refusal("corp.example", "192.168.0.1") is None
    assert policy.refusal("evilcorp.example", "192.168.0.1") is not None


def test_ip_literals_are_checked_before_connecting() -> None:
    with pytest.raises(EgressRefused):
        check_literal(DENY, "10.0.0.5")
    with pytest.raises(EgressRefused):
        check_literal(DENY, "[::1]")
    check_literal(DENY, "erp.example.com")  # names go through the resolver instead
    check_literal(EgressPolicy(["127.0.0.0/8"]), "127.0.0.1")


def test_parse_allow() -> None:
    assert parse_allow("10.0.0.0/8, erp.internal,,") == ["10.0.0.0/8", "erp.internal"]
    assert parse_allow(None) == []


def request(url: str) -> WebhookRequest:
    return WebhookRequest(
        url=url, headers={}, body=b"{}", timeout_s=2, max_attempts=4, delivery_id="d"
    )


async def test_a_refused_literal_target_fails_at_once_without_retry(
    receiver: RecordingReceiver,
) -> None:
    receiver.route("/x", Reply(status=200))
    async with WebhookClient(retry_delays=(0.01,) * 3, egress=DENY) as client:
        delivery = await client.deliver(request(receiver.url("/x")))
    assert not delivery.ok
    assert delivery.attempts == 1
    assert "egress policy" in (delivery.reason or "") and "not retried" in (delivery.reason or "")
    assert receiver.requests == []


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
    receiver: RecordingReceiver,
) -> None:
    receiver.route("/x", Reply(status=200))
    url = receiver.url("/x").replace("127.0.0.1", "localhost")
    async with WebhookClient(retry_delays=(0.01,) * 3, egress=DENY) as client:
        delivery = await client.deliver(request(url))
    assert not delivery.ok and delivery.attempts == 1
    assert "localhost" in (delivery.reason or "") and "loopback" in (delivery.reason or "")
    assert receiver.requests == []


async def test_allowed_loopback_is_called(receiver: RecordingReceiver) -> None:
    receiver.route("/x", Reply(status=200))
    url = receiver.url("/x").replace("127.0.0.1", "localhost")
    policy = EgressPolicy(["127.0.0.0/8"])
    async with WebhookClient(retry_delays=(0.01,) * 3, egress=policy) as client:
        delivery = await client.deliver(request(url))
    assert delivery.ok
    assert len(receiver.requests) == 1
