"""Drive an RSGI app in process, without a socket (granian calls
``app(scope, proto)``; these stand-ins carry what pingpong reads)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pingpong.http.app import App


class FakeHeaders:
    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = [(k.lower(), v) for k, v in pairs]

    def get(self, key: str, default: None = None) -> str | None:
        return next((v for k, v in self._pairs if k == key), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


@dataclass
class FakeScope:
    path: str
    method: str = "GET"
    query_string: str = ""
    client: str = "127.0.0.1:40000"
    headers: FakeHeaders = field(default_factory=FakeHeaders)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class FakeProto:
    def __init__(self) -> None:
        self.answer: Answer | None = None

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = Answer(status, dict(headers), body)


async def call(
    app: App,
    path: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    client: str = "127.0.0.1:40000",
) -> Answer:
    proto = FakeProto()
    scope = FakeScope(path, method, client=client, headers=FakeHeaders(headers))
    await app(scope, proto)  # type: ignore[arg-type]
    assert proto.answer is not None, "the app answered nothing"
    return proto.answer
