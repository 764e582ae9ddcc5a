"""``GET /metrics`` on a real server: server-wide series that follow Prometheus' conventions.

Checked with prometheus_client's parser plus a lint of the naming rules (HELP on every
family, counters end in ``_total``, base units, histograms with buckets, no session ids as
label values unless opted in) and, when Debian's ``prometheus`` package is installed, with
``promtool check metrics``.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamkit.core.events import ResponseDone
from streamkit.core.metrics import MetricsRegistry
from streamkit.telemetry.prometheus import ServerMetrics, family_of
from streamkit.transport import Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.echo import echo_factory

pytestmark = pytest.mark.timeout(30)

UNIT_WORDS = re.compile(r"latency|duration|time|interval|lag|compute|wait")


def lint(text: str) -> list[str]:
    """Convention problems of an exposition (empty: none)."""
    problems: list[str] = []
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in types.items():
        if name not in helps:
            problems.append(f"{name}: no # HELP")
        if not name.startswith("streamkit_"):
            problems.append(f"{name}: no streamkit_ prefix")
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: counter without _total")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{name}: _total on a {kind}")
        if kind == "summary":
            problems.append(f"{name}: a summary (not aggregatable): use a histogram")
        if UNIT_WORDS.search(name) and not re.search(r"_seconds(_total)?$|_per_second$", name):
            problems.append(f"{name}: a time without _seconds")
        if re.search(r"_(ns|ms|us)(_|$)", name):
            problems.append(f"{name}: not in base units")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, value in sample.labels.items():
                if key == "session" or re.fullmatch(r"[0-9a-f]{12}", value):
                    problems.append(f"{sample.name}: per-session label {key}={value}")
    return problems


async def _two_sessions(server: Server) -> None:
    async with Client.connect(server.url) as first, Client.connect(server.url) as second:
        for client in (first, second):
            await client.update(pipeline="echo")
            await client.stream_audio(np.zeros(3200, np.float32), realtime=False)
            await client.commit()
            await client.wait_for(lambda r: isinstance(r.event, ResponseDone), 10)
        await first.send_raw("{not json")  # one protocol error, counted by code


async def test_metrics_are_server_wide_and_follow_the_conventions() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with server.running(), httpx.AsyncClient() as http:
        await _two_sessions(server)
        async with Client.connect(server.url) as live:  # one session still open
            await live.update(pipeline="echo")
            reply = await http.get(f"http://127.0.0.1:{server.port}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert lint(text) == []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {s.name: s.value for f in families.values() for s in f.samples if not s.labels}
    # series that outlive the sessions they count
    assert value["streamkit_sessions"] == 1
    assert value["streamkit_sessions_started_total"] == 3
    ended = families["streamkit_sessions_ended"].samples
    assert sum(s.value for s in ended if s.name.endswith("_total")) == 2
    assert {s.labels["pipeline"] for s in ended} == {"echo"}
    assert value["streamkit_audio_received_seconds_total"] == pytest.approx(0.4)
    assert value["streamkit_turns_total"] == 2  # one utterance per commit, both answered
    errors = {s.labels["code"]: s.value for s in families["streamkit_errors"].samples}
    assert errors == {"invalid_json": 1}
    durations = families["streamkit_session_duration_seconds"]
    assert durations.type == "histogram"
    count = next(s for s in durations.samples if s.name.endswith("_count"))
    assert count.value == 2
    if shutil.which("promtool"):
        assert promtool(text) == ""


def promtool(text: str) -> str:
    """``promtool check metrics`` problems of an exposition ("" when it passes)."""
    done = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=20)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_session_latencies_fold_into_histograms_with_bounded_labels() -> None:
    prom = ServerMetrics()
    for key, values in (("a1b2c3d4e5f6", [0.3, 0.7]), ("0123456789ab", [1.2])):
        registry = MetricsRegistry()
        for seconds in values:
            registry.histogram("lm.llamacpp.eos_to_first_token").observe(round(seconds * 1e9))
        registry.counter("asr.decodes.partial").inc(5)
        registry.gauge("asr.lag_s").set(values[-1])
        prom.fold(key, registry)
        prom.fold(key, registry)  # folding again adds nothing
        prom.session_ended(key, registry, pipeline="assistant", reason="closed", duration_s=3)
    text = prom.render({})
    assert lint(text) == []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    hist = families["streamkit_eos_to_first_token_seconds"]
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets["0.5"] == 1
    assert buckets["1.0"] == 2
    assert buckets["+Inf"] == 3
    assert {s.labels.get("backend") for s in hist.samples} == {"llamacpp"}
    decodes = families["streamkit_asr_decodes"].samples
    assert [(s.labels, s.value) for s in decodes] == [({"kind": "partial"}, 10.0)]


def test_session_labels_are_opt_in() -> None:
    registry = MetricsRegistry()
    registry.gauge("asr.lag_s").set(0.25)
    assert "session=" not in ServerMetrics().render({"a1b2c3d4e5f6": registry})
    labelled = ServerMetrics(session_labels=True).render({"a1b2c3d4e5f6": registry})
    assert 'streamkit_asr_lag_seconds{session="a1b2c3d4e5f6"} 0.25' in labelled


def test_unknown_names_still_get_base_units_and_suffixes() -> None:
    rule, _ = family_of("counter", "ws.audio.paced_ns") or (None, None)
    assert rule is not None
    assert rule.family == "streamkit_ws_audio_paced_seconds_total"
    assert rule.factor == 1e-9
    rule, labels = family_of("histogram", "stage.asr.latency") or (None, {})
    assert rule is not None
    assert rule.family == "streamkit_stage_latency_seconds"
    assert labels == {"stage": "asr"}


async def test_metrics_endpoint_needs_the_token_when_one_is_set() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, token="s3cret"))
    async with server.running(), httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{server.port}/metrics"
        assert (await http.get(base)).status_code == 401
        ok = await http.get(base, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "streamkit_sessions 0" in ok.text
        assert 'streamkit_handshakes_refused_total{status="401"} 1' in ok.text
