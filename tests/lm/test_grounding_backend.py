"""The grounding layer as a backend: fused requests in, grounded or verified answers out."""

from __future__ import annotations

import asyncio

from streamkit.core.clock import NS_PER_MS, NS_PER_S, ManualClock
from streamkit.core.events import Detection, Observation, Word
from streamkit.lm.backend import LMRequest, approx_token_count
from streamkit.lm.fusion import FusionBuilder, FusionConfig, Turn
from streamkit.lm.grounding_backend import GroundedBackend, read_request
from streamkit.lm.grounding_facts import SceneFacts
from streamkit.lm.scripted import ScriptedBackend

S = NS_PER_S


def words(text: str, start: int = 10 * S) -> list[Word]:
    step = 300 * NS_PER_MS
    return [
        Word(w, start + i * step, start + (i + 1) * step, 0.9) for i, w in enumerate(text.split())
    ]


PERSON = Observation(
    pts=10 * S,
    detections=[Detection("face", 0.9, (100, 50, 80, 80)),
                Detection("clothes", 0.5, (60, 140, 160, 120), text="purple")],
    motion=0.0, brightness=0.6, colours=["white"], width=640, height=480,
)  # fmt: skip


def request(
    text: str, seen: list[Observation], history: list[Turn] | None = None, **kw: object
) -> LMRequest:
    builder = FusionBuilder(FusionConfig(**kw), approx_token_count)  # type: ignore[arg-type]
    return LMRequest(builder.build(history or [], words(text), seen).messages)


def complete(backend: GroundedBackend, req: LMRequest) -> str:
    async def run() -> str:
        return "".join([piece async for piece in backend.complete(req)])

    return asyncio.run(run())


def test_read_request_finds_the_current_question_facts_and_memory() -> None:
    history = [Turn("I live in Lyon.", 2 * S, 3 * S, "Okay.")]
    for where in ("before", "user", "system"):
        question, facts, memory = read_request(request("what is this", [PERSON], history,
                                                       facts=where))  # fmt: skip
        assert question == "what is this", where
        assert facts == SceneFacts(people=1, wearing=("purple",), colours=("white",)), where
        assert [f.sentence for f in memory.values()] == ["You live in Lyon."], where
    question, facts, _ = read_request(request("hi there", []))
    assert question == "hi there"
    assert facts == SceneFacts(video=False)  # not the worked examples' camera lines
    marked = read_request(request("hi", [PERSON], render_times=True))[1]
    assert marked is not None
    assert marked.people == 1


def test_scene_and_memory_questions_never_reach_the_model() -> None:
    model = ScriptedBackend("You are wearing a red hat.", clock=ManualClock())
    reasons: list[str] = []
    grounded = GroundedBackend(model, on_grounded=reasons.append)
    assert complete(grounded, request("which colour is my jacket", [PERSON])) == (
        "Your jacket looks purple."
    )
    assert complete(grounded, request("what brand is my phone", [PERSON])) == (
        "I can't tell from what I see."
    )
    history = [Turn("my cat is called Tofu", 2 * S, 3 * S, "Okay.")]
    assert complete(grounded, request("what is my cat called", [], history)) == (
        "Your cat is called Tofu."
    )
    assert model.requests == []
    assert reasons == ["clothing", "unseen", "memory"]


def test_other_questions_go_to_the_model_through_the_verifier() -> None:
    model = ScriptedBackend("The capital of Chile is Santiago.", clock=ManualClock())
    verified: list[int] = []
    grounded = GroundedBackend(model, on_verified=lambda: verified.append(1))
    assert complete(grounded, request("what is the capital of Chile", [PERSON])) == (
        "The capital of Chile is Santiago."
    )
    model.reply = "Hi! I see you are holding a green cup."
    assert complete(grounded, request("please greet me", [PERSON])) == "Hi!"
    assert len(model.requests) == 2
    assert verified == [1]


def test_model_mode_passes_everything_through() -> None:
    model = ScriptedBackend("It is a lovely purple.", clock=ManualClock())
    grounded = GroundedBackend(model, mode="facts")
    grounded.set_mode("model")
    assert complete(grounded, request("what colour is my shirt", [PERSON])) == (
        "It is a lovely purple."
    )
    assert len(model.requests) == 1
    assert grounded.name == model.name
    assert grounded.count_tokens("abcd efgh") == model.count_tokens("abcd efgh")


def test_the_assistant_grounds_by_default_and_a_session_may_switch() -> None:
    from typing import Any, cast

    from streamkit.core.operators import Collector, IterSource
    from streamkit.pipelines.assistant import AssistantConfig, Models, build

    def controls(config: AssistantConfig) -> Any:  # built, never run: no Whisper needed
        models = Models(whisper=cast(Any, None), lm=ScriptedBackend(reply="ok"))
        return build(config, models, IterSource("source", [], port="audio"), Collector())[1]

    session = controls(AssistantConfig())
    backend = session._responder.backend
    assert isinstance(backend, GroundedBackend)
    assert backend.mode == "facts"
    session.set_grounding("model")
    assert backend.mode == "model"
    session.set_grounding("")  # the configured mode again
    assert backend.mode == "facts"
    assert controls(AssistantConfig(grounding="model"))._responder.backend.mode == "model"
