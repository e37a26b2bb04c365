"""Redis Sentinel storage: the master the sentinels name, followed on failover."""

from __future__ import annotations

from typing import Any, ClassVar

from redis.asyncio.sentinel import Sentinel

from pingpong.core.storage.base import StorageOptions
from pingpong.core.storage.redis.client import client_options
from pingpong.core.storage.redis.standalone import RedisStorage
from pingpong.core.storage.redis.urls import check_sentinel_url, parse_sentinel_url


class RedisSentinelStorage(RedisStorage):
    """``redis+sentinel://[:password@]host:port[,host:port]/service[/db]``."""

    schemes: ClassVar[tuple[str, ...]] = ("redis+sentinel",)

    @classmethod
    def check_url(cls, url: str) -> None:
        check_sentinel_url(url)

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
