from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

from hypothesis import given
from hypothesis import strategies as st

from pingpong.core.clientip import ClientResolver, forwarded_for, parse_address

TRUSTED = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]
resolver = ClientResolver(TRUSTED)


class Headers(list[tuple[str, str]]):
    """Request headers as the server hands them over: repeated names kept."""

    def get(self, key: str, default: None = None) -> str | None:
        return next((v for k, v in self if k == key), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self)


NONE = Headers()


def xff(*values: str) -> Headers:
    return Headers(("x-forwarded-for", v) for v in values)


def test_untrusted_peer_headers_are_ignored() -> None:
    assert resolver.resolve("203.0.113.9", xff("1.2.3.4")) == "203.0.113.9"


def test_rightmost_untrusted_address_wins() -> None:
    headers = xff("6.6.6.6, 198.51.100.7", "10.1.1.1")
    assert resolver.resolve("10.0.0.2", headers) == "198.51.100.7"


def test_all_trusted_chain_falls_back_to_the_leftmost_proxy() -> None:
    assert resolver.resolve("10.0.0.2", xff("10.9.9.9")) == "10.9.9.9"


def test_malformed_entry_pins_the_client_to_the_last_trusted_hop() -> None:
    assert resolver.resolve("10.0.0.2", xff("1.1.1.1, garbage")) == "10.0.0.2"
    assert resolver.resolve("10.0.0.2", xff("1.1.1.1, unknown, 10.0.0.9")) == "10.0.0.9"


def test_ipv6_grouped_by_64_and_mapped_ipv4_unwrapped() -> None:
    assert resolver.resolve("2001:db8:1:2:aaaa::1", NONE) == "2001:db8:1:2::/64"
    assert resolver.resolve("2001:db8:1:2:bbbb::9", NONE) == "2001:db8:1:2::/64"
    assert resolver.resolve("::ffff:192.0.2.1", NONE) == "192.0.2.1"
    assert ClientResolver(ipv6_prefix=128).resolve("2001:db8::1", NONE) == "2001:db8::1/128"


def test_forwarded_header() -> None:
    r = ClientResolver(TRUSTED, header="forwarded")
    headers = Headers([("forwarded", 'for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"')])
    assert r.resolve("10.0.0.1", headers) == "2001:db8::/64"
    assert forwarded_for("for=_hidden, by=1.2.3.4") == ["_hidden", ""]
    assert r.resolve("10.0.0.1", Headers([("forwarded", "for=_hidden")])) == "10.0.0.1"


def test_parse_address_forms() -> None:
    assert parse_address("1.2.3.4:80") == IPv4Address("1.2.3.4")
    assert parse_address("[::1]:80") == IPv6Address("::1")
    assert parse_address('"[::1]"') == IPv6Address("::1")
    assert parse_address("[::1") is None
    assert parse_address("300.1.1.1") is None


junk = st.text(alphabet=st.characters(codec="latin-1"), max_size=40)
v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)


@given(st.one_of(v4, v6), st.lists(st.one_of(v4, v6, junk), max_size=6))
def test_an_untrusted_peer_can_never_change_its_identity(peer: str, entries: list[str]) -> None:
    if any(parse_address(peer) in n for n in TRUSTED):
        return
    alone = resolver.resolve(peer, NONE)
    assert resolver.resolve(peer, xff(", ".join(entries))) == alone
    fwd = ClientResolver(TRUSTED, header="forwarded")
    assert (
        fwd.resolve(peer, Headers([("forwarded", ", ".join(f"for={e}" for e in entries))])) == alone
    )


@given(v4, st.lists(st.one_of(v4, junk), max_size=6))
def test_a_client_behind_a_trusted_proxy_cannot_escape(client: str, spoofed: list[str]) -> None:
    """Whatever a client prepends, the proxy's appended entry decides."""
    if any(parse_address(client) in n for n in TRUSTED):
        return
    headers = xff(", ".join([*spoofed, client]))
    assert resolver.resolve("10.0.0.1", headers) == client
