"""Where webhooks may go: not into our own network unless an operator says so (SSRF guard).

Tenants supply the URLs, and the worker runs inside our network. By default a webhook may not
reach loopback, private, link-local (cloud metadata), shared or otherwise special addresses
(``SPECIAL_PURPOSE``, the one list). The policy judges the address the client actually connects
to, at connection time: ``GuardedConnector`` checks every address aiohttp is about to connect
to, for IP literals (which aiohttp never resolves) as well as names, on the host exactly as
aiohttp's URL parser (yarl) normalised it, so no spelling can differ between check and
connection (``http://１２７.０.０.１/`` is 127.0.0.1 to both). The resolver and a pre-flight
literal check refuse the same addresses earlier. An allow-list of CIDRs and host names
re-enables chosen targets.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import InvalidUrlClientError, TCPConnector
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Every range a webhook may not reach unless allow-listed, with what it is (IANA's IPv4 and IPv6
# special-purpose registries). The one list: ipaddress's flags differ between Python versions.
SPECIAL_PURPOSE: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network(cidr), kind)
    for cidr, kind in (
        ("0.0.0.0/8", "unspecified (this host)"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier NAT; Alibaba's metadata lives here)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "special-purpose (IETF protocol assignments)"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "special-purpose (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "special-purpose (benchmarking)"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified (this host)"),
        ("::1/128", "loopback"),
        ("::/96", "special-purpose (IPv4-compatible IPv6)"),
        ("64:ff9b::/96", "special-purpose (NAT64 reaches any IPv4 address, private ones too)"),
        ("64:ff9b:1::/48", "special-purpose (local NAT64)"),
        ("100::/64", "special-purpose (discard)"),
        ("2001::/23", "special-purpose (IETF protocol assignments, Teredo)"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "special-purpose (6to4 embeds any IPv4 address)"),
        ("fc00::/7", "private (unique local; AWS metadata fd00:ec2::254)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated, still routed inside some networks)"),
        ("ff00::/8", "multicast"),
    )
]


class EgressRefused(OSError):
    """A webhook target the egress policy refuses; final, never retried."""


class EgressPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.literal_verdicts: dict[str, str | None] = {}
        self.allowed_networks: list[IPNetwork] = []
        self.allowed_hosts: list[str] = []
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.allowed_hosts.append(entry.lower().rstrip("."))

    def host_allowed(self, host: str) -> bool:
        """An allow-listed name (``erp.internal``, or ``.internal`` for a whole domain)."""
        name = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            if allowed.startswith(".") and (name.endswith(allowed) or name == allowed[1:]):
                return True
            if name == allowed:
                return True
        return False

    def refusal(self, host: str, address: str) -> str | None:
        """Why ``host`` at ``address`` may not be called, or None when it may."""
        if self.host_allowed(host):
            return None
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{host} resolved to {address!r}, which is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed_networks):
            return None
        kind = special_purpose(ip)
        if kind is not None:
            shown = host if host == str(ip) else f"{host} ({ip})"
            return (
                f"refused by the egress policy: {shown} is a {kind} address; "
                "allow it with RETURNHOOK_EGRESS_ALLOW if it is meant to be called"
            )
        return None


def special_purpose(ip: IPAddress) -> str | None:
    """What kind of special-purpose address ``ip`` is, or None for a public one."""
    for network, kind in SPECIAL_PURPOSE:
        if network.version == ip.version and ip in network:
            return kind
    # A backstop for anything the table misses but Python knows about.
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return "special-purpose"
    if ip.is_private or ip.is_reserved:
        return "special-purpose"
    return None


class GuardedResolver(ThreadedResolver):
    """Resolves as usual, then drops every address the policy refuses."""

    def __init__(self, policy: EgressPolicy, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return _kept(self.policy, host, await super().resolve(host, port, family))


class GuardedConnector(TCPConnector):
    """Checks every address just before aiohttp connects to it: literals and resolved names.

    aiohttp resolves through ``_resolve_host`` (its own method; the policy test with a real
    listener fails if a future aiohttp stops calling it): IP literals come back from it
    unresolved, names through the resolver. ``host`` is ``URL.raw_host``, the normalised host
    aiohttp uses, so ``１２７.０.０.１`` arrives here as ``127.0.0.1``.
    """

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        kwargs.setdefault("resolver", GuardedResolver(policy))
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        try:
            results = await super()._resolve_host(host, port, traces=traces)
        except InvalidUrlClientError:
            # aiohttp refuses legacy numeric IPv4 (127.1, 2130706433); say what it would reach.
            legacy = _legacy_ipv4(host)
            reason = self.policy.refusal(host, legacy) if legacy else None
            if reason is not None:
                raise EgressRefused(reason) from None
            raise
        return _kept(self.policy, host, results)


def _kept(policy: EgressPolicy, host: str, results: list[ResolveResult]) -> list[ResolveResult]:
    kept = [r for r in results if policy.refusal(host, r["host"]) is None]
    if not kept:
        reasons = {policy.refusal(host, r["host"]) for r in results}
        raise EgressRefused("; ".join(sorted(r for r in reasons if r)) or f"{host}: refused")
    return kept


def _legacy_ipv4(host: str) -> str | None:
    try:
        return socket.inet_ntoa(socket.inet_aton(host.removesuffix(".")))
    except (OSError, ValueError):
        return None


def check_literal(policy: EgressPolicy, host: str) -> None:
    """Refuses an IP literal before any connection is tried (``GuardedConnector`` rechecks).

    ``host`` is the URL's host as the client parsed it (``WebhookRequest.hostname``, yarl's
    ``raw_host``). Runs before every attempt, so each host's verdict is remembered.
    """
    verdicts = policy.literal_verdicts
    if host not in verdicts:
        try:
            _check_literal(policy, host)
        except EgressRefused as exc:
            verdict: str | None = str(exc)
        else:
            verdict = None
        if len(verdicts) > 10_000:
            verdicts.clear()
        verdicts[host] = verdict
    reason = verdicts[host]
    if reason is not None:
        raise EgressRefused(reason)


def _check_literal(policy: EgressPolicy, host: str) -> None:
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        return
    reason = policy.refusal(bare, bare)
    if reason is not None:
        raise EgressRefused(reason)


def parse_allow(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [v.strip() for v in value if v.strip()]
