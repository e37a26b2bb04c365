"""Redis URLs checked without the driver, so that checking a config
(``pingpong check-config``, every reload) never imports redis-py or hiredis.

The rules are redis-py's ``parse_url``'s (a number where it parses one, the
port, the scheme) plus ours (the database is a number; a Sentinel URL names
its service); a unit test holds them against redis-py's own parser.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SENTINEL_PORT = 26379
# The query options redis-py parses as numbers (the others it takes as text or flags).
NUMERIC_OPTIONS = {
    "db": int,
    "socket_read_size": int,
    "max_connections": int,
    "health_check_interval": int,
    "ssl_min_version": int,
    "protocol": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "timeout": float,
}


def check_redis_url(url: str) -> None:
    """Raise ValueError naming what is wrong with a redis:// or rediss:// URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"malformed Redis URL: {exc}") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("malformed Redis URL: the scheme must be redis:// or rediss://")
    for name, values in parse_qs(parts.query).items():
        parse = NUMERIC_OPTIONS.get(name)
        if parse is None or not values:
            continue
        try:
            parse(unquote(values[0]))
        except ValueError:
            raise ValueError(f"malformed Redis URL: invalid value for {name!r}") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"malformed Redis URL: the database must be a number, not {path!r}")


def cluster_seed_url(url: str) -> str:
    """A redis+cluster:// URL as the redis:// URL of its seed node."""
    return "redis://" + url.partition("://")[2]


def check_cluster_url(url: str) -> None:
    check_redis_url(cluster_seed_url(url))


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """Hosts, service name, database and password; ValueError naming the fault."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"malformed Sentinel URL: {exc}") from None
    netloc = parts.netloc.rpartition("@")[2]
    hosts = [_host_port(item) for item in netloc.split(",")]
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a Sentinel URL needs the service name: host:port/<service>[/db]")
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"a Sentinel URL ends in /<service>[/<db number>], not {parts.path!r}")
    password = unquote(parts.password) if parts.password else None
    return hosts, path[0], int(path[1]) if len(path) == 2 else 0, password


def check_sentinel_url(url: str) -> None:
    parse_sentinel_url(url)


def _host_port(item: str) -> tuple[str, int]:
    host, colon, port = item.rpartition(":")
    if not colon or (host.startswith("[") != host.endswith("]")):
        host, port = item, ""
    host = host.strip("[]")
    if not host or "[" in host or "]" in host:
        raise ValueError(f"malformed Sentinel host {item!r}: expected host:port")
    if port and not port.isdigit():
        raise ValueError(f"malformed Sentinel host {item!r}: the port must be a number")
    number = int(port) if port else DEFAULT_SENTINEL_PORT
    if not 0 < number < 65536:
        raise ValueError(f"malformed Sentinel host {item!r}: the port must be 1-65535")
    return host, number
