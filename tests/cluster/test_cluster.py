"""The whole deployment on loopback: HAProxy (deploy/haproxy.cfg, leastconn, /readyz checks)
in front of 3 ``streamkit serve`` workers, one llama.cpp server (the bundled GGUF) that every
worker uses as its LM (``--lm http``), Redis as the session store, real speech.

Checks: a full worker answers 503 and new sessions go elsewhere; sessions spread over the
workers; ``kill -9`` of a worker mid-turn → its clients resume on another worker and every
utterance gets exactly one final transcript and one answer; SIGTERM drain → the turn in flight
finishes there, zero sessions lost, zero new sessions routed to the draining worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streamkit.core.events import ErrorEvent, ResponseDone, SpeechStarted
from streamkit.sources.media_io import load_audio
from streamkit.store.redis import RedisStore
from streamkit.transport.client import Client
from tests.cluster import services
from tests.cluster.services import (
    CLIPS,
    Cluster,
    Service,
    missing_tools,
    start_cluster,
    utterances,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MAX_SESSIONS = 3
GAP_S = 3.5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"not installed: {missing} (scripts/system-deps.sh dev)")
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    running = start_cluster(
        tmp_path_factory.mktemp("cluster"), 3, MAX_SESSIONS, "--drain-deadline-s", "120"
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def clips(data_dir: Path) -> list[npt.NDArray[np.float32]]:
    return [load_audio(data_dir / clip) for clip in CLIPS]


def worker_of(client: Client) -> str:
    response = client.ws.response
    assert response is not None
    return str(response.headers.get("X-Streamkit-Worker", "?"))


async def speak(client: Client, audio: list[npt.NDArray[np.float32]]) -> None:
    # one LM server answers every worker's sessions one at a time: on a loaded machine an
    # answer can take tens of seconds, so the wait is long (a quiet machine never needs it)
    await services.speak(client, audio, GAP_S, timeout_s=180)


def assert_exactly_once(client: Client, expected: int) -> None:
    groups = utterances(client)
    errors = [r.event for r in client.received if isinstance(r.event, ErrorEvent)]
    assert services.exactly_once(groups), (groups, errors)
    assert len(groups) == expected, (groups, errors, client.closed_code)
    assert client.closed_code is None  # the session was never lost


def mid_turn(client: Client) -> bool:
    """The client is speaking or waiting for an answer on its first connection."""
    started = {
        r.event.utterance_id
        for r in client.received
        if isinstance(r.event, SpeechStarted) and r.conn == client.connection
    }
    done = {
        r.event.utterance_id
        for r in client.received
        if isinstance(r.event, ResponseDone) and r.conn == client.connection
    }
    return bool(started - done)


async def test_a_full_worker_answers_503_and_new_sessions_go_elsewhere(cluster: Cluster) -> None:
    full = cluster.workers[0]
    direct = f"ws://127.0.0.1:{full.port}/ws"
    async with Client.connect(direct) as a, Client.connect(direct) as b, Client.connect(direct):
        assert a.created.session_id != b.created.session_id
        status, body = cluster.readyz(full)
        assert (status, body["reason"], body["capacity_left"]) == (503, "full", 0)
        for _ in range(3):  # leastconn would pick the (balancer-idle) full worker first
            async with Client.connect(cluster.url) as client:
                assert worker_of(client) != full.name
                assert isinstance(client.created.session_id, str)
    await asyncio.sleep(1.0)
    assert cluster.readyz(full)[0] == 200  # slots free again


async def test_spread_then_kill_9_mid_turn_resumes_elsewhere_exactly_once(
    cluster: Cluster, clips: list[npt.NDArray[np.float32]]
) -> None:
    plans = [clips[0:2], clips[2:4], clips[4:6]]
    async with (
        Client.connect(cluster.url, resume=True) as c0,
        Client.connect(cluster.url, resume=True) as c1,
        Client.connect(cluster.url, resume=True) as c2,
    ):
        clients = [c0, c1, c2]
        assert {worker_of(c) for c in clients} == {w.name for w in cluster.workers}  # spread
        victim_client = c0
        victim = cluster.by_name[worker_of(victim_client)]
        sid = victim_client.created.session_id

        async def kill_mid_turn() -> None:
            await victim_client.wait_until(lambda: mid_turn(victim_client), 120)
            await asyncio.sleep(0.8)  # inside the utterance: partials/finals in flight
            os.kill(victim.proc.pid, signal.SIGKILL)

        async with asyncio.TaskGroup() as group:
            group.create_task(kill_mid_turn())
            for client, plan in zip(clients, plans, strict=True):
                group.create_task(speak(client, plan))
        assert not victim.alive()
        assert victim_client.connection == 1  # it reconnected once …
        assert victim_client.created.session_id == sid  # … to the same session (Redis)
        assert worker_of(victim_client) != victim.name
        assert victim_client.resumer is not None
        assert victim_client.resumer.superseded  # its utterance in flight was re-sent
        for client, plan in zip(clients, plans, strict=True):
            assert_exactly_once(client, len(plan))
    store = RedisStore(cluster.store_url)
    try:
        record = await store.load(sid)
    finally:
        await store.aclose()
    assert record is not None
    assert record.answered == 2
    said = " ".join(turn.user.lower() for turn in record.turns)  # (a barge-in merges turns)
    assert "forward" in said, record  # the history holds both utterances: it survived the worker
    assert "stars" in said


async def speak_across_the_drain(
    client: Client, before: npt.NDArray[np.float32], after: npt.NDArray[np.float32]
) -> None:
    """One utterance (drained mid-turn: answered there), then, once resumed, another."""
    await speak(client, [before])
    await client.wait_until(lambda: client.connection == 1, 120)
    await speak(client, [after])


async def test_sigterm_drains_finishes_the_turn_and_routes_nothing_new_there(
    cluster: Cluster, clips: list[npt.NDArray[np.float32]]
) -> None:
    alive = cluster.alive()
    assert len(alive) >= 2
    async with (
        Client.connect(cluster.url, resume=True) as c0,
        Client.connect(cluster.url, resume=True) as c1,
    ):
        draining: Service = cluster.by_name[worker_of(c0)]
        before = [r for r in c0.received]
        assert before
        late_workers: list[str] = []

        async def drain_mid_turn() -> None:
            await c0.wait_until(lambda: mid_turn(c0), 120)
            await asyncio.sleep(0.5)
            draining.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            status, body = cluster.readyz(draining)
            assert (status, body["reason"]) == (503, "draining")
            async with Client.connect(cluster.url) as late:  # a new session meanwhile
                late_workers.append(worker_of(late))

        async with asyncio.TaskGroup() as group:
            group.create_task(drain_mid_turn())
            group.create_task(speak_across_the_drain(c0, clips[1], clips[2]))
            group.create_task(speak(c1, clips[3:5]))
        assert late_workers
        assert draining.name not in late_workers  # nothing new routed to the draining worker
        assert c0.connection == 1  # closed with 1001 after its turn, resumed elsewhere
        assert worker_of(c0) != draining.name
        first = [r for r in c0.received if r.conn == 0 and isinstance(r.event, ResponseDone)]
        assert first  # the turn in flight was answered on the draining worker
        assert all(not r.event.cancelled for r in first)
        for client in (c0, c1):
            assert_exactly_once(client, 2)
    draining.proc.wait(30)
    assert draining.proc.returncode == 0
