"""``--tts*`` options: which voice speaks the answers (shared by serve/demo/replay/report)."""

from __future__ import annotations

import argparse
import os
from typing import get_args

from streamkit.tts.load import TTSChoice, TTSSpec

__all__ = ["add_tts_arguments", "tts_spec"]


def add_tts_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tts``, ``--tts-voice``, ``--tts-url``, ``--tts-model``, ``--tts-api-key``."""
    group = parser.add_argument_group("voice")
    group.add_argument(
        "--tts",
        default="auto",
        choices=list(get_args(TTSChoice)),
        help="voice of the answers (auto: the bundled Piper voice when installed; espeak/flite: "
        "the Debian programs; http: an OpenAI-compatible /v1/audio/speech; none: text only)",
    )
    group.add_argument("--tts-voice", default=None,
                       help="Piper .onnx path, espeak-ng/flite voice, or the served voice name")
    group.add_argument("--tts-url", default=None,
                       help="OpenAI-compatible speech server, e.g. http://127.0.0.1:8880/v1")
    group.add_argument("--tts-model", default="tts-1", help="model name sent with --tts http")
    group.add_argument("--tts-api-key", default=os.environ.get("STREAMKIT_TTS_API_KEY"),
                       help="API key for --tts http (env STREAMKIT_TTS_API_KEY)")


def tts_spec(args: argparse.Namespace) -> TTSSpec:
    """The :class:`TTSSpec` the parsed options describe (defaults when they were not added)."""
    return TTSSpec(
        engine=getattr(args, "tts", "none"),
        voice=getattr(args, "tts_voice", None),
        url=getattr(args, "tts_url", None),
        model=getattr(args, "tts_model", "tts-1"),
        api_key=getattr(args, "tts_api_key", None),
    )
