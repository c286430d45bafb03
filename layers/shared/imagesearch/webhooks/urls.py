"""Where a webhook may be sent: http(s) URLs whose host resolves to public addresses only (SSRF).

A subscriber chooses the URL and our servers send to it, so a URL naming the metadata service
(169.254.169.254), the database's private address or loopback would let a tenant reach what only we can.
Every address a host resolves to must be globally routable: not loopback, private, link-local, shared
(100.64/10), reserved, unspecified or multicast, also when wrapped in IPv6 (::ffff:a.b.c.d, 6to4, Teredo,
NAT64). Checked when the subscription is made, and again at every send on the addresses the connection
then uses (a name may resolve elsewhere by then: DNS rebinding). `allow_private` turns the address check
off (a private deployment, the tests' receiver on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from imagesearch.errors import InvalidRequest

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidWebhookUrl(InvalidRequest):
    """A URL a webhook may not be sent to (422)."""


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: what a connection needs."""

    scheme: str
    host: str  # as written (a name, or an address without brackets)
    port: int
    path: str  # path and query, as sent in the request line


def parse_url(url: str) -> Target:
    """The target of an http(s) URL without credentials; InvalidWebhookUrl for anything else."""
    if not 1 <= len(url) <= MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"a webhook URL is 1 to {MAX_URL_LENGTH} characters")
    # ASCII only, no spaces or control characters: an internationalised name is sent in its xn-- form.
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidWebhookUrl(
            "a webhook URL is ASCII without spaces (write a Unicode host in its xn-- form)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidWebhookUrl(f"not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("a webhook URL starts with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("a webhook URL must not carry credentials")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl("a webhook URL names a host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo's client, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """Whether an address is globally routable unicast (also what it wraps)."""
    for candidate in {address, _unwrapped(address)}:
        if not candidate.is_global or candidate.is_multicast or candidate.is_reserved:
            return False
    return True


def resolve(target: Target) -> list[IPAddress]:
    """Every address the target's host names (an address is itself); InvalidWebhookUrl when none."""
    try:
        return [ipaddress.ip_address(target.host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise InvalidWebhookUrl(f"the host {target.host!r} does not resolve ({e})") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])  # drop an IPv6 zone
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InvalidWebhookUrl(f"the host {target.host!r} does not resolve")
    return addresses


def allowed_addresses(target: Target, *, allow_private: bool) -> list[IPAddress]:
    """The addresses to connect to: every one the host resolves to, all of them public unless
    `allow_private`; InvalidWebhookUrl when one is not."""
    addresses = resolve(target)
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise InvalidWebhookUrl(
                f"the host {target.host!r} resolves to {refused[0]}, a loopback, private, link-local or "
                "reserved address: webhooks go to public addresses only"
            )
    return addresses


def check_url(url: str, *, allow_private: bool) -> Target:
    """The target of a URL a webhook may be sent to; InvalidWebhookUrl (422) otherwise."""
    target = parse_url(url)
    if not allow_private:
        allowed_addresses(target, allow_private=False)
    return target
