"""The vision encoder: change-gated keyframes → :class:`~streamkit.core.events.Observation`.

Two layers (sans-I/O core + thin async adapter):

- :class:`VisionEncoder` (pure, synchronous, blocking CPU): :meth:`~VisionEncoder.gate` looks
  at every frame through a tiny grey thumbnail (:class:`~streamkit.vision.detectors.ChangeGate`,
  ~0.1 ms) and says whether it is a keyframe; :meth:`~VisionEncoder.analyse` runs the
  detectors (faces, people, QR codes), the colour each face's person wears
  (:func:`~streamkit.vision.colours.clothes_colour`: ``Detection("clothes", text=name)``),
  text in view (PP-OCR, :mod:`streamkit.vision.ocr`: ``Detection("text", text=line)``; at
  most once per ``ocr_interval_ns``), brightness and colour names on a keyframe only, keeps it
  as JPEG and writes a one-line ``summary``. So unchanged video costs one thumbnail per frame
  and nothing else.
- :class:`VisionStage`: input ``"in"``: ``Packet[VideoFrame]`` (normally fed by a ``LATEST``
  edge: vision samples at its own pace); output ``"out"``: ``Packet[Observation]`` on stream
  ``"vision"``, one per keyframe, ``pts`` = the keyframe's capture pts on the shared clock,
  epoch and lineage copied from the frame. Control items pass through; a ``Flush`` also
  makes the next frame a keyframe (the new epoch gets a fresh observation). Blocking OpenCV
  work runs through a :class:`~streamkit.core.compute.ModelSlot` (a worker thread live, inline +
  charged virtual time when replaying on a virtual clock).

Cost budget: a frame whose ``pts`` is already more than ``budget_ns`` old when the stage
takes it is skipped unseen (counter ``vision.skipped``): when the encoder falls behind it
catches up instead of analysing the past. Metrics: counters ``vision.frames``,
``vision.keyframes``, ``vision.skipped``; histograms ``vision.gate_cost`` (every frame seen)
and ``vision.keyframe_cost`` (detectors + JPEG), in ns of compute.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from dataclasses import dataclass

import cv2

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.compute import ComputeMode, ModelSlot, measure_ns
from streamkit.core.events import Detection, Observation
from streamkit.core.media import VideoFrame
from streamkit.core.packet import Flush, Packet
from streamkit.core.stage import StageContext
from streamkit.vision.colours import brightness, clothes_colour, colour_names
from streamkit.vision.detectors import (
    ChangeGate,
    FaceDetector,
    GateResult,
    PeopleDetector,
    QrDecoder,
)
from streamkit.vision.image import Image, downscale
from streamkit.vision.ocr import OcrUnavailable, TextReader

__all__ = ["VisionConfig", "VisionEncoder", "VisionStage", "summarize"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisionConfig:
    """Settings of the vision encoder.

    Attributes:
        gate_width: change-gate thumbnail width (px).
        pixel_threshold: grey-level change (0–255) that counts a thumbnail pixel as changed.
        change_threshold: fraction of changed pixels (vs. the last keyframe) that makes a
            keyframe.
        refresh_ns: force a keyframe when the last one is older than this (``None``: never;
            a static scene then yields exactly one keyframe).
        faces / people / qr: which detectors run on keyframes.
        clothes: name the colour below each face (what the person wears).
        ocr: read text with PP-OCR (needs ``rapidocr-onnxruntime``; off with a warning
            when it is missing); ``ocr_interval_ns``: at most one read per this interval
            (a keyframe in between gets none: OCR costs ~100–300 ms a frame);
            ``ocr_side``: longer side (px) the text detector sees.
        face_side: longer side (px) faces are searched at (small frames are enlarged).
        people_side: longer side (px) the HOG people detector runs at.
        jpeg_quality: 0–100; ``jpeg_max_side`` caps the kept keyframe's longer side (px);
            ``keep_jpeg=False`` keeps none.
        budget_ns: a frame older than this (now − pts) when taken is skipped.
        compute: ``"thread"`` live, ``"virtual"`` on a virtual-time loop.
        gate_charge_ns / keyframe_charge_ns: in virtual mode, charge these fixed costs
            instead of the measured ones (bit-identical replays); ``None`` → measured.
        stream: stream name of the output packets.
    """

    gate_width: int = 96
    pixel_threshold: int = 20
    change_threshold: float = 0.08
    refresh_ns: Nanos | None = None
    faces: bool = True
    people: bool = True
    qr: bool = True
    clothes: bool = True
    ocr: bool = True
    ocr_interval_ns: Nanos = 2 * NS_PER_S
    ocr_side: int = 640
    face_side: int = 320
    people_side: int = 320
    jpeg_quality: int = 80
    jpeg_max_side: int = 640
    keep_jpeg: bool = True
    budget_ns: Nanos = 500 * NS_PER_MS
    compute: ComputeMode = "thread"
    gate_charge_ns: Nanos | None = None
    keyframe_charge_ns: Nanos | None = None
    stream: str = "vision"

    def __post_init__(self) -> None:
        if not 0.0 <= self.change_threshold < 1.0:
            raise ValueError(f"change_threshold must be in [0, 1), got {self.change_threshold}")
        if not 0 <= self.pixel_threshold < 255:
            raise ValueError(f"pixel_threshold must be in [0, 255), got {self.pixel_threshold}")
        if self.budget_ns <= 0:
            raise ValueError(f"budget_ns must be > 0, got {self.budget_ns}")
        if self.refresh_ns is not None and self.refresh_ns <= 0:
            raise ValueError(f"refresh_ns must be > 0 or None, got {self.refresh_ns}")
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [0, 100], got {self.jpeg_quality}")


def summarize(detections: list[Detection], motion: float, bright: float, colours: list[str]) -> str:
    """One short line for the LM context, e.g. ``1 face, QR "hi", motion 0.12, mostly blue``."""
    counts = Counter(d.label for d in detections if d.label not in ("qr", "clothes", "text"))
    parts: list[str] = []
    for label, plural in (("face", "faces"), ("person", "people")):
        n = counts.pop(label, 0)
        if n:
            parts.append(f"{n} {label if n == 1 else plural}")
    parts.extend(f"{n} {label}" for label, n in sorted(counts.items()))
    wears = list(dict.fromkeys(d.text for d in detections if d.label == "clothes" and d.text))
    if wears:
        parts.append("wearing " + " and ".join(wears))
    parts.extend(
        f'QR "{d.text}"' if d.text else "unreadable QR" for d in detections if d.label == "qr"
    )
    parts.extend(f'text "{d.text}"' for d in detections if d.label == "text")
    if not parts:
        parts.append("no faces or people")
    parts.append(f"motion {motion:.2f}")
    if bright < 0.2:
        parts.append("dark")
    elif bright > 0.8:
        parts.append("bright")
    if colours:
        parts.append("mostly " + colours[0])
    return ", ".join(parts)


class VisionEncoder:
    """The synchronous core: gate every frame, analyse keyframes (blocking; one at a time).

    Not thread-safe: one encoder per stream, called from one slot. Loading the cascades
    takes a few ms (done in the constructor).
    """

    def __init__(self, config: VisionConfig | None = None) -> None:
        self.config = config if config is not None else VisionConfig()
        cfg = self.config
        self.gate_state = ChangeGate(cfg.gate_width, cfg.pixel_threshold, cfg.change_threshold)
        self.faces = FaceDetector(cfg.face_side) if cfg.faces else None
        self.people = PeopleDetector(cfg.people_side) if cfg.people else None
        self.qr = QrDecoder() if cfg.qr else None
        self.text: TextReader | None = None
        if cfg.ocr:
            try:
                self.text = TextReader(cfg.ocr_side)
            except OcrUnavailable as error:
                _log.warning("vision: no OCR: %s", error)
        self._last_key_pts: Nanos | None = None
        self._last_ocr_pts: Nanos | None = None

    def gate(self, image: Image, pts: Nanos) -> GateResult:
        """Is the frame captured at ``pts`` a keyframe? (cheap; updates the gate's state)."""
        refresh = self.config.refresh_ns
        if (
            refresh is not None
            and self._last_key_pts is not None
            and pts - self._last_key_pts >= refresh
        ):
            self.gate_state.force_next()
        result = self.gate_state.update(image)
        if result.keyframe:
            self._last_key_pts = pts
        return result

    def analyse(self, image: Image, pts: Nanos, gate: GateResult) -> Observation:
        """Run the detectors on a keyframe and build its observation (blocking, ~10–100 ms)."""
        detections: list[Detection] = []
        for detector in (self.faces, self.people, self.qr):
            if detector is not None:
                detections.extend(detector.detect(image))
        if self.config.clothes:
            for face in [d for d in detections if d.label == "face"]:
                worn = clothes_colour(image, face.box)
                if worn is not None:
                    detections.append(Detection("clothes", 0.5, worn[1], text=worn[0]))
        last_ocr = self._last_ocr_pts
        if self.text is not None and (
            last_ocr is None or pts - last_ocr >= self.config.ocr_interval_ns
        ):
            self._last_ocr_pts = pts
            detections.extend(self.text.read(image))
        bright = brightness(image)
        colours = [name for name, _ in colour_names(image)]
        jpeg: bytes | None = None
        if self.config.keep_jpeg:
            small, _ = downscale(image, self.config.jpeg_max_side)
            ok, buf = cv2.imencode(
                ".jpg", small, [int(cv2.IMWRITE_JPEG_QUALITY), self.config.jpeg_quality]
            )
            jpeg = buf.tobytes() if ok else None
        h, w = image.shape[:2]
        return Observation(
            pts=pts,
            detections=detections,
            motion=round(gate.motion, 4),
            brightness=round(bright, 4),
            colours=colours,
            width=int(w),
            height=int(h),
            summary=summarize(detections, gate.motion, bright, colours),
            keyframe_jpeg=jpeg,
            change=round(gate.change, 4),
        )

    def process(self, image: Image, pts: Nanos) -> Observation | None:
        """Gate, then analyse when it is a keyframe; ``None`` for an unchanged frame."""
        gate = self.gate(image, pts)
        return self.analyse(image, pts, gate) if gate.keyframe else None


class VisionStage:
    """Async adapter around :class:`VisionEncoder` (see the module docstring).

    Args:
        config: settings (``None`` → defaults).
        name: stage name (also the ModelSlot's name: ``model.<name>.compute``).
        slot: share an existing slot (e.g. one per process for several sessions); by
            default the stage makes its own in ``setup`` with ``config.compute``.
    """

    def __init__(
        self,
        config: VisionConfig | None = None,
        *,
        name: str = "vision",
        slot: ModelSlot | None = None,
    ) -> None:
        self.config = config if config is not None else VisionConfig()
        self.name = name
        self.encoder: VisionEncoder | None = None
        self._slot = slot
        self.keyframes = 0

    async def setup(self, ctx: StageContext) -> None:
        if self._slot is None:
            self._slot = ModelSlot(self.name, ctx.clock, self.config.compute, ctx.metrics)
        if self.config.compute == "thread":  # its detectors load in 0.2-0.3 s: not on the
            # event loop, where every other session's audio would wait for them
            self.encoder = await asyncio.to_thread(VisionEncoder, self.config)
        else:  # virtual time: inline, so replays stay deterministic
            self.encoder = VisionEncoder(self.config)
        ctx.output()  # fail at setup, not mid-stream, if "out" is not wired

    async def run(self, ctx: StageContext) -> None:
        encoder, slot = self.encoder, self._slot
        if encoder is None or slot is None:
            raise RuntimeError("VisionStage.run before setup")
        cfg = self.config
        out = ctx.output()
        frames = ctx.metrics.counter("vision.frames")
        keyframes = ctx.metrics.counter("vision.keyframes")
        skipped = ctx.metrics.counter("vision.skipped")
        gate_cost = ctx.metrics.histogram("vision.gate_cost")
        key_cost = ctx.metrics.histogram("vision.keyframe_cost")
        virtual = slot.mode == "virtual"
        gate_charge = cfg.gate_charge_ns if virtual else None
        key_charge = cfg.keyframe_charge_ns if virtual else None
        async for item in ctx.input():
            if not isinstance(item, Packet):
                if isinstance(item, Flush):
                    encoder.gate_state.force_next()  # a new epoch starts with a keyframe
                await out.put(item)
                continue
            frame = item.payload
            if not isinstance(frame, VideoFrame):
                raise TypeError(f"{self.name}: expected VideoFrame, got {type(frame).__name__}")
            if ctx.clock.now() - item.pts > cfg.budget_ns:
                skipped.inc()
                continue
            frames.inc()
            gate, cost = await slot.call(
                functools.partial(
                    measure_ns, functools.partial(encoder.gate, frame.image, item.pts)
                ),
                charge=gate_charge,
            )
            gate_cost.observe(cost if gate_charge is None else gate_charge)
            if not gate.keyframe:
                continue
            obs, cost = await slot.call(
                functools.partial(
                    measure_ns, functools.partial(encoder.analyse, frame.image, item.pts, gate)
                ),
                charge=key_charge,
            )
            key_cost.observe(cost if key_charge is None else key_charge)
            keyframes.inc()
            await out.put(
                Packet(
                    stream=cfg.stream,
                    seq=self.keyframes,
                    pts=item.pts,
                    duration=0,
                    payload=obs,
                    epoch=item.epoch,
                    lineage=item.lineage,
                )
            )
            self.keyframes += 1
