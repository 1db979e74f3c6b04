"""Where a webhook may point: https to a public address; in sandbox mode also http to this machine.

The URL is checked when it is registered (`url_problem`: scheme, no credentials, no internal
address written as a literal) and again, on every delivery, against what its name resolves to then
(`checked_addresses`): a name that resolves to a private, loopback, link-local (cloud metadata),
shared or reserved address is refused in production, so an app cannot make the union's servers
call into the union's own network (SSRF). The POST then goes to exactly the address that was
checked (post.py), so a name re-resolving in between (DNS rebinding) changes nothing.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_LENGTH = 2000
LOCAL_NAMES = ("localhost",)


def _is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in LOCAL_NAMES or host.endswith(".localhost")


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` is, if it is one: an IPv6 address that carries an IPv4 one (mapped,
    NAT64, 6to4, Teredo's client, IPv4-compatible) is that IPv4 address, which Python's `is_global`
    does not look into (64:ff9b::a00:8 is "global", and is 10.0.0.8 behind a NAT64 gateway)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE and int(ip) > 0xFFFF:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_allowed(address: str, *, sandbox: bool) -> bool:
    """A public (globally routed) address; in sandbox mode loopback too."""
    ip = _address(address.split("%", 1)[0])
    return ip is not None and (ip.is_global and not ip.is_multicast and not getattr(ip, "is_site_local", False)
                               or sandbox and ip.is_loopback)


def url_problem(url: str, *, sandbox: bool) -> str | None:
    """Why `url` cannot be a webhook URL, or None when it can."""
    if not isinstance(url, str) or len(url) > MAX_LENGTH or any(c in url for c in "\r\n\t "):
        return "an absolute https URL of at most 2000 characters is required"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        return "the port is not valid"
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        return "an absolute https URL is required"
    if parts.username is not None or parts.password is not None or parts.fragment:
        return "no credentials and no fragment in a webhook URL"
    local = _is_local_name(host) or (_address(host) is not None and _address(host).is_loopback)
    if parts.scheme == "http" and not (sandbox and local):
        return "https is required (http only to localhost, in sandbox mode)"
    if local and not sandbox or _address(host) is not None and not address_allowed(host, sandbox=sandbox):
        return "the webhook URL may not point to an internal address"
    return None


class TargetRefused(Exception):
    """The URL's host resolves to an address no webhook may reach."""


def checked_addresses(url: str, *, sandbox: bool) -> list[str]:
    """The addresses `url`'s host resolves to now, all allowed; raises TargetRefused or OSError."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses or not all(address_allowed(a, sandbox=sandbox) for a in addresses):
        raise TargetRefused(f"{parts.hostname} resolves to an internal address")
    return addresses
