"""Unit tests of the pure fusion context builder (a context designed for small models)."""

from __future__ import annotations

import itertools
import re

from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.events import Detection, Observation, Word
from streamkit.lm.backend import approx_token_count
from streamkit.lm.fusion import (
    DEFAULT_POLICY,
    FusionBuilder,
    FusionConfig,
    Turn,
    describe_observation,
    history_start,
    rank_observations,
)

S = NS_PER_S
MARKUP = re.compile(r"\[\d+(\.\d+)?\]|\b(User|Assistant|camera)\s?:|<\|")


def words(text: str, start: int, step: int = 300 * NS_PER_MS) -> list[Word]:
    return [
        Word(w, start + i * step, start + i * step + step - 20 * NS_PER_MS, 0.9)
        for i, w in enumerate(text.split())
    ]


def obs(pts: int, label: str, jpeg: bytes | None = None, **kw: object) -> Observation:
    fields: dict[str, object] = {
        "pts": pts,
        "detections": [Detection(label, 0.9, (0, 0, 10, 10))],
        "motion": 0.0,
        "brightness": 0.5,
        "colours": ["red"],
        "width": 640,
        "height": 480,
        "keyframe_jpeg": jpeg,
    }
    fields.update(kw)
    return Observation(**fields)  # type: ignore[arg-type]


def builder(**kw: object) -> FusionBuilder:
    return FusionBuilder(FusionConfig(**kw), approx_token_count)  # type: ignore[arg-type]


def test_context_has_no_markup_and_speaks_in_the_second_person() -> None:
    history = [Turn("my name is Alice", 2 * S, 3 * S, "Nice to meet you, Alice.")]
    person = obs(
        int(10.2 * S),
        "face",
        detections=[
            Detection("face", 0.9, (100, 50, 80, 80)),
            Detection("clothes", 0.5, (60, 140, 160, 120), text="blue"),
        ],
    )
    fused = builder().build(history, words("what colour is my shirt", 10 * S), [person], origin=0)
    text = "\n".join(m.content for m in fused.messages)
    assert not MARKUP.search(text.replace("Camera now:", "")), text
    assert "the user" not in text.lower()
    assert 'as "you"' in fused.messages[0].content
    assert fused.messages[-1].content == "what colour is my shirt"  # the words, nothing else
    assert fused.messages[-2].role == "system"
    assert fused.messages[-2].content == (
        "Camera now: one person, wearing blue; mostly red.\n"
        "Remember: Your name is Alice."  # what the user said about themself, second person
    )


def test_refusal_policy_follows_the_instructions_and_survives_new_instructions() -> None:
    b = builder(system_prompt="You are a pirate.")
    system = b.build([], words("hi", S), []).messages[0].content
    assert system.startswith("You are a pirate.")
    assert "I can't tell." in system
    assert system.endswith(DEFAULT_POLICY)
    bare = builder(system_prompt="You are a pirate.", policy="")
    assert bare.build([], words("hi", S), []).messages[0].content == "You are a pirate."


def test_no_observation_says_the_camera_shows_nothing() -> None:
    fused = builder(examples=()).build([], words("what colour is my shirt", S), [])
    assert [m.role for m in fused.messages] == ["system", "system", "user"]
    assert fused.messages[1].content == "Camera now: nothing (no video)."


def test_history_is_real_chat_turns_in_time_order_after_the_examples() -> None:
    utter = words("what am I holding", 10 * S)
    shuffled = [utter[2], utter[0], utter[3], utter[1]]
    history = [
        Turn("second question", 6 * S, 7 * S, "second answer"),
        Turn("first question", 2 * S, 3 * S, "first answer"),
    ]
    b = builder()
    fused = b.build(history, shuffled, [obs(int(10.2 * S), "face")], origin=0)
    roles = [m.role for m in fused.messages]
    n_examples = len(b.config.examples)
    assert roles[0] == "system"
    assert roles[1 : 1 + 3 * n_examples] == ["system", "user", "assistant"] * n_examples
    tail = [(m.role, m.content) for m in fused.messages[1 + 3 * n_examples :]]
    assert tail[:4] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
        ("assistant", "second answer"),
    ]
    assert tail[-1] == ("user", "what am I holding")  # words ordered on the shared clock


def test_times_only_when_asked_for() -> None:
    utter = words("turn left", 4 * S) + words("then stop", 7 * S)
    assert builder().build([], utter, [], origin=S).messages[-1].content == "turn left then stop"
    timed = builder(render_times=True).build([], utter, [], origin=1 * S)
    assert timed.messages[-1].content == "[3.0] turn left [6.0] then stop"


def test_facts_can_go_into_the_user_message_or_the_system_message() -> None:
    seen = [obs(int(1.1 * S), "face")]
    user = builder(facts="user", examples=()).build([], words("hello", S), seen)
    assert user.messages[-1].content == "Camera now: one person; mostly red.\nhello"
    system = builder(facts="system", examples=()).build([], words("hello", S), seen)
    assert [m.role for m in system.messages] == ["system", "user"]
    assert system.messages[0].content.endswith("\nCamera now: one person; mostly red.")


def test_trims_oldest_history_first_under_budget() -> None:
    history = [
        Turn(f"question number {i} " + "pad " * 20, i * 10 * S, i * 10 * S + S, f"answer {i}")
        for i in range(6)
    ]
    utter = words("and now", 100 * S)
    b = builder(budget_tokens=190, utterance_reserve=20, examples=())
    fused = b.build(history, utter, [])
    assert fused.prompt_tokens <= 190
    assert 0 < fused.history_turns < 6
    kept = " ".join(m.content for m in fused.messages)
    assert "question number 5" in kept
    assert "question number 0" not in kept
    turns = [m.content for m in fused.messages if m.content.startswith("question number")]
    numbers = [int(c.split("number ")[1].split()[0]) for c in turns]
    assert numbers == list(range(6 - len(numbers), 6))  # newest, contiguous, in time order
    everything = builder(budget_tokens=10_000).build(history, utter, [])
    assert everything.history_turns == 6


def test_history_kept_does_not_change_while_the_utterance_grows() -> None:
    history = [Turn(f"q{i} " + "pad " * 20, i * 10 * S, i * 10 * S + S, f"a{i}") for i in range(8)]
    b = builder(budget_tokens=260, utterance_reserve=60, examples=())
    prompts = [
        b.build(history, words(" ".join(["word"] * n), 100 * S), []).messages for n in (1, 10, 30)
    ]
    assert prompts[0][:-1] == prompts[1][:-1] == prompts[2][:-1]  # same cached prefix
    turns = (len(prompts[0]) - 3) // 2
    assert 0 < turns < 8
    long = b.build(history, words(" ".join(["word"] * 150), 100 * S), [])
    assert long.prompt_tokens <= 260
    assert long.history_turns < turns  # a long utterance still fits: older history gives way


def test_budget_drops_far_observations_then_oldest_words_but_keeps_system_and_examples() -> None:
    utter = words(" ".join(f"w{i}" for i in range(60)), 10 * S, 100 * NS_PER_MS)
    seen = [obs(int(12 * S), "near"), obs(int(6 * S), "far")]
    b = builder(budget_tokens=500, max_observations=2)
    fused = b.build([], utter, seen)
    assert fused.prompt_tokens <= 500
    assert fused.messages[0].content == b.system_text()
    assert len(fused.messages) == 1 + 3 * len(b.config.examples) + 2
    assert all(o.detections[0].label != "far" for o in fused.observations)
    assert fused.words_dropped > 0
    assert fused.messages[-1].content.endswith("w59")


def test_picks_the_frame_during_the_utterance_not_the_latest() -> None:
    utter = words("what am I holding", 20 * S)  # 20.0 – 21.2 s
    seen = [
        obs(int(15 * S), "before", b"before"),
        obs(int(20.6 * S), "cup", b"during"),
        obs(int(21.5 * S), "after", b"latest"),
    ]
    fused = builder(max_observations=1, attach_keyframe=True).build([], utter, seen)
    assert [o.detections[0].label for o in fused.observations] == ["cup"]
    assert fused.keyframe_jpeg == b"during"
    assert fused.messages[-1].image_jpeg == b"during"
    ranked = rank_observations(seen, 20 * S, int(21.2 * S), FusionConfig())
    assert [o.detections[0].label for o in ranked] == ["cup", "before", "after"]


def test_the_latest_frame_before_the_window_is_still_the_current_view() -> None:
    cfg = FusionConfig(lookback_ns=5 * S, lookahead_ns=S // 2)
    seen = [obs(1 * S, "ancient"), obs(2 * S, "old"), obs(int(12.1 * S), "after")]
    ranked = rank_observations(seen, 10 * S, 12 * S, cfg)
    assert [o.detections[0].label for o in ranked] == ["old", "after"]  # "ancient" is gone
    seen.append(obs(int(9.9 * S), "before"))
    ranked = rank_observations(seen, 10 * S, 12 * S, cfg)
    assert [o.detections[0].label for o in ranked] == ["before", "old", "after"]


def test_describe_observation_counts_people_once_and_names_text_and_codes() -> None:
    o = Observation(
        pts=0,
        detections=[
            Detection("person", 0.8, (0, 0, 100, 300)),
            Detection("face", 0.9, (30, 10, 40, 40)),  # the same person's face
            Detection("face", 0.8, (300, 10, 40, 40)),
            Detection("clothes", 0.5, (0, 60, 100, 100), text="blue"),
            Detection("text", 0.95, (0, 0, 1, 1), text="EXIT 12"),
            Detection("qr", 1.0, (0, 0, 1, 1), text="hello"),
        ],
        motion=0.25,
        brightness=0.1,
        colours=["red", "white"],
        width=1,
        height=1,
    )
    assert describe_observation(o) == (
        'two people, wearing blue; a sign reads "EXIT 12"; a QR code reads "hello"; '
        "something is moving; it is dark; mostly red and white"
    )
    empty = Observation(0, [], 0.0, 0.5, [], 1, 1, summary="ignored")
    assert describe_observation(empty) == "no people"


def test_history_start_keeps_what_fits_and_moves_in_blocks() -> None:
    assert history_start([], 100) == 0
    assert history_start([30, 30, 30], 100) == 0  # everything fits
    # blocks of >= 50 tokens from the oldest: [0, 1] [2, 3] [4, ...]
    costs = [30, 30, 30, 30, 30]
    assert history_start(costs, 100) == 2  # 3 turns would fit; the start is a block boundary
    assert sum(costs[history_start(costs, 100) :]) <= 100
    assert history_start([30, 30, 30, 30, 30, 30], 100) == 4
    assert history_start([10, 500], 100) == 2  # a turn that fits no room: none kept
    assert history_start([120, 10], 100) == 1  # a turn larger than a block: the newest that fit


def test_the_kept_history_changes_its_first_turn_only_once_a_block_is_full() -> None:
    """A long conversation: the cached prefix (the examples, then the kept history) keeps its
    first turn for several turns, instead of losing the oldest turn at every new one."""
    b = builder(budget_tokens=400, utterance_reserve=40, examples=())
    history: list[Turn] = []
    firsts: list[str] = []
    for i in range(24):
        fused = b.build(history, words("and then", 1000 * S), [])
        assert fused.prompt_tokens <= 400
        if fused.history_turns:
            firsts.append(fused.messages[1].content)
        history.append(Turn(f"question {i} " + "pad " * 12, i * 10 * S, i * 10 * S + S, f"a{i}"))
    changes = sum(1 for a, b_ in itertools.pairwise(firsts) if a != b_)
    assert len(firsts) > 20
    assert 0 < changes <= len(firsts) // 3  # a block of turns dropped at once
    assert firsts[-1] != firsts[0]  # the window still moves on
