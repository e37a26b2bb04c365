"""Storage URLs are checked without the drivers; the Redis rules hold against
redis-py's own parser (the driver that will open the URL), and every scheme
names a backend that declares it."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import parse_url

from pingpong.core.storage.registry import SCHEMES, backend_for, check_url

URLS = [
    "redis://127.0.0.1:6379/0",
    "redis://:secret@h:6380",
    "rediss://user:pw@h:6380/2?ssl_ca_certs=/etc/ca.pem",
    "redis://h/3?socket_timeout=0.5&max_connections=10",
    "redis://h?socket_timeout=soon",
    "redis://h?max_connections=1.5",
    "redis://h?health_check_interval=x",
    "redis://h?protocol=three",
    "redis://h?socket_keepalive=maybe",
    "redis://127.0.0.1:abc",
    "redis://h:99999",
    "redis://[::1",
    "redis://[::1]:6379/0",
    "rediss://h:x",
]


@pytest.mark.parametrize("url", URLS)
def test_a_redis_url_is_refused_exactly_when_redis_py_refuses_it(url: str) -> None:
    try:
        parse_url(url)
        driver_error = None
    except ValueError as exc:
        driver_error = exc
    if driver_error is None:
        check_url(url)
    else:
        with pytest.raises(ValueError, match="malformed Redis URL"):
            check_url(url)


@pytest.mark.parametrize("url", ["redis://h/zero", "redis://h/0/1"])
def test_the_database_is_a_number(url: str) -> None:
    with pytest.raises(ValueError, match="the database must be a number"):
        check_url(url)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_each_scheme_names_a_backend_that_declares_it(scheme: str) -> None:
    backend = backend_for(f"{scheme}://")
    assert scheme in backend.schemes
