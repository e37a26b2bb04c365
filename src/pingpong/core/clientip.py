"""Who is the client? The peer address, unless a trusted proxy says otherwise.

Forwarding headers are read only when the peer itself is a trusted proxy, and
then from the right: each trusted hop is skipped and the first address that is
not a trusted proxy is the client. A malformed or obfuscated entry stops the
walk and the last trusted hop is used instead, so a garbled header can only
make a client share its proxy's quota, never escape its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from pingpong.core.policy import Headers

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_address(text: str) -> Address | None:
    """An address from a header entry (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_for(value: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 ``Forwarded`` header, in order."""
    hops = []
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            name, _, raw = pair.partition("=")
            if name.strip().lower() == "for":
                found = raw.strip()
        hops.append(found)
    return hops


class ClientResolver:
    def __init__(
        self,
        trusted_proxies: Sequence[Network] = (),
        header: str = "x-forwarded-for",
        ipv6_prefix: int = 64,
    ) -> None:
        self._trusted = tuple(trusted_proxies)
        self._header = header.lower()
        self._ipv6_prefix = ipv6_prefix
        # Identities of peers repeat: cache the parse-and-group work.
        self._peer_identity = lru_cache(maxsize=65536)(self._identity_of_peer)

    def resolve(self, peer: str | None, headers: Headers) -> str:
        if peer is None:
            return "unknown"
        if not self._trusted:
            return self._peer_identity(peer)
        address = parse_address(peer)
        if address is None or not self._is_trusted(address):
            return self._peer_identity(peer)
        return self.identity(self._walk(address, headers))

    def _walk(self, peer: Address, headers: Headers) -> Address:
        values = [v for k, v in headers.items() if k == self._header]
        if not values:
            return peer
        joined = ",".join(values)
        hops = forwarded_for(joined) if self._header == "forwarded" else joined.split(",")
        last_trusted = peer
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return last_trusted
            if not self._is_trusted(address):
                return address
            last_trusted = address
        return last_trusted

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def _identity_of_peer(self, peer: str) -> str:
        address = parse_address(peer)
        return self.identity(address) if address is not None else peer

    def identity(self, address: Address) -> str:
        """IPv6 clients are grouped by prefix: one host owns a whole /64."""
        if isinstance(address, IPv6Address):
            return str(ip_network(f"{address}/{self._ipv6_prefix}", strict=False))
        return str(address)
