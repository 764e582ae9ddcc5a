"""Metrics: percentiles, bounded histograms, lineage across stages, snapshot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.function_stage import function_stage
from streamkit.core.metrics import Histogram, Lineage, percentile
from streamkit.core.operators import Collector, IterSource
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import StageContext


@given(
    st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=200),
    st.floats(0.0, 100.0),
)
def test_percentile_matches_numpy_linear(values: list[int], q: float) -> None:
    want = float(np.percentile(np.array(values, dtype=np.float64), q))
    assert percentile(sorted(values), q) == pytest.approx(want, rel=1e-9, abs=1e-3)


def test_histogram_window_is_bounded_but_totals_are_all_time() -> None:
    hist = Histogram("h", window=100)
    for v in range(1000):
        hist.observe(v)
    assert len(hist.values()) == 100
    summary = hist.summary()
    assert summary["count"] == 1000
    assert summary["max_ns"] == 999
    assert summary["mean_ns"] == pytest.approx(499.5)
    assert summary["p50_ns"] == pytest.approx(949.5)  # over the recent window
    assert math.isnan(Histogram("empty").summary()["p50_ns"])


def test_lineage_keeps_first_mark_and_forgets_oldest() -> None:
    lineage = Lineage(max_utterances=2)
    lineage.mark("u1", "asr.partial", 10)
    lineage.mark("u1", "asr.partial", 20)
    lineage.mark("u2", "asr.final", 30)
    lineage.mark("u3", "asr.final", 40)
    assert lineage.ids() == ["u2", "u3"]
    assert lineage.get("u1") == {}
    lineage2 = Lineage()
    lineage2.mark("u", "a", 10)
    lineage2.mark("u", "a", 20)
    assert lineage2.get("u") == {"a": 10}


class Delay:
    """A stage that takes ``ms`` of (virtual) time per packet."""

    def __init__(self, name: str, ms: int) -> None:
        self.name = name
        self.ms = ms

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        async for item in ctx.input():
            await ctx.clock.sleep(self.ms * NS_PER_MS)
            await out.put(item)


@pytest.mark.looptime
async def test_pipeline_measures_latency_e2e_and_lineage_at_the_ports() -> None:
    pipe = Pipeline(LoopClock())
    a, b, c = pipe.edge("a"), pipe.edge("b"), pipe.edge("c")
    packets = [
        Packet("audio", i, i * 20 * NS_PER_MS, 20 * NS_PER_MS, i, lineage=f"utt{i // 5}")
        for i in range(10)
    ]
    pipe.add(IterSource("src", packets, paced=True), outputs={"out": a})
    pipe.add(Delay("vad", 3), {"in": a}, {"out": b})
    pipe.add(Delay("asr", 7), {"in": b}, {"out": c})
    sink = Collector()
    pipe.add(sink, {"in": c})
    await pipe.run()
    assert len(sink.packets) == 10
    snap = pipe.metrics.snapshot()
    hists = snap["histograms"]
    assert hists["stage.vad.latency"]["p50_ns"] == 3 * NS_PER_MS
    assert hists["stage.asr.latency"]["p99_ns"] == 7 * NS_PER_MS
    assert hists["e2e.asr.out"]["p50_ns"] == 10 * NS_PER_MS  # from capture pts
    assert hists["e2e.asr.out"]["count"] == 10
    base = pipe.state.base_time
    assert base is not None
    assert snap["lineage"]["utt1"] == {
        "src.out": base + 100 * NS_PER_MS,
        "vad.out": base + 103 * NS_PER_MS,
        "asr.out": base + 110 * NS_PER_MS,
    }
    assert snap["edges"]["a"]["put"] == 10
    assert snap["edges"]["c"]["peak"] >= 1


@pytest.mark.looptime
async def test_function_chain_sampling_times_one_packet_in_n() -> None:
    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a"), pipe.edge("b")
    packets = [Packet("a", i, i, 1, i) for i in range(10)]
    pipe.add(IterSource("src", packets), outputs={"out": a})
    pipe.add(function_stage("f", lambda p: p, time_every=4), {"in": a}, {"out": b})
    pipe.add(Collector(), {"in": b})
    await pipe.run()
    assert pipe.metrics.histogram("stage.f.f.latency").count == 3  # packets 0, 4, 8
