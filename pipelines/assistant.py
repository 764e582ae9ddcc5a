"""The full assistant: capture → (aligner) → ASR + vision → fused LM → one event stream.

Graph (edge policies after the architecture's backpressure table)::

    source ─audio─► tee ─(BLOCK)──────────────────► asr ─► tee ─┬─ transcript ─► responder ─┐
      │              └─(BLOCK)─► align ─video (LATEST)─► vision ─► tee ─┬─ vision ─┘         │
      └─video (LATEST)─────────►                                │      └───────┐           │
                                                                └─────────────┴─► merge ◄──┘
                                                                                   │ (BLOCK)
                                                                                   ▼
                                                                                  sink

The aligner only runs when the source has video, and it is off the audio → ASR path: audio is
stamped at capture and the ASR never waits for a video frame (through the aligner it waited
W/2 + the next frame: 82 ms p50 on the bundled session); the aligner paces video into the
vision encoder against the audio's watermark and answers nearest-frame queries. ``build``
wires one session; :class:`Models` holds what is loaded once per process (Whisper, the
language model) and shared by every session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from streamkit.align.core import AlignerConfig
from streamkit.align.stage import AlignStage
from streamkit.asr.stage import AsrConfig, AsrStage
from streamkit.asr.whisper import WhisperConfig, WhisperModelShared
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Clock, Nanos
from streamkit.core.compute import ComputeMode
from streamkit.core.edge import Edge, Policy
from streamkit.core.events import SpeechStarted, TurnUpdate
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.operators import Merge, Tee
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.lm.backend import LMBackend, LMRequest
from streamkit.lm.fusion import FusionBuilder, Turn
from streamkit.lm.grounding_backend import GroundedBackend, GroundingMode
from streamkit.lm.load import LMSpec
from streamkit.lm.load import load as load_lm
from streamkit.lm.responder import Responder, ResponderConfig
from streamkit.pipelines.costs import FixedCosts
from streamkit.store.backend import StoredTurn
from streamkit.tts import TtsConfig, TTSEngine, TTSSpec, TtsStage
from streamkit.tts import load as load_tts
from streamkit.tts.echo import EchoGateConfig
from streamkit.turn.backend import TurnModel, TurnUnavailable
from streamkit.turn.core import TurnConfig, TurnDetection

if TYPE_CHECKING:
    from streamkit.transport.protocol import TurnSettings
    from streamkit.vision.stage import VisionConfig

__all__ = ["AssistantConfig", "Controls", "Models", "build"]


_SHARED_WHISPER = WhisperConfig(cpu_threads=1, num_workers=2)


@dataclass(frozen=True)
class AssistantConfig:
    """Everything a session of the assistant needs to know.

    Attributes:
        asr: streaming ASR settings (model path, VAD, decode policy, compute mode). Whisper
            runs 2 decodes at once (``num_workers=2``), 1 thread each, for the sessions that
            share it: on 2 cores, 4 sessions' commit p90 went 3.0 s → 1.5 s
            (``bench/sessions.py``); one serialised slot on 2 threads could not keep up.
            Its ``turn`` is the end-of-turn policy (``turn_detection``): ``auto`` = ``smart``
            (Smart Turn v3.2 at 128 ms pauses, see ``bench/turns.py``) when the model file
            is present, else ``vad`` with one warning.
        lm: the language model (:class:`~streamkit.lm.load.LMSpec`: engine, model, url,
            threads; its ``mode`` follows ``compute``).
        responder: turn handling (prompt budget, max tokens, prefill).
        vision: run the vision encoder when the source has video.
        vision_config: its settings (``None`` → defaults).
        compute: ``thread`` live, ``virtual`` when replaying on a virtual-time loop.
        costs: with ``virtual``, charge every model call a fixed cost by its work instead of
            its measured CPU time (:mod:`streamkit.pipelines.costs`: bit-identical replays on
            a busy machine); None: measured.
        align_window_ms: aligner window (only with video).
        tts: the voice (``engine="none"``: text only; the CLI defaults to ``auto``).
        speech: the TTS stage (frame length, lead, chunker; ``enabled`` = speak by default).
        echo_gate: with a voice, drop the utterances that are the echo of our own voice
            (``streamkit/tts/echo.py``); None: every utterance is the user's (headphones).
        instructions: the assistant's system prompt (``--instructions``; ``None``: the
            default of :mod:`streamkit.lm.fusion`); a session may change it
            (``session.update`` ``instructions``). The "I can't tell" policy is kept after it.
        grounding: ``facts`` (default): scene and memory questions are answered from the
            camera facts and what the user said, the model's other answers are verified
            (:mod:`streamkit.lm.grounding_backend`); ``model``: the model answers everything
            (a strong ``--lm-url`` model). ``--grounding``; a session may change it.
    """

    asr: AsrConfig = field(
        default_factory=lambda: AsrConfig(whisper=_SHARED_WHISPER, turn=TurnConfig())
    )
    lm: LMSpec = field(default_factory=LMSpec)
    responder: ResponderConfig = field(default_factory=ResponderConfig)
    vision: bool = True
    vision_config: VisionConfig | None = None
    compute: ComputeMode = "thread"
    costs: FixedCosts | None = None
    align_window_ms: int = 40
    tts: TTSSpec = field(default_factory=TTSSpec)
    speech: TtsConfig = field(default_factory=TtsConfig)
    echo_gate: EchoGateConfig | None = field(default_factory=EchoGateConfig)
    instructions: str | None = None
    grounding: GroundingMode = "facts"


@dataclass
class Models:
    """What is loaded once per process and shared by every session."""

    whisper: WhisperModelShared
    lm: LMBackend | None
    turn: TurnModel | None = None
    tts: TTSEngine | None = None

    @classmethod
    def load(cls, config: AssistantConfig) -> Models:
        """Load Whisper, the language model, the end-of-turn model and the voice (blocking:
        seconds). Raises with a message that says what to install or pass when a model or
        runtime is missing."""
        whisper = WhisperModelShared(config.asr.whisper)
        costs = config.costs
        tts = load_tts(
            replace(
                config.tts,
                mode=config.compute,
                charge_ns_per_audio_s=costs.tts_ns_per_audio_s if costs else None,
            )
        )
        return cls(
            whisper=whisper,
            lm=load_lm(replace(config.lm, mode=config.compute, charge=costs.lm if costs else None)),
            turn=load_turn_model(config.asr.turn),
            tts=tts,
        )

    async def warmup(self, config: AssistantConfig | None = None) -> None:
        """Run Whisper and the end-of-turn model once on a second of silence (in a thread)
        and exercise the language model once, so the first turn is not cold (a process's
        first Whisper decode cost 160 ms CPU against 56 ms warm: the pause decode of a first
        turn lost its race with Smart Turn); with ``config``, also prefill the prompt prefix
        its sessions share (system prompt, policy, examples: seconds on a small CPU model),
        so the first session starts warm."""
        await asyncio.to_thread(self._warm_audio_models)
        if self.lm is None:
            return
        await self.lm.warmup()
        if config is not None and config.responder.prefill:
            fusion = FusionBuilder(answering(config).fusion, self.lm.count_tokens)
            await self.lm.prefill(LMRequest(fusion.prefix_messages(), max_tokens=1))

    def _warm_audio_models(self) -> None:
        """One call of each audio model on a second of silence (blocking)."""
        silence = np.zeros(16_000, np.float32)  # 1 s at 16 kHz, the rate both take
        if self.whisper is not None:
            self.whisper.decode_window(silence)
        if self.turn is not None:
            self.turn.predict(silence)


def load_turn_model(turn: TurnConfig | None) -> TurnModel | None:
    """Smart Turn for ``smart``/``auto`` (None for ``vad``). Missing under ``auto``: one
    warning and ``vad``; missing under ``smart``: :class:`TurnUnavailable`."""
    if turn is None or turn.detection == "vad":
        return None
    from streamkit.turn.smart_turn import SmartTurnModel

    try:
        return SmartTurnModel()
    except TurnUnavailable as error:
        if turn.detection == "smart":
            raise
        logging.getLogger("streamkit.turn").warning("%s; turn detection: vad", error)
        return None


def answering(config: AssistantConfig) -> ResponderConfig:
    """The responder options of ``config``'s sessions (its instructions as the system
    prompt)."""
    if not config.instructions:
        return config.responder
    fusion = replace(config.responder.fusion, system_prompt=config.instructions)
    return replace(config.responder, fusion=fusion)


class Controls:
    """Session controls callable from any task on the session's loop.

    ``history``/``restore`` move the conversation in and out as
    :class:`~streamkit.store.StoredTurn` values (times relative to the session's origin), so
    a session store can resume it on another worker.
    """

    def __init__(
        self, asr: AsrStage, responder: Responder | None, pipeline: Pipeline | None = None
    ) -> None:
        self._asr = asr
        self._responder = responder
        self._pipeline = pipeline
        self.source: Stage | None = None  # the session's source (commits wait for its audio)
        self.tts: TtsStage | None = None  # the voice, when the pipeline speaks

    @property
    def answers(self) -> bool:
        """Whether each utterance gets an answer (a language model is in the pipeline)."""
        return self._responder is not None

    def _origin(self) -> Nanos:
        if self._pipeline is None or self._pipeline.state.base_time is None:
            return 0
        return self._pipeline.state.base_time

    def history(self) -> list[StoredTurn]:
        """The finished turns the language model remembers, oldest first."""
        if self._responder is None:
            return []
        origin = self._origin()
        return [
            StoredTurn(t.user, t.assistant, t.start - origin, t.end - origin)
            for t in self._responder.history
        ]

    def restore(self, turns: Sequence[StoredTurn], age_ns: Nanos) -> None:
        """Put a resumed session's turns back before the first utterance. ``age_ns``: the
        session's age when they were saved; they are placed that long before now."""
        if self._responder is None:
            return
        now = self._pipeline.clock.now() if self._pipeline is not None else age_ns
        shift = now - age_ns
        self._responder.history.extend(
            Turn(t.user, t.start_ns + shift, t.end_ns + shift, t.assistant) for t in turns
        )

    async def commit_input(self) -> tuple[str, ...]:
        """Finalise the current utterance now (the client's ``input.commit``), after every
        audio chunk already queued for the ASR reached it; returns the ids of the utterances
        heard since the previous commit (see :meth:`AsrStage.commit`)."""
        sent = getattr(self.source, "samples_in", None)  # what the client source has taken
        if sent is not None and self._pipeline is not None:
            clock = self._pipeline.clock
            deadline = clock.now() + 5 * NS_PER_S
            while self._asr.samples_read < sent and clock.now() < deadline:
                await clock.sleep(NS_PER_MS)
        return self._asr.commit()

    # -- conversation control (a Realtime client: typed turns, answers on request) -------

    def configure_turns(self, turns: Any) -> None:
        """Apply a :class:`~streamkit.transport.commands.ConfigureTurns` (auto answers,
        VAD threshold and silence, instructions, answer length)."""
        silence = None if turns.silence_ms is None else turns.silence_ms / 1000
        self._asr.configure_vad(turns.threshold, silence)
        if self._responder is not None:
            self._responder.auto_answer = turns.auto_answer
            self._responder.set_instructions(turns.instructions, turns.max_tokens)

    def add_text(self, text: str, role: str = "user") -> None:
        """A typed message joins the next answer's input (a ``system`` one the prompt)."""
        if self._responder is None:
            return
        if role == "system":
            prompt = self._responder.config.fusion.system_prompt
            self._responder.set_instructions(f"{prompt}\n{text}", None)
        else:
            now = self._pipeline.clock.now() if self._pipeline is not None else 0
            self._responder.add_text(text, now)

    def respond(
        self, wait_for: tuple[str, ...], instructions: str | None, max_tokens: int | None
    ) -> None:
        """Answer the input not answered yet, once ``wait_for``'s transcripts are final."""
        if self._responder is not None:
            self._responder.respond(wait_for, instructions, max_tokens)

    def clear_input(self, discard: tuple[str, ...]) -> None:
        """Forget the input not committed yet (utterances ``discard``)."""
        self._asr.commit()
        if self._responder is not None:
            self._responder.discard(discard)

    def cancel_response(self) -> bool:
        """Cancel the answer being generated and spoken (the client's ``response.cancel``)."""
        spoken = self.tts.cancel("client") if self.tts is not None else False
        generated = self._responder.cancel("client") if self._responder is not None else False
        return generated or spoken

    def set_output_audio(self, on: bool) -> None:
        """Speak the answers or not (``session.update`` ``output_audio``); text stays."""
        if self.tts is not None:
            self.tts.set_enabled(on)

    @property
    def speaks(self) -> bool:
        """Whether the pipeline has a voice."""
        return self.tts is not None

    def set_grounding(self, mode: str) -> None:
        """Answer scene and memory questions from the facts (``facts``) or let the model
        answer everything (``model``); ``""``: the configured mode (``session.update``
        ``grounding``)."""
        backend = self._responder.backend if self._responder is not None else None
        if isinstance(backend, GroundedBackend):
            backend.set_mode("model" if mode == "model" else "facts" if mode else None)

    def set_instructions(self, text: str | None) -> None:
        """The system prompt of this session's answers (``session.update``
        ``instructions``; ``None`` or ``""``: the pipeline's configured one)."""
        if self._responder is not None:
            self._responder.set_instructions(text or None)

    def set_turn_detection(self, detection: TurnDetection) -> None:
        """Switch the end-of-turn policy (``session.update`` ``turn_detection``); raises
        :class:`TurnUnavailable` for ``smart`` without the model."""
        turn = self._asr.config.turn or TurnConfig()
        self._asr.set_turn(replace(turn, detection=detection))

    def set_turn_settings(self, settings: TurnSettings) -> None:
        """Set the end-of-turn thresholds (``session.update`` ``turn``; ms on the wire, its
        null fields left as they are)."""
        turn = (self._asr.config.turn or TurnConfig()).with_ms(
            settings.threshold,
            pause_ms=settings.pause_ms,
            max_silence_ms=settings.max_silence_ms,
            question_silence_ms=settings.question_silence_ms,
            statement_silence_ms=settings.statement_silence_ms,
            unfinished_silence_ms=settings.unfinished_silence_ms,
            hangover_ms=settings.hangover_ms,
        )
        self._asr.set_turn(turn)


def _edge(
    pipe: Pipeline, name: str, policy: Policy = Policy.BLOCK, capacity: int = 64
) -> Edge[Any]:
    return pipe.edge(name, capacity, policy)


def build(
    config: AssistantConfig,
    models: Models,
    source: Stage,
    sink: Stage,
    clock: Clock | None = None,
    metrics: MetricsRegistry | None = None,
) -> tuple[Pipeline, Controls]:
    """Wire one assistant session from ``source`` (ports ``audio``[, ``video``]) to ``sink``."""
    pipe = Pipeline(clock, metrics)
    outputs: tuple[str, ...] = getattr(source, "outputs", ("audio",))
    with_video = "video" in outputs and config.vision

    source_ports: dict[str, Edge[Any]] = {"audio": _edge(pipe, "source.audio", capacity=256)}
    if "video" in outputs:
        source_ports["video"] = _edge(pipe, "source.video", Policy.LATEST)
    pipe.add(source, outputs=source_ports)

    asr_in = source_ports["audio"]
    video_in: Edge[Any] | None = None
    if with_video:
        # Audio goes to the ASR straight from the source (it is stamped at capture and never
        # waits for video); a copy feeds the aligner, which paces video into the encoder.
        audio_ports = {
            "asr": _edge(pipe, "audio.asr", capacity=256),
            "align": _edge(pipe, "audio.align", capacity=256),
        }
        pipe.add(Tee("audio.tee", list(audio_ports)), {"in": asr_in}, audio_ports)
        asr_in = audio_ports["asr"]
        align = AlignStage(
            ("audio", "video"),
            AlignerConfig(window_ns=config.align_window_ms * NS_PER_MS),
        )
        video_in = _edge(pipe, "align.video", Policy.LATEST)
        align_in = {"audio": audio_ports["align"], "video": source_ports["video"]}
        pipe.add(align, inputs=align_in, outputs={"video": video_in})

    speaks = models.lm is not None and models.tts is not None
    gated = speaks and config.echo_gate is not None
    reference: Edge[Any] | None = None
    if gated:
        from streamkit.pipelines.voice import add_echo_gate, copy_edge

        asr_in, mic = copy_edge(pipe, "mic", asr_in)
        reference = _edge(pipe, "tts.echo", Policy.DROP_OLDEST, 256)  # never holds the voice
    asr_config = replace(config.asr, compute=config.compute)
    if config.costs is not None:
        asr_config = replace(asr_config, charge_ns=config.costs.asr_decode_ns, charge_cpu=False)
    asr = AsrStage(models.whisper, asr_config, turn_model=models.turn)
    asr_out = _edge(pipe, "asr.out")
    pipe.add(asr, inputs={"in": asr_in}, outputs={"out": asr_out})
    if gated and reference is not None and config.echo_gate is not None:
        asr_out = add_echo_gate(pipe, config.echo_gate, asr_out, mic, reference)

    merge_ports: dict[str, Edge[Any]] = {}
    transcript_ports = {"client": _edge(pipe, "asr.client")}
    merge_ports["asr"] = transcript_ports["client"]
    responder: Responder | None = None
    if models.lm is not None:
        transcript_ports["lm"] = _edge(pipe, "asr.lm")
    if speaks:
        transcript_ports["tts"] = _edge(pipe, "asr.tts", capacity=16)
    # turn events (pause/resume/end) are for the responder; clients see speech/transcripts
    client_only: dict[str, Any] = {"client": lambda p: not isinstance(p.payload, TurnUpdate)}
    if speaks:  # the voice only needs to know when the user starts speaking (barge-in)
        client_only["tts"] = lambda p: isinstance(p.payload, SpeechStarted)
    tee = Tee("asr.tee", list(transcript_ports), accept=client_only)
    pipe.add(tee, {"in": asr_out}, transcript_ports)

    vision_ports: dict[str, Edge[Any]] = {}
    if video_in is not None:
        from streamkit.vision.stage import VisionConfig, VisionStage

        vision_config = replace(config.vision_config or VisionConfig(), compute=config.compute)
        if config.costs is not None:
            vision_config = replace(
                vision_config,
                gate_charge_ns=config.costs.vision_gate_ns,
                keyframe_charge_ns=config.costs.vision_keyframe_ns,
            )
        vision_out = _edge(pipe, "vision.out", Policy.DROP_OLDEST, 16)
        pipe.add(VisionStage(vision_config), {"in": video_in}, {"out": vision_out})
        vision_ports["client"] = _edge(pipe, "vision.client", Policy.DROP_OLDEST, 16)
        if models.lm is not None:
            vision_ports["lm"] = _edge(pipe, "vision.lm", Policy.DROP_OLDEST, 16)
        pipe.add(Tee("vision.tee", list(vision_ports)), {"in": vision_out}, vision_ports)
        merge_ports["vision"] = vision_ports["client"]

    if models.lm is not None:
        responder_config = answering(config)
        grounded = GroundedBackend(  # answers from the facts (or the model, verified)
            models.lm,
            config.grounding,
            on_grounded=lambda reason: pipe.metrics.counter(f"lm.grounded.{reason}").inc(),
            on_verified=pipe.metrics.counter("lm.verifier_replaced").inc,
        )
        if speaks:  # the voice prepares a held speculation's first piece (ResponseHeld)
            responder_config = replace(responder_config, announce_held=True)
        responder = Responder(grounded, responder_config)
        responder_in = {"transcript": transcript_ports["lm"]}
        if "lm" in vision_ports:
            responder_in["vision"] = vision_ports["lm"]
        merge_ports["response"] = _edge(pipe, "responder.out")
        pipe.add(responder, responder_in, {"out": merge_ports["response"]})
    tts: TtsStage | None = None
    if speaks and responder is not None and models.tts is not None:
        from streamkit.pipelines.voice import add_voice

        tts, merge_ports["response"] = add_voice(
            pipe,
            models.tts,
            config.speech,
            merge_ports["response"],
            transcript_ports["tts"],
            responder.history,
            reference,
        )

    events = _edge(pipe, "events")
    pipe.add(Merge("events", list(merge_ports)), merge_ports, {"out": events})
    pipe.add(sink, inputs={"in": events})
    controls = Controls(asr, responder, pipe)
    controls.source = source
    controls.tts = tts
    return pipe, controls
