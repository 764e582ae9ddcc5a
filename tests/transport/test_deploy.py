"""A worker behind a balancer, on a real server on loopback (echo pipeline): health and
readiness, capacity in the metrics, resume by session id, graceful drain."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import ResponseDelta, ResponseDone, TranscriptFinal
from streamkit.store import MemoryStore
from streamkit.transport import Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.deployment import DRAIN_REASON, Deployment, DeploymentOptions
from streamkit.transport.echo import echo_factory

pytestmark = pytest.mark.timeout(60)


def _server(max_sessions: int = 4, tokens: int = 5, token_ms: int = 20, **deploy: object) -> Server:
    deployment = Deployment(DeploymentOptions(**deploy))  # type: ignore[arg-type]
    factory = echo_factory(tokens=tokens, token_ns=token_ms * NS_PER_MS)
    return Server(
        {"echo": factory}, ServerOptions(port=0, max_sessions=max_sessions), deployment=deployment
    )


async def _probe(
    http: httpx.AsyncClient, server: Server, path: str
) -> tuple[int, dict[str, object]]:
    reply = await http.get(f"http://127.0.0.1:{server.port}{path}")
    assert reply.headers["content-type"] == "application/json"
    return reply.status_code, json.loads(reply.text)


async def _turn(client: Client) -> ResponseDone:
    await client.stream_audio(np.zeros(3200, np.float32), realtime=False)
    before = len(client.of_type(ResponseDone))
    await client.commit()
    await client.wait_until(lambda: len(client.of_type(ResponseDone)) > before, 10)
    done: ResponseDone = client.of_type(ResponseDone)[-1]
    return done


async def test_health_and_readiness_follow_capacity_loading_and_draining() -> None:
    server = _server(max_sessions=1)
    async with server.running(), httpx.AsyncClient() as http:
        status, body = await _probe(http, server, "/healthz")
        assert status == 200
        assert body["reason"] == "ready"
        status, body = await _probe(http, server, "/readyz")
        assert status == 200
        assert body["ready"] is True
        assert body["capacity_left"] == 1
        assert body["store"] == "memory"
        async with Client.connect(server.url):
            status, body = await _probe(http, server, "/readyz")
            assert (status, body["reason"], body["sessions"], body["capacity_left"]) == (
                503,
                "full",
                1,
                0,
            )
            assert (await _probe(http, server, "/healthz"))[0] == 200  # alive all the same
            with pytest.raises(InvalidStatus) as refused:
                await connect(server.url)
            assert refused.value.response.status_code == 503
        server.deployment.models_loaded = False
        status, body = await _probe(http, server, "/readyz")
        assert (status, body["reason"]) == (503, "loading")
        with pytest.raises(InvalidStatus):
            await connect(server.url)
        server.deployment.models_loaded = True
        assert (await _probe(http, server, "/readyz"))[0] == 200


async def test_capacity_and_readiness_are_in_the_metrics() -> None:
    server = _server(max_sessions=3)
    async with server.running(), httpx.AsyncClient() as http, Client.connect(server.url):
        reply = await http.get(f"http://127.0.0.1:{server.port}/metrics")
        families = {f.name: f for f in text_string_to_metric_families(reply.text)}
        value = {name: f.samples[0].value for name, f in families.items() if f.samples}
        assert value["streamkit_ready"] == 1
        assert value["streamkit_max_sessions"] == 3
        assert value["streamkit_capacity_left"] == 2
        assert value["streamkit_draining"] == 0


async def test_a_client_resumes_its_session_by_id_after_an_abnormal_close() -> None:
    server = _server()
    async with server.running(), Client.connect(server.url, resume=True) as client:
        await client.update(pipeline="echo", partials=False, metrics_interval_ms=0)
        await _turn(client)
        sid = client.created.session_id
        await client.wait_until(lambda: server.deployment.keepers[sid].saves >= 2, 5)
        server.sessions[sid].ws.transport.abort()  # the connection dies (no close frame)
        await client.wait_until(lambda: client.connection == 1, 10)
        assert client.created.session_id == sid
        assert client.created.config.partials is False  # the stored settings came back
        assert client.resumer is not None
        assert client.resumer.resumes == 1
        done = await _turn(client)
        assert not done.cancelled
        assert sum(1 for r in client.received if isinstance(r.event, ResponseDone)) == 2


async def test_an_unknown_session_id_gets_a_fresh_session() -> None:
    server = _server()
    async with server.running(), connect(server.url + "?resume=nosuchsession&answered=0") as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created"
        assert created["session_id"] != "nosuchsession"


async def test_drain_finishes_the_turn_in_flight_then_closes_1001_and_refuses_new() -> None:
    store = MemoryStore()
    server = _server(tokens=10, token_ms=100, store=store, drain_deadline_s=10)  # a 1 s answer
    async with server.running(), httpx.AsyncClient() as http:
        async with Client.connect(server.url) as client:
            await client.update(pipeline="echo", metrics_interval_ms=0)
            await client.stream_audio(np.zeros(3200, np.float32), realtime=False)
            await client.commit()
            await client.wait_for(lambda r: isinstance(r.event, ResponseDelta), 10)
            async with asyncio.TaskGroup() as group:
                drain = group.create_task(server.drain())
                await asyncio.sleep(0)  # the drain has begun
                status, body = await _probe(http, server, "/readyz")
                assert (status, body["reason"], body["draining"]) == (503, "draining", True)
                with pytest.raises(InvalidStatus) as refused:
                    await connect(server.url)
                assert refused.value.response.status_code == 503
            await drain
            await client.wait_until(lambda: client.closed_code is not None, 5)
            assert client.closed_code == 1001
            assert client.ws.close_reason == DRAIN_REASON
            dones = client.of_type(ResponseDone)
            assert len(dones) == 1
            assert not dones[0].cancelled
            assert len(client.of_type(ResponseDelta)) == 10  # the whole answer, then 1001
            assert len(client.of_type(TranscriptFinal)) == 1
        record = await store.load(client.created.session_id)
        assert record is not None
        assert record.answered == 1
