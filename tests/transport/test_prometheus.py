"""``GET /metrics`` on a real server: Prometheus text for every live session, token-guarded."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamkit.events import ResponseDone
from streamkit.transport import Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.echo import echo_factory

pytestmark = pytest.mark.timeout(30)


async def test_metrics_endpoint_labels_each_live_session() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with (
        server.running(),
        httpx.AsyncClient() as http,
        Client.connect(server.url) as first,
        Client.connect(server.url) as second,
    ):
        for client in (first, second):
            await client.update(pipeline="echo")
            await client.stream_audio(np.zeros(3200, np.float32), realtime=False)
            await client.commit()
            await client.wait_for(lambda r: isinstance(r.event, ResponseDone), 10)
        reply = await http.get(f"http://127.0.0.1:{server.port}/metrics")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(reply.text)}
        assert families["streamkit_sessions"].samples[0].value == 2
        sessions = {
            sample.labels["session"]
            for family in families.values()
            for sample in family.samples
            if "session" in sample.labels
        }
        assert sessions == set(server.sessions)
        assert any(name.startswith("streamkit_edge_") for name in families)


async def test_metrics_endpoint_needs_the_token_when_one_is_set() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, token="s3cret"))
    async with server.running(), httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{server.port}/metrics"
        assert (await http.get(base)).status_code == 401
        ok = await http.get(base, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "streamkit_sessions 0" in ok.text
