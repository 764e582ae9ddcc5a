"""Command-line options that choose the assistant's models, shared by serve/demo/replay/report.

The bundled weights (Whisper tiny.en, SmolLM2-135M GGUF) are the default, not a limit: every
command that runs the assistant takes the same flags to point at other weights or at an
OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamkit.pipelines.assistant import AssistantConfig
    from streamkit.turn.core import TurnConfig

__all__ = [
    "PIPELINES",
    "add_model_arguments",
    "add_pipeline_argument",
    "assistant_config",
    "pipeline_name",
    "turn_config",
]

PIPELINES: dict[str, str] = {
    "assistant": "ASR + vision + language model: transcripts and spoken-to answers",
    "captions": "the same ASR, no language model: transcripts only (cheap)",
    "echo": "no model at all: protocol and plumbing checks",
}
"""The one list of pipeline names, shared by ``demo``, ``replay``, ``report``, ``serve`` and
``client``. Locally (demo/replay/report) ``echo`` is the no-model pipeline: an energy VAD."""

_ALIASES = {"best": "auto", "asr": "captions", "vad": "echo"}


def pipeline_name(value: str) -> str:
    """Canonical pipeline name (``auto`` or a key of :data:`PIPELINES`); the old names
    ``best``/``asr``/``vad`` are accepted for ``auto``/``captions``/``echo``."""
    name = _ALIASES.get(value, value)
    if name != "auto" and name not in PIPELINES:
        raise argparse.ArgumentTypeError(
            f"unknown pipeline {value!r}: choose from {', '.join(PIPELINES)}"
        )
    return name


def add_pipeline_argument(
    parser: argparse.ArgumentParser, default: str | None, *, auto: bool = False, what: str = ""
) -> None:
    """``--pipeline`` with the shared names (``auto``: the best this install can run)."""
    names = (["auto"] if auto else []) + list(PIPELINES)
    lines = "; ".join(f"{name}: {text}" for name, text in PIPELINES.items())
    parser.add_argument(
        "--pipeline",
        default=default,
        type=pipeline_name,
        choices=names,
        metavar="{" + ",".join(names) + "}",
        help=(what or "which pipeline runs")
        + (" (auto: the best installed)" if auto else "")
        + f" — {lines}",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--asr-*`` and ``--lm-*`` options to ``parser``."""
    group = parser.add_argument_group("models")
    group.add_argument(
        "--asr-model",
        default=None,
        help="CTranslate2 Whisper model directory or size name (default: bundled tiny.en)",
    )
    group.add_argument("--asr-device", default="cpu", help="cpu or cuda")
    group.add_argument("--asr-compute-type", default="int8", help="int8, float16, …")
    group.add_argument("--asr-threads", type=int, default=None, help="CTranslate2 threads")
    group.add_argument(
        "--asr-workers",
        type=int,
        default=None,
        help="Whisper decodes that may run at once (CTranslate2 workers; sessions share them)",
    )
    group.add_argument(
        "--asr-tick-s", type=float, default=None, help="ASR decode interval (s): capacity lever"
    )
    group.add_argument(
        "--asr-busy-tick-s",
        type=float,
        default=None,
        help="ASR decode interval (s) while the shared model is saturated (0: same as tick)",
    )
    group.add_argument(
        "--lm",
        default="auto",
        choices=["auto", "llamacpp", "transformers", "http", "none"],
        help="language model backend (auto: llama.cpp, else transformers)",
    )
    group.add_argument(
        "--lm-model", default=None, help="GGUF path, or the served model name with --lm http"
    )
    group.add_argument(
        "--lm-url",
        default=None,
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (implies --lm http)",
    )
    group.add_argument(
        "--lm-api-key",
        default=os.environ.get("STREAMKIT_LM_API_KEY"),
        help="API key for --lm http (env STREAMKIT_LM_API_KEY)",
    )
    group.add_argument(
        "--lm-threads", type=int, default=1, help="CPU threads of a local LM's token generation"
    )
    group.add_argument(
        "--lm-batch-threads",
        type=int,
        default=2,
        help="CPU threads of a llama.cpp prompt evaluation (the words left at the end of a turn)",
    )
    group.add_argument(
        "--instructions",
        default=None,
        help="the assistant's system prompt (default: a friendly voice assistant; the "
        '"I can\'t tell" policy is kept after it); a session may change it with session.update',
    )
    group.add_argument(
        "--grounding",
        choices=["facts", "model"],
        default="facts",
        help="facts (default): scene and memory questions are answered from the camera facts "
        "and what the user said, and the model's other answers are verified; model: the model "
        "answers everything (a strong --lm-url model); a session may change it",
    )
    add_turn_arguments(parser)
    from streamkit.commands.tts_options import add_tts_arguments

    add_tts_arguments(parser)


def add_turn_arguments(parser: argparse.ArgumentParser, *, client: bool = False) -> None:
    """The ``--turn-*`` options: the server's end-of-turn policy (``serve``, ``demo``), or
    (``client``) the thresholds a client asks its session for (``session.update``
    ``turn_detection`` / ``turn``; each left out keeps the server's)."""
    turn = parser.add_argument_group("turn-taking")
    turn.add_argument(
        "--turn-detection",
        choices=["auto", "vad", "smart"],
        default=None if client else "auto",
        help="end of turn: vad (silence only), smart (Smart Turn v3.2 at short pauses); "
        + ("default: the server's" if client else "auto: smart when its model file is present"),
    )
    turn.add_argument(
        "--turn-threshold", type=float, default=None, help="smart: P(complete) that ends a turn"
    )
    turn.add_argument(
        "--turn-pause-ms", type=int, default=None, help="silence that asks the model / speculates"
    )
    turn.add_argument(
        "--turn-max-silence-ms", type=int, default=None, help="smart: silence that ends a turn"
    )
    turn.add_argument(
        "--turn-question-silence-ms",
        type=int,
        default=None,
        help="smart: silence that ends a turn whose words end with '?' (0: off)",
    )
    turn.add_argument(
        "--turn-statement-silence-ms",
        type=int,
        default=None,
        help="smart: silence that ends a turn whose words end a sentence ('.' or '!'; 0: off)",
    )
    turn.add_argument(
        "--turn-unfinished-silence-ms",
        type=int,
        default=None,
        help="smart: silence that ends a turn whose words stop mid-phrase (0: off)",
    )
    if not client:  # not on the wire
        turn.add_argument(
            "--turn-words-wait-ms",
            type=int,
            default=None,
            help="smart: how long a 'complete' waits for the pause's words (default 0: not at all)",
        )
    turn.add_argument(
        "--turn-hangover-ms", type=int, default=None, help="vad: silence that ends a turn"
    )


def turn_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``session.update`` fields a client's ``--turn-*`` options ask for (none given:
    none, and the server's policy stands); a value out of the wire's range raises
    :class:`UserError` naming it, before anything is sent."""
    import msgspec

    from streamkit.commands.errors import UserError
    from streamkit.transport.protocol import TurnSettings

    fields: dict[str, Any] = {}
    if args.turn_detection is not None:
        fields["turn_detection"] = args.turn_detection
    given = {
        name: value
        for name in TurnSettings.__struct_fields__
        if (value := getattr(args, f"turn_{name}")) is not None
    }
    if given:
        try:
            fields["turn"] = msgspec.convert(given, TurnSettings)
        except msgspec.ValidationError as error:
            flag = str(error).partition("$.")[2].rstrip("`").replace("_", "-")
            raise UserError(f"--turn-{flag or 'options'}: {error}") from None
    return fields


def turn_config(args: argparse.Namespace, turn: TurnConfig | None) -> TurnConfig:
    """``--turn-*`` options over ``turn`` (milliseconds on the command line, ns inside)."""
    from streamkit.turn.core import TurnConfig

    turn = replace(turn or TurnConfig(), detection=getattr(args, "turn_detection", "auto"))
    return turn.with_ms(
        getattr(args, "turn_threshold", None),
        pause_ms=getattr(args, "turn_pause_ms", None),
        max_silence_ms=getattr(args, "turn_max_silence_ms", None),
        question_silence_ms=getattr(args, "turn_question_silence_ms", None),
        statement_silence_ms=getattr(args, "turn_statement_silence_ms", None),
        unfinished_silence_ms=getattr(args, "turn_unfinished_silence_ms", None),
        words_wait_ms=getattr(args, "turn_words_wait_ms", None),
        hangover_ms=getattr(args, "turn_hangover_ms", None),
    )


def assistant_config(args: argparse.Namespace) -> AssistantConfig:
    """The :class:`~pipelines.assistant.AssistantConfig` the parsed options describe."""
    from streamkit.lm.load import LMSpec
    from streamkit.pipelines.assistant import AssistantConfig

    config = AssistantConfig(
        lm=LMSpec(
            engine="http" if args.lm == "auto" and args.lm_url else args.lm,  # --lm-url: http
            model=args.lm_model,
            url=args.lm_url,
            api_key=args.lm_api_key,
            threads=args.lm_threads,
            batch_threads=args.lm_batch_threads,
        ),
        instructions=getattr(args, "instructions", None),
        grounding=getattr(args, "grounding", "facts"),
    )
    whisper = replace(
        config.asr.whisper,
        model=args.asr_model,
        device=args.asr_device,
        compute_type=args.asr_compute_type,
    )
    if args.asr_threads is not None:
        whisper = replace(whisper, cpu_threads=args.asr_threads)
    if args.asr_workers is not None:
        whisper = replace(whisper, num_workers=args.asr_workers)
    from streamkit.commands.tts_options import tts_spec

    config = replace(config, tts=tts_spec(args))
    asr = replace(config.asr, whisper=whisper)
    if args.asr_tick_s is not None:
        asr = replace(asr, tick_s=args.asr_tick_s)
    if args.asr_busy_tick_s is not None:
        asr = replace(asr, busy_tick_s=args.asr_busy_tick_s or None)
    asr = replace(asr, turn=turn_config(args, asr.turn))
    return replace(config, asr=asr)
