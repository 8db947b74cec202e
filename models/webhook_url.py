"""Webhook URLs read exactly as the HTTP client will read them (yarl, which aiohttp uses).

A URL that the check and the client read differently is how a guard is bypassed: yarl turns
``http://１２７.０.０.１/`` (full-width digits), ``127。0。0。1`` (ideographic full stops) and
``①②⑦.0.0.1`` into ``127.0.0.1``, and raises for ``:99999`` or ``[zz]`` where ``urlsplit`` did
not. So settings are checked with the client's own parser, and refused when the text is not
already in the form the client will use. Pure: yarl parses, it does no I/O.
"""

from __future__ import annotations

import ipaddress
import re

from yarl import URL

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_NUMERIC_LABEL = re.compile(r"^(?:0[xX][0-9A-Fa-f]*|[0-9]+)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def check_webhook_url(text: str, shown: str | None = None) -> URL:
    """The URL as the client will use it, or ValueError saying what is wrong with it.

    ``shown`` is what messages quote instead of ``text``: the URL as written in the settings,
    when ``text`` has secrets filled in.
    """
    try:
        return _check(text)
    except ValueError as exc:
        if shown is None or shown == text:
            raise
        raise ValueError(str(exc).replace(repr(text), repr(shown))) from None


def _check(text: str) -> URL:
    if _CONTROL_OR_SPACE.search(text):
        raise ValueError("a URL must not contain spaces or control characters")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in {"http", "https"}:
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if not authority:
        raise ValueError(f"{text!r} has no host")
    if not authority.isascii():
        raise ValueError(
            f"the host of {text!r} is not plain ASCII: the HTTP client would read it as a "
            "different host; write international names in their IDNA form (xn--...)"
        )
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        after = host_port.partition("]")[2]
        colon, port_text = after[:1], after[1:]
    else:
        _, colon, port_text = host_port.partition(":")
    if colon and port_text and (not _PORT.match(port_text) or not 1 <= int(port_text) <= 65535):
        raise ValueError(f"the port of {text!r} is not a number from 1 to 65535")
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{text!r} is not a URL the HTTP client accepts: {exc}") from None
    try:
        port = url.port
    except ValueError as exc:  # pragma: no cover - yarl raises at parse time today
        raise ValueError(f"{text!r}: {exc}") from None
    if not url.is_absolute() or not url.raw_host:
        raise ValueError(f"{text!r} has no host")
    if port is None or not 1 <= port <= 65535:
        raise ValueError(f"the port of {text!r} is not a number from 1 to 65535")
    _check_numeric_host(text, url.raw_host)
    return url


def _check_numeric_host(text: str, host: str) -> None:
    """A host ending in a number is an IPv4 address (WHATWG): only the dotted-quad form.

    ``127.1``, ``0x7f.0.0.1``, ``2130706433``, ``017.0.0.1`` and ``127.0.0.1.`` all reach
    127.0.0.1 through the system resolver; one spelling per address keeps checks honest.
    """
    if ":" in host:  # IPv6 literal: yarl has validated it
        return
    last = host.rstrip(".").rpartition(".")[2] if host.rstrip(".") else host
    if not _NUMERIC_LABEL.match(last):
        return
    try:
        canonical = str(ipaddress.IPv4Address(host))
    except ValueError:
        canonical = None
    if canonical != host:
        raise ValueError(
            f"the host of {text!r} reads as an IPv4 address but is not written as one "
            "(four decimal numbers 0-255 without leading zeros)"
        )
