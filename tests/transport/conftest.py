"""Fixtures for the transport tests: a real server on loopback running the echo pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from streamkit.transport import Limits, Server, ServerOptions
from streamkit.transport.echo import EchoStage, echo_factory


class EchoServer:
    def __init__(self, server: Server, stages: list[EchoStage]) -> None:
        self.server = server
        self.stages = stages

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
async def echo_server() -> AsyncIterator[EchoServer]:
    stages: list[EchoStage] = []
    options = ServerOptions(port=0, limits=replace(Limits(), send_deadline_ms=1000))
    server = Server({"echo": echo_factory(stages=stages)}, options)
    async with server.running():
        yield EchoServer(server, stages)
