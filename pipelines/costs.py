"""Fixed virtual costs of the assistant's model calls, for replays that must be bit-identical.

On a virtual-time loop every model call is charged to the clock. By default the charge is what
the call measured (its CPU time): honest, but it drifts when the machine is busy, and a few
milliseconds are enough to move a turn's timing, so that a speculation reads other words and the
answers differ. :class:`FixedCosts` charges each call by its work instead, so two replays of a
session give the same events whatever else the machine runs (``replay --virtual --fixed-costs``,
the replay tests).

The defaults are about what each call costs on the 2-core development machine (the CPU time
per unit measured by ``bench/costs.py``, 2026-12-03, llama.cpp built portable: Whisper p50
107-119 ms a decode, the LM 8.0 ms a prompt token and 26 ms a generated token, Piper 119 ms a
second of speech, vision 0.9 ms a gate and 244 ms a keyframe). The Smart Turn model is always
charged its fixed :data:`~streamkit.asr.turn.FIXED_CHARGE_NS` in virtual mode unless the ASR
charges CPU time.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamkit.core.clock import NS_PER_MS, Nanos
from streamkit.lm.backend import TokenCharge

__all__ = ["FixedCosts"]


@dataclass(frozen=True, slots=True)
class FixedCosts:
    """What a model call costs on a virtual clock, by its work (ns).

    Attributes:
        asr_decode_ns: one Whisper decode (partial, pause or final window).
        lm_prompt_token_ns / lm_token_ns: per prompt token evaluated (the uncached rest) and
            per token generated (llama.cpp).
        tts_ns_per_audio_s: per second of speech synthesised (local voices).
        vision_gate_ns / vision_keyframe_ns: the change gate per frame, and a keyframe's encode.
    """

    asr_decode_ns: Nanos = 110 * NS_PER_MS
    lm_prompt_token_ns: Nanos = 8 * NS_PER_MS
    lm_token_ns: Nanos = 26 * NS_PER_MS
    tts_ns_per_audio_s: Nanos = 120 * NS_PER_MS
    vision_gate_ns: Nanos = 1 * NS_PER_MS
    vision_keyframe_ns: Nanos = 240 * NS_PER_MS

    @property
    def lm(self) -> TokenCharge:
        """The language model's per-token charge."""
        return TokenCharge(prompt_ns=self.lm_prompt_token_ns, token_ns=self.lm_token_ns)
