"""The client's address for per-client budgets: the socket peer, or X-Forwarded-For from a
trusted proxy only (anyone can send the header; only our own proxies are believed)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or bare addresses) as networks; a malformed one is a configuration error."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _trusted(addr: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(
    peer: str | None, headers: Mapping[str, str], trusted: Sequence[Network]
) -> str:
    """The peer, unless it is a trusted proxy: then the right-most X-Forwarded-For hop that
    is not itself a trusted proxy (hops further left could be forged by the client)."""
    addr = peer or "unknown"
    if not trusted or not _trusted(addr, trusted):
        return addr
    hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return addr  # a garbled header: fall back to the proxy itself
        addr = hop
        if not _trusted(hop, trusted):
            return hop
    return addr
