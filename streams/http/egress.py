"""Where webhooks may go: not into our own network unless an operator says so (SSRF guard).

Tenants supply the URLs, and the worker runs inside our network. By default a webhook may not
reach loopback, private, link-local (cloud metadata), shared or otherwise special addresses. The
check runs on the addresses a name resolves to, inside the HTTP client's resolver, so it holds
for what is actually connected to (a name that resolves to 10.0.0.5 is refused, and so is DNS
rebinding). An allow-list of CIDRs and host names re-enables chosen targets.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not all of these are covered by ipaddress's is_private/is_reserved on every Python version.
_ALWAYS_DENIED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier NAT; Alibaba's metadata lives here)
        "169.254.0.0/16",  # link-local, AWS/GCP/Azure metadata 169.254.169.254
        "192.0.0.0/24",
        "198.18.0.0/15",
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "64:ff9b::/96",  # NAT64 can reach any IPv4 address, private ones too
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
        if _denied(ip):
            shown = host if host == str(ip) else f"{host} ({ip})"
            return (
                f"refused by the egress policy: {shown} is a {_kind(ip)} address; "
                "allow it with RETURNHOOK_EGRESS_ALLOW if it is meant to be called"
            )
        return None


def _denied(ip: IPAddress) -> bool:
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or any(ip in network for network in _ALWAYS_DENIED if network.version == ip.version)
    )


def _kind(ip: IPAddress) -> str:
    if ip.is_unspecified:
        return "unspecified (this host)"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)"
    if ip.is_private:
        return "private"
    return "special-purpose"


class GuardedResolver(ThreadedResolver):
    """Resolves as usual, then drops every address the policy refuses."""

    def __init__(self, policy: EgressPolicy, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        kept = [r for r in results if self.policy.refusal(host, r["host"]) is None]
        if not kept:
            reasons = {self.policy.refusal(host, r["host"]) for r in results}
            raise EgressRefused("; ".join(sorted(r for r in reasons if r)) or f"{host}: refused")
        return kept


def check_literal(policy: EgressPolicy, host: str) -> None:
    """aiohttp skips the resolver for IP literals (``http://10.0.0.5/``): check those here.

    Runs before every attempt, so each host's verdict is remembered by the policy.
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
