"""Concurrent /ping traffic for tests (aiohttp: httpx's client is too slow to
outrun the server, which would hide races)."""

from __future__ import annotations

import asyncio

import aiohttp


async def hammer(
    urls: list[str], total: int, concurrency: int = 64, headers: dict[str, str] | None = None
) -> list[int]:
    """Status codes of ``total`` GET /ping spread round-robin over ``urls``."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(url: str) -> int:
            async with session.get(url + "/ping", headers=headers) as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(total)))
