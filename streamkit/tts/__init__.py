"""Text-to-speech: engine protocol, embedded and HTTP voices, the chunker and the TTS stage.

Light imports only: the engines (:mod:`streamkit.tts.piper`, :mod:`streamkit.tts.espeak`,
:mod:`streamkit.tts.openai_http`) import their runtime when constructed, so this package
imports without onnxruntime or httpx. :func:`load` builds the engine a :class:`TTSSpec` names.
"""

from streamkit.tts.backend import Speech, TTSEngine, TTSUnavailable, speakable
from streamkit.tts.chunker import ChunkerConfig, SpeechChunker
from streamkit.tts.load import TTSChoice, TTSSpec, load
from streamkit.tts.playout import Playout
from streamkit.tts.scripted import ScriptedVoice
from streamkit.tts.stage import HeardCallback, TtsConfig, TtsStage

__all__ = [
    "ChunkerConfig",
    "HeardCallback",
    "Playout",
    "ScriptedVoice",
    "Speech",
    "SpeechChunker",
    "TTSChoice",
    "TTSEngine",
    "TTSSpec",
    "TTSUnavailable",
    "TtsConfig",
    "TtsStage",
    "load",
    "speakable",
]
