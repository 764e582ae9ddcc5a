"""Unit tests of the pure fusion context builder."""

from __future__ import annotations

from streamkit.clock import NS_PER_MS, NS_PER_S
from streamkit.events import Detection, Observation, Word
from streamkit.lm.backend import approx_token_count
from streamkit.lm.fusion import (
    FusionBuilder,
    FusionConfig,
    Turn,
    describe_observation,
    rank_observations,
)

S = NS_PER_S


def words(text: str, start: int, step: int = 300 * NS_PER_MS) -> list[Word]:
    return [
        Word(w, start + i * step, start + i * step + step - 20 * NS_PER_MS, 0.9)
        for i, w in enumerate(text.split())
    ]


def obs(pts: int, label: str, jpeg: bytes | None = None) -> Observation:
    return Observation(
        pts=pts,
        detections=[Detection(label, 0.9, (0, 0, 10, 10))],
        motion=0.1,
        brightness=0.5,
        colours=["red"],
        width=640,
        height=480,
        keyframe_jpeg=jpeg,
    )


def builder(**kw: object) -> FusionBuilder:
    return FusionBuilder(FusionConfig(**kw), approx_token_count)  # type: ignore[arg-type]


def test_orders_everything_on_the_shared_clock_not_arrival_order() -> None:
    utter = words("what am I holding", 10 * S)
    shuffled = [utter[2], utter[0], utter[3], utter[1]]
    seen = [obs(int(10.9 * S), "cup"), obs(int(10.2 * S), "face")]
    history = [
        Turn("second question", 6 * S, 7 * S, "second answer"),
        Turn("first question", 2 * S, 3 * S, "first answer"),
    ]
    fused = builder(max_observations=2, history="chat").build(history, shuffled, seen, origin=0)
    contents = [m.content for m in fused.messages]
    assert [m.role for m in fused.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert "first question" in contents[1]
    assert "second question" in contents[3]
    last = contents[-1]
    assert last.index("10.2] camera: 1 face") < last.index("10.9] camera: 1 cup")
    assert last.endswith("User: [10.0] what am I holding")
    assert [o.pts for o in fused.observations] == sorted(o.pts for o in fused.observations)


def test_words_carry_their_times_after_a_pause() -> None:
    utter = words("turn left", 4 * S) + words("then stop", 7 * S)
    fused = builder().build([], utter, [], origin=1 * S)
    assert fused.messages[-1].content == "User: [3.0] turn left [6.0] then stop"


def test_trims_oldest_history_first_under_budget() -> None:
    history = [
        Turn(f"question number {i} " + "pad " * 20, i * 10 * S, i * 10 * S + S, f"answer {i}")
        for i in range(6)
    ]
    utter = words("and now", 100 * S)
    b = builder(budget_tokens=150, utterance_reserve=20, history="chat")
    fused = b.build(history, utter, [])
    assert fused.prompt_tokens <= 150
    assert 0 < fused.history_turns < 6
    kept = " ".join(m.content for m in fused.messages)
    assert "question number 5" in kept
    assert "question number 0" not in kept
    # the kept turns are the newest ones, contiguous and in time order
    numbers = [int(m.content.split("number ")[1].split()[0]) for m in fused.messages[1:-1:2]]
    assert numbers == list(range(6 - len(numbers), 6))
    everything = builder(budget_tokens=10_000, history="chat").build(history, utter, [])
    assert everything.history_turns == 6


def test_history_kept_does_not_change_while_the_utterance_grows() -> None:
    history = [Turn(f"q{i} " + "pad " * 20, i * 10 * S, i * 10 * S + S, f"a{i}") for i in range(8)]
    b = builder(budget_tokens=200, utterance_reserve=60, history="chat")
    prompts = [
        b.build(history, words(" ".join(["word"] * n), 100 * S), []).messages for n in (1, 10, 30)
    ]
    assert prompts[0][:-1] == prompts[1][:-1] == prompts[2][:-1]  # same cached prefix
    assert 0 < len(prompts[0]) - 2 < 16
    # an utterance longer than the reserve still fits: older history gives way
    long = b.build(history, words(" ".join(["word"] * 150), 100 * S), [])
    assert long.prompt_tokens <= 200
    assert long.history_turns < (len(prompts[0]) - 2) // 2


def test_budget_drops_far_observations_then_oldest_words_but_keeps_the_system_prompt() -> None:
    utter = words(" ".join(f"w{i}" for i in range(60)), 10 * S, 100 * NS_PER_MS)
    seen = [obs(int(12 * S), "near"), obs(int(6 * S), "far")]
    b = builder(budget_tokens=110, max_observations=2)
    fused = b.build([], utter, seen)
    assert fused.prompt_tokens <= 110
    assert fused.messages[0].content == b.config.system_prompt
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


def test_before_the_utterance_beats_after_and_old_frames_are_ignored() -> None:
    cfg = FusionConfig(lookback_ns=5 * S, lookahead_ns=S // 2)
    seen = [obs(1 * S, "ancient"), obs(int(9.9 * S), "before"), obs(int(12.1 * S), "after")]
    ranked = rank_observations(seen, 10 * S, 12 * S, cfg)
    assert [o.detections[0].label for o in ranked] == ["before", "after"]


def test_describe_observation() -> None:
    o = Observation(
        pts=0,
        detections=[
            Detection("face", 0.9, (0, 0, 1, 1)),
            Detection("face", 0.8, (0, 0, 1, 1)),
            Detection("qr", 1.0, (0, 0, 1, 1), text="hello"),
        ],
        motion=0.25,
        brightness=0.5,
        colours=["red", "white"],
        width=1,
        height=1,
    )
    text = describe_observation(o)
    assert text.startswith('2 faces; 1 qr; qr text "hello"; colours red, white')
    assert describe_observation(Observation(0, [], 0.0, 0.0, [], 1, 1, summary="a cat")) == "a cat"


def test_said_history_lists_the_users_words_in_the_system_message_under_budget() -> None:
    history = [
        Turn(f"question {i} " + "pad " * 10, i * 10 * S, i * 10 * S + S, f"a{i}") for i in range(6)
    ]
    b = builder(budget_tokens=170, utterance_reserve=30)
    fused = b.build(history, words("and now", 100 * S), [])
    [system, user] = fused.messages
    assert system.content.startswith(b.config.system_prompt + "\n\nEarlier the user said:\n[")
    lines = system.content.split("\n")
    assert lines[-1].startswith("[50.0] question 5")  # newest last, in time order
    assert [line.split()[0] for line in lines[3:]] == sorted(line.split()[0] for line in lines[3:])
    assert "a5" not in system.content  # the assistant's own answers are not shown
    assert 0 < fused.history_turns < 6
    assert "question 0" not in system.content
    assert fused.prompt_tokens <= 170
    assert user.content == "User: [100.0] and now"
