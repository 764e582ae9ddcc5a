"""The shared model flags: they reach the assistant's config, and bad paths fail clearly."""

from __future__ import annotations

import argparse

import pytest

from streamkit.asr.whisper import ModelNotFound
from streamkit.commands.model_options import add_model_arguments, assistant_config
from streamkit.lm.backend import BackendUnavailable
from streamkit.lm.load import LMSpec
from streamkit.pipelines.assistant import AssistantConfig, Models


def parse(*argv: str) -> AssistantConfig:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    return assistant_config(parser.parse_args(list(argv)))


def test_defaults_are_the_bundled_models() -> None:
    config = parse()
    assert config.lm.engine == "auto"
    assert config.lm.model is None
    assert config.asr.whisper.model is None
    assert config.asr.whisper.compute_type == "int8"


def test_flags_reach_the_config() -> None:
    config = parse(
        "--asr-model", "/m/whisper", "--asr-threads", "3", "--asr-tick-s", "0.8",
        "--lm", "http", "--lm-url", "http://127.0.0.1:9/v1", "--lm-model", "qwen",
        "--lm-api-key", "k", "--lm-threads", "4", "--lm-batch-threads", "3",
    )
    assert config.asr.whisper.model == "/m/whisper"
    assert config.asr.whisper.cpu_threads == 3
    assert config.asr.tick_s == 0.8
    assert config.lm == LMSpec("http", "qwen", "http://127.0.0.1:9/v1", "k", 4, 3)


def test_turn_flags_reach_the_turn_config_in_ns() -> None:
    turn = parse(
        "--turn-detection", "smart", "--turn-pause-ms", "120", "--turn-threshold", "0.8",
        "--turn-max-silence-ms", "900", "--turn-question-silence-ms", "0",
        "--turn-unfinished-silence-ms", "1500", "--turn-words-wait-ms", "150",
        "--turn-statement-silence-ms", "500",
    ).asr.turn
    assert turn is not None
    assert (turn.detection, turn.pause_ns, turn.threshold) == ("smart", 120_000_000, 0.8)
    assert (turn.max_silence_ns, turn.question_silence_ns) == (900_000_000, 0)
    assert (turn.unfinished_silence_ns, turn.words_wait_ns) == (1_500_000_000, 150_000_000)
    assert turn.statement_silence_ns == 500_000_000
    default = parse().asr.turn
    assert default is not None
    assert default.question_silence_ns == 300_000_000
    assert default.statement_silence_ns == 400_000_000
    assert default.unfinished_silence_ns == 2_000_000_000


def test_a_missing_whisper_model_says_what_to_pass() -> None:
    with pytest.raises(ModelNotFound, match="no CTranslate2 Whisper model"):
        Models.load(parse("--asr-model", "/nonexistent/whisper", "--lm", "none"))


def test_a_missing_gguf_says_what_to_pass() -> None:
    with pytest.raises(BackendUnavailable, match="model file not found"):
        Models.load(parse("--lm", "llamacpp", "--lm-model", "/nonexistent/model.gguf"))


def test_http_without_url_says_what_to_pass() -> None:
    with pytest.raises(BackendUnavailable, match="needs lm_url"):
        Models.load(parse("--lm", "http"))


def test_a_clients_turn_flags_become_its_session_update() -> None:
    """``streamkit client --turn-*``: what the session asks the server for, only what was
    given (the rest stays the server's), checked against the wire's ranges."""
    from streamkit.commands import client
    from streamkit.commands.errors import UserError
    from streamkit.commands.model_options import turn_fields
    from streamkit.transport.protocol import TurnSettings

    parser = argparse.ArgumentParser()
    client.add_arguments(parser)
    given = parser.parse_args(
        ["--file", "a.wav", "--turn-detection", "smart", "--turn-statement-silence-ms", "0",
         "--turn-threshold", "0.8"]
    )
    assert turn_fields(given) == {
        "turn_detection": "smart",
        "turn": TurnSettings(threshold=0.8, statement_silence_ms=0),
    }
    assert turn_fields(parser.parse_args(["--file", "a.wav"])) == {}
    with pytest.raises(UserError, match="--turn-pause-ms"):
        turn_fields(parser.parse_args(["--file", "a.wav", "--turn-pause-ms", "5"]))
