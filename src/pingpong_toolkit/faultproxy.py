"""A TCP proxy between the service and Redis that misbehaves on command.

The kernel's netem is not available on CI machines like ours, so network
faults are made here, in user space: every byte between client and upstream
goes through this proxy's event loop (a thread of its own), which can

- ``delay(s)``: hold every chunk ``s`` seconds before forwarding it;
- ``stall()`` / ``flow()``: stop forwarding (connections stay open, nothing
  arrives: a partition or a frozen peer), then forward again;
- ``drop()``: close every connection cleanly (FIN);
- ``reset()``: abort every connection (RST);
- ``refuse()`` / ``accept()``: refuse new connections (nothing listens), then
  listen again on the same port;
- ``heal()``: all of that undone.

Each command returns once the event loop has applied it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pingpong_toolkit.ports import HOST

CHUNK = 65536
T = TypeVar("T")


@dataclass(eq=False)
class Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def writers(self) -> tuple[asyncio.StreamWriter, asyncio.StreamWriter]:
        return self.client, self.upstream


class FaultProxy:
    """``FaultProxy(upstream_port).start()``; clients connect to ``port``."""

    def __init__(self, upstream_port: int, upstream_host: str = HOST, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.accepted = 0  # connections accepted since start
        self._delay = 0.0
        self._links: set[Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()

    # -- life cycle

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        return len(self._links)

    # -- faults

    def delay(self, seconds: float) -> None:
        """Every chunk, both ways, waits ``seconds`` before it is forwarded."""
        self._call(self._set_delay(seconds))

    def stall(self) -> None:
        self._call(self._set_flowing(False))

    def flow(self) -> None:
        self._call(self._set_flowing(True))

    def drop(self) -> int:
        """Close every open connection (FIN both ways); how many there were."""
        return self._call(self._close_all(reset=False))

    def reset(self) -> int:
        """Abort every open connection with a TCP RST; how many there were."""
        return self._call(self._close_all(reset=True))

    def refuse(self) -> None:
        """Stop listening: new connections are refused (ECONNREFUSED)."""
        self._call(self._stop_listening())

    def accept(self) -> None:
        self._call(self._listen())

    def heal(self) -> None:
        """No delay, forwarding, listening: a healthy network again."""
        self.delay(0.0)
        self.flow()
        self.accept()

    # -- the event loop's side

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing.set()
        await self._listen()

    async def _stop(self) -> None:
        await self._stop_listening()
        await self._close_all(reset=False)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, HOST, self.port, reuse_address=True
            )
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()  # the listening socket only: open links stay
            self._server = None

    async def _set_delay(self, seconds: float) -> None:
        self._delay = seconds

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _close_all(self, reset: bool) -> int:
        links = list(self._links)
        for link in links:
            self._close(link, reset)
        return len(links)

    def _close(self, link: Link, reset: bool = False) -> None:
        self._links.discard(link)
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in link.writers():
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:  # linger 0: close() sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()  # upstream down: the client sees its connection closed
            return
        link = Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]

    async def _pump(
        self, source: asyncio.StreamReader, target: asyncio.StreamWriter, link: Link
    ) -> None:
        """Forward chunks until either side closes, then close both."""
        try:
            while chunk := await source.read(CHUNK):
                await self._flowing.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
                    await self._flowing.wait()
                target.write(chunk)
                await target.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        if link in self._links:
            self._close(link)
