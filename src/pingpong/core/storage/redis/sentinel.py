"""Redis Sentinel storage: the master the sentinels name, followed on failover."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from redis.asyncio.sentinel import Sentinel

from pingpong.core.storage.base import StorageOptions
from pingpong.core.storage.redis.client import client_options
from pingpong.core.storage.redis.standalone import RedisStorage

DEFAULT_PORT = 26379


class RedisSentinelStorage(RedisStorage):
    """``redis+sentinel://[:password@]host:port[,host:port]/service[/db]``."""

    schemes: ClassVar[tuple[str, ...]] = ("redis+sentinel",)

    @classmethod
    def check_url(cls, url: str) -> None:
        parse_sentinel_url(url)

    @classmethod
    def connect(cls, url: str, options: StorageOptions) -> Any:
        hosts, service, db, password = parse_sentinel_url(url)
        auth = {"password": password} if password else {}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            hosts,
            sentinel_kwargs={"socket_connect_timeout": max(options.timeout, 0.5)},
            **auth,
        )
        return sentinel.master_for(service, db=db, **client_options(options))


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


def _host_port(item: str) -> tuple[str, int]:
    host, colon, port = item.rpartition(":")
    if not colon or (host.startswith("[") != host.endswith("]")):
        host, port = item, ""
    host = host.strip("[]")
    if not host or "[" in host or "]" in host:
        raise ValueError(f"malformed Sentinel host {item!r}: expected host:port")
    if port and not port.isdigit():
        raise ValueError(f"malformed Sentinel host {item!r}: the port must be a number")
    number = int(port) if port else DEFAULT_PORT
    if not 0 < number < 65536:
        raise ValueError(f"malformed Sentinel host {item!r}: the port must be 1-65535")
    return host, number
