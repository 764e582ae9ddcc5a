"""Pure renderer: :class:`~streamkit.ui.state.DemoState` → one BGR image (OpenCV drawing).

Layout on a 1280×720 canvas (:data:`LAYOUT`, pixel rectangles ``(x, y, w, h)``):

- ``header``: title, source, speaking / muted / recording flags and the microphone level;
- ``video``: the newest camera frame, letterboxed, with the last observation's detection
  boxes scaled onto it, the observation line on a band at its top and a caption (what is
  being said now) on a band at its bottom;
- ``conversation``: every turn of the session, newest at the bottom (older ones scroll
  off the top): what was heard (white, the live partial grey), the answer (green) and its
  latency from the end of speech;
- ``hud``: the per-turn headline — end of speech → first answer token and → final
  transcript, last turn and session p50/p90; the ``d`` key switches to the per-stage
  breakdown (p50 / p95 ms) from the metrics snapshot;
- ``footer``: the keys.

No window, no clock: the same state always gives the same image, so it is unit-testable and
the window test compares the screen against it.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from streamkit.ui.state import DemoState

__all__ = ["BACKGROUND", "LAYOUT", "SIZE", "ascii_text", "render", "video_rect"]

SIZE = (1280, 720)
LAYOUT: dict[str, tuple[int, int, int, int]] = {
    "header": (0, 0, 1280, 44),
    "video": (16, 56, 640, 480),
    "conversation": (672, 56, 592, 480),
    "hud": (16, 548, 1248, 140),
    "footer": (0, 694, 1280, 26),
}
BACKGROUND = (24, 22, 20)
_PANEL = (38, 36, 33)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (235, 235, 235)
_GREY = (150, 150, 150)
_ACCENT = (80, 200, 255)
_GREEN = (90, 210, 120)
_RED = (60, 60, 230)


_ASCII = str.maketrans({"·": "-", "×": "x", "—": "-", "–": "-", "…": "...", "’": "'",
                        "‘": "'", "“": '"', "”": '"', "→": "->", "●": "*"})


def ascii_text(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only: map common symbols, drop the rest."""
    return text.translate(_ASCII).encode("ascii", "replace").decode()


def _text(img: npt.NDArray[np.uint8], text: str, org: tuple[int, int], scale: float = 0.55,
          colour: tuple[int, int, int] = _WHITE, thickness: int = 1) -> None:
    cv2.putText(img, ascii_text(text), org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _wrap(text: str, width: int, scale: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if cv2.getTextSize(ascii_text(candidate), _FONT, scale, 1)[0][0] <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def _panel(img: npt.NDArray[np.uint8], name: str, title: str) -> tuple[int, int, int, int]:
    x, y, w, h = LAYOUT[name]
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), _PANEL, -1)
    _text(img, title, (x + 10, y + 20), 0.5, _ACCENT)
    return x, y, w, h


def video_rect(frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Where a frame of ``frame_shape`` lands inside ``LAYOUT["video"]`` (letterboxed)."""
    x, y, w, h = LAYOUT["video"]
    fh, fw = frame_shape[0], frame_shape[1]
    scale = min(w / fw, h / fh)
    dw, dh = max(1, round(fw * scale)), max(1, round(fh * scale))
    return x + (w - dw) // 2, y + (h - dh) // 2, dw, dh


def _video(img: npt.NDArray[np.uint8], state: DemoState) -> None:
    x, y, w, h = LAYOUT["video"]
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 0, 0), -1)
    if state.frame is None:
        _text(img, "no video", (x + w // 2 - 50, y + h // 2), 0.8, _GREY)
        return
    vx, vy, vw, vh = video_rect(state.frame.shape)
    img[vy : vy + vh, vx : vx + vw] = cv2.resize(state.frame, (vw, vh),
                                                 interpolation=cv2.INTER_AREA)
    sw, sh = state.detection_size
    if sw and sh:
        sx, sy = vw / sw, vh / sh
        for det in state.detections:
            bx, by, bw, bh = det.box
            p1 = (vx + round(bx * sx), vy + round(by * sy))
            p2 = (vx + round((bx + bw) * sx), vy + round((by + bh) * sy))
            cv2.rectangle(img, p1, p2, _GREEN, 2)
            label = f"{det.label} {det.score:.2f}" + (f" {det.text}" if det.text else "")
            _text(img, label, (p1[0], max(vy + 14, p1[1] - 6)), 0.5, _GREEN)
    if state.observation:
        _band(img, (x, y, w, 26))
        _text(img, state.observation[:80], (x + 8, y + 18), 0.5, _GREEN)
    caption = _caption(state)
    if caption:
        lines = _wrap(caption, w - 24, 0.75)[-2:]
        _band(img, (x, y + h - 16 - 32 * len(lines), w, 16 + 32 * len(lines)))
        for i, line in enumerate(lines):
            _text(img, line, (x + 12, y + h - 16 - 32 * (len(lines) - 1 - i)), 0.75, _WHITE, 2)


def _band(img: npt.NDArray[np.uint8], rect: tuple[int, int, int, int]) -> None:
    """Darken ``rect`` so text on top of video stays readable."""
    x, y, w, h = rect
    region = img[y : y + h, x : x + w]
    region[:] = (region.astype(np.uint16) * 3 // 10).astype(np.uint8)


def _caption(state: DemoState) -> str:
    """What is being said now: the latest turn's words while it is open (or just ended)."""
    turn = state.turns[-1] if state.turns else None
    if turn is None or turn.answer_done:
        return ""
    return f"{turn.final} {turn.partial}".strip()


def _header(img: npt.NDArray[np.uint8], state: DemoState) -> None:
    _text(img, state.title, (16, 29), 0.75, _WHITE, 2)
    title_w = cv2.getTextSize(ascii_text(state.title), _FONT, 0.75, 2)[0][0]
    _text(img, state.source_label[:60], (16 + title_w + 20, 29), 0.5, _GREY)
    x = 820
    if state.speaking:
        cv2.circle(img, (x, 22), 7, _GREEN, -1)
        _text(img, "speaking", (x + 12, 28), 0.5, _GREEN)
    x += 100
    if state.muted:
        _text(img, "MUTED", (x, 28), 0.55, _RED, 2)
    x += 80
    if state.recording:
        cv2.circle(img, (x + 6, 22), 7, _RED, -1)
        _text(img, "REC", (x + 18, 28), 0.55, _RED, 2)
    # microphone level: -60..0 dBFS
    lx, ly, lw = 1110, 16, 150
    cv2.rectangle(img, (lx, ly), (lx + lw, ly + 12), _PANEL, -1)
    frac = 0.0 if state.muted else min(1.0, max(0.0, (state.level_db + 60) / 60))
    cv2.rectangle(img, (lx, ly), (lx + round(lw * frac), ly + 12), _GREEN, -1)


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f} ms"


def _conversation(img: npt.NDArray[np.uint8], state: DemoState) -> None:
    x, y, w, h = _panel(img, "conversation", "conversation")
    lines: list[tuple[str, tuple[int, int, int]]] = []
    for turn in state.turns:
        if not (turn.final or turn.partial or turn.answer):
            if turn.speech_ns:
                lines.append((f"you: [{turn.speech_ns / 1e9:.1f} s of speech]", _GREY))
            continue
        heard = _wrap(f"you: {turn.final}", w - 20, 0.55) if turn.final else []
        lines += [(line, _WHITE) for line in heard]
        lines += [(line, _GREY) for line in _wrap(turn.partial, w - 20, 0.55)]
        if turn.answer or turn.answer_done:
            text = turn.answer.strip() + (" [cancelled]" if turn.cancelled else "")
            colour = _GREY if turn.cancelled else _GREEN
            lines += [(line, colour) for line in _wrap(f"assistant: {text}", w - 20, 0.55)]
        if turn.final_at is not None:
            lines.append((f"   end of speech -> final {_ms(turn.eos_to_final_ns)}, "
                          f"-> first token {_ms(turn.eos_to_first_token_ns)}", _GREY))
    max_lines = (h - 34) // 22
    for i, (line, colour) in enumerate(lines[-max_lines:]):  # the newest stay in view
        _text(img, line, (x + 10, y + 44 + 22 * i), 0.55, colour)
    if state.turns and state.turns[-1].answer and not state.turns[-1].answer_done:
        cv2.circle(img, (x + w - 16, y + 14), 5, _ACCENT, -1)


def _hud(img: npt.NDArray[np.uint8], state: DemoState) -> None:
    if state.details:
        _stages(img, state)
        return
    x, y, _w, _h = _panel(img, "hud", "latency per turn, from the end of speech  (d: per stage)")
    last = next((t for t in reversed(state.turns) if t.final_at is not None), None)
    summary = state.headline()
    for i, (name, value) in enumerate((
        ("first answer token", last.eos_to_first_token_ns if last else None),
        ("final transcript", last.eos_to_final_ns if last else None),
    )):
        cy = y + 62 + 44 * i
        _text(img, f"-> {name}", (x + 10, cy), 0.7, _WHITE, 2)
        _text(img, f"last {_ms(value)}", (x + 380, cy), 0.7, _ACCENT, 2)
        n, p50, p90 = summary.get(name, (0, 0.0, 0.0))
        stats = f"p50 {p50:.0f} ms   p90 {p90:.0f} ms   (n={n})" if n else "none yet"
        _text(img, stats, (x + 640, cy), 0.6, _WHITE)


def _stages(img: npt.NDArray[np.uint8], state: DemoState) -> None:
    x, y, w, h = _panel(img, "hud", "latency per stage (ms):  p50 / p95   (d: per turn)")
    rows = state.hud_rows(limit=10)
    per_col = (h - 30) // 21
    for i, row in enumerate(rows):
        col, line = divmod(i, per_col)
        cx = x + 10 + col * (w // 2)
        cy = y + 44 + 21 * line
        _text(img, row.label[:30], (cx, cy), 0.5, _WHITE)
        _text(img, f"{row.p50_ms:9.1f} / {row.p95_ms:.1f}", (cx + 290, cy), 0.5, _WHITE)
    if not rows:
        _text(img, "waiting for metrics…", (x + 10, y + 44), 0.5, _GREY)


def render(state: DemoState) -> npt.NDArray[np.uint8]:
    """Draw ``state`` onto a new 1280×720 BGR image."""
    width, height = SIZE
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND
    _header(img, state)
    _video(img, state)
    _conversation(img, state)
    _hud(img, state)
    footer = "q quit   m mute   r record   d details"
    if state.finished:
        footer = f"{state.finished_note} — q to quit"
    if state.errors:
        footer += "   |   " + state.errors[-1][:80]
    _text(img, footer, (16, 712), 0.5, _GREY)
    return img
