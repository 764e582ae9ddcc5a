"""Latency report of a recorded session: a PNG timeline on the shared clock plus an HTML page.

Timeline panels (x = seconds since the session start, one shared axis):

1. audio waveform (min/max envelope per 10 ms) with voice activity (SpeechStarted→Stopped)
   shaded and labelled by utterance id;
2. words: partial hypotheses (grey bars, lower lane) and final words (blue bars with text,
   upper lane) at their audio times, and ▼ where each final *arrived*;
3. video frames (a tick per frame at its capture pts) and vision observations (labels);
4. answer tokens at their arrival times, one lane per response, with the answer text.

Below: per-stage latency distributions (box plots of the raw samples of the session's final
metrics snapshot, ms, log scale) and per-utterance lineage (ms after speech start).

Matplotlib with the Agg backend (no display needed). Reading the session and drawing take a
second or two for a minute of media.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

from streamkit.core.events import (
    Observation,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.packet import Packet
from streamkit.record.mcap import Session, read_session
from streamkit.ui.summary import LatencyRow, latency_rows, lineage_rows

__all__ = ["MIN_HISTOGRAM_N", "ReportData", "collect", "has_events", "render_png", "write_report"]

MIN_HISTOGRAM_N = 20
"""A latency series gets a histogram only with at least this many samples (fewer: its box
plot and numbers say all there is)."""

ANSWER_WRAP = 110
"""Characters per line of an answer in the timeline (longer answers wrap, never clip)."""


@dataclass
class ReportData:
    """Everything the report draws, in seconds since the session start."""

    duration: float
    wave_t: npt.NDArray[np.float64]
    wave_lo: npt.NDArray[np.float32]
    wave_hi: npt.NDArray[np.float32]
    speech: list[tuple[str, float, float | None]] = field(default_factory=list)
    partial_words: list[tuple[float, float]] = field(default_factory=list)
    final_words: list[tuple[float, float, str]] = field(default_factory=list)
    final_arrivals: list[tuple[float, str]] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)
    observations: list[tuple[float, str]] = field(default_factory=list)
    tokens: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    answers: dict[str, tuple[float, str, bool]] = field(default_factory=dict)
    samples: dict[str, list[int]] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    finals_text: list[str] = field(default_factory=list)
    utterances: dict[str, str] = field(default_factory=dict)
    """Utterance id → its whole transcript (its finals joined), in order of speech."""
    events: int = 0
    """Event packets (transcripts, answers, observations) in the recording."""
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)


def _obs_label(obs: Observation) -> str:
    if obs.summary:
        return obs.summary
    labels = [d.label for d in obs.detections]
    return ", ".join(labels) if labels else f"motion {obs.motion:.2f}"


def collect(session: Session) -> ReportData:
    """Extract the report's series from a session (pure)."""
    t0 = session.start

    def sec(ns: int) -> float:
        return (ns - t0) / 1e9

    audio: list[tuple[int, AudioChunk]] = []
    data = ReportData(0.0, np.zeros(0), np.zeros(0, np.float32), np.zeros(0, np.float32),
                      metadata=session.metadata)
    open_speech: dict[str, float] = {}
    end = 0.0
    for msg in session.messages:
        item = msg.item
        if not isinstance(item, Packet):
            continue
        end = max(end, sec(msg.log_time))
        p = item.payload
        if not isinstance(p, AudioChunk | VideoFrame):
            data.events += 1
        if isinstance(p, AudioChunk):
            audio.append((item.pts, p))
        elif isinstance(p, VideoFrame):
            data.frames.append(sec(item.pts))
        elif isinstance(p, SpeechStarted):
            open_speech[p.utterance_id] = sec(p.t)
        elif isinstance(p, SpeechStopped):
            data.speech.append((p.utterance_id, open_speech.pop(p.utterance_id, sec(p.t)),
                                sec(p.t)))
        elif isinstance(p, TranscriptPartial):
            data.partial_words.extend((sec(w.start), sec(w.end)) for w in p.words)
        elif isinstance(p, TranscriptFinal):
            data.final_words.extend((sec(w.start), sec(w.end), w.text.strip()) for w in p.words)
            if p.text.strip():
                data.final_arrivals.append((sec(msg.log_time), p.text.strip()))
                data.finals_text.append(p.text.strip())
                said = data.utterances.get(p.utterance_id, "")
                data.utterances[p.utterance_id] = f"{said} {p.text.strip()}".strip()
        elif isinstance(p, Observation):
            data.observations.append((sec(p.pts), _obs_label(p)))
        elif isinstance(p, ResponseDelta):
            data.tokens.setdefault(p.response_id, []).append((sec(msg.log_time), p.text))
        elif isinstance(p, ResponseDone):
            data.answers[p.response_id] = (sec(msg.log_time), p.text.strip(), p.cancelled)
    data.speech.extend((uid, start, None) for uid, start in open_speech.items())
    if audio:
        samples = np.concatenate([c.samples for _, c in audio])
        rate = audio[0][1].sample_rate
        hop = max(1, rate // 100)
        n = len(samples) // hop
        frames = samples[: n * hop].reshape(n, hop)
        data.wave_lo, data.wave_hi = frames.min(axis=1), frames.max(axis=1)
        data.wave_t = sec(audio[0][0]) + np.arange(n) * hop / rate
        end = max(end, float(data.wave_t[-1]) if n else 0.0)
    final = session.final_metrics()
    if final is not None:
        data.snapshot = final.snapshot
        data.samples = final.samples or {}
    data.duration = end
    return data


def _timeline(axes: Any, data: ReportData) -> None:
    ax_wave, ax_words, ax_video, ax_answer = axes
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, max(data.duration, 1.0))
        ax.set_yticks([])
    ax_wave.fill_between(data.wave_t, data.wave_lo, data.wave_hi, color="#345", lw=0)
    ax_wave.set_ylim(-1.05, 1.05)
    ax_wave.set_ylabel("audio\n+ VAD", rotation=0, ha="right", va="center")
    for uid, start, stop in data.speech:
        stop_x = stop if stop is not None else data.duration
        ax_wave.axvspan(start, stop_x, color="#2a2", alpha=0.18)
        ax_wave.text(start, 0.92, f" {uid}", fontsize=8, va="top", color="#161")

    ax_words.set_ylim(-0.6, 2.3)
    ax_words.set_ylabel("words", rotation=0, ha="right", va="center")
    for start, stop in data.partial_words:
        ax_words.plot([start, stop], [0, 0], color="#999", lw=5, alpha=0.25,
                      solid_capstyle="butt")
    for i, (start, stop, text) in enumerate(data.final_words):
        ax_words.plot([start, stop], [1, 1], color="#1f5fbf", lw=7, solid_capstyle="butt")
        ax_words.text(start, 1.22 + 0.33 * (i % 3), text, fontsize=7.5, color="#123")
    for t, _text in data.final_arrivals:
        ax_words.plot([t], [0.5], marker="v", color="#c40", ms=7)
    ax_words.text(0.002, 0.02, "grey: partial words · blue: final words · ▼ final arrived",
                  transform=ax_words.transAxes, fontsize=7, color="#555")

    ax_video.set_ylim(-0.5, 1.6)
    ax_video.set_ylabel("video\n+ vision", rotation=0, ha="right", va="center")
    if data.frames:
        ax_video.vlines(data.frames, -0.4, 0.4, color="#777", lw=0.6)
    for i, (t, label) in enumerate(data.observations):
        ax_video.plot([t], [0.8], marker="o", color="#a50", ms=5)
        ax_video.text(t, 0.95 + 0.3 * (i % 2), label[:40], fontsize=7, color="#630")
    if not data.observations:
        ax_video.text(0.002, 0.85, "no vision observations recorded",
                      transform=ax_video.transAxes, fontsize=7, color="#555")

    ax_answer.set_ylabel("answer\ntokens", rotation=0, ha="right", va="center")
    lanes = list(dict.fromkeys([*data.tokens, *data.answers]))
    ax_answer.set_ylim(-0.8, max(1, len(lanes)) - 0.2)
    for lane, rid in enumerate(lanes):
        toks = data.tokens.get(rid, [])
        if toks:
            ax_answer.vlines([t for t, _ in toks], lane - 0.3, lane + 0.3, color="#7a3", lw=1)
        done = data.answers.get(rid)
        x = toks[0][0] if toks else (done[0] if done else 0.0)
        text = done[1] if done else "".join(t for _, t in toks)
        if done is not None:
            ax_answer.plot([done[0]], [lane], marker="s", color="#c40" if done[2] else "#350",
                           ms=5)
        label = ("(cancelled) " if done and done[2] else "") + (text or "(empty)")
        wrapped = textwrap.fill(label, ANSWER_WRAP, max_lines=4, placeholder=" …")
        right = x > max(data.duration, 1.0) / 2  # late answers grow leftwards: no clipping
        ax_answer.text(x, lane + 0.32, wrapped, fontsize=7, color="#242", va="bottom",
                       ha="right" if right else "left", linespacing=1.1)
    ax_answer.set_xlabel("seconds since session start (shared clock)")


def _latency(ax: Any, data: ReportData) -> None:
    rows = [r for r in latency_rows(data.snapshot, ("stage.", "e2e.", "model.", "lm."))
            if data.samples.get(r.name)]
    ax.set_title("latency per stage (ms, log scale; box = p25–p75, whiskers = p5–p95)",
                 fontsize=10, loc="left")
    if not rows:
        ax.text(0.5, 0.5, "no latency samples in this session", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return
    floor = 1e-2  # ms: zero-cost hops (a tee) are drawn at 10 µs
    values = [np.maximum(np.asarray(data.samples[r.name], float) / 1e6, floor) for r in rows]
    ax.boxplot(values, orientation="horizontal", whis=(5, 95), showfliers=False, widths=0.6)
    ax.set_yticks(range(1, len(rows) + 1), [_row_label(r) for r in rows], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(left=floor / 2)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    for i, r in enumerate(rows, start=1):
        ax.text(1.001, i, f"p50 {r.p50_ms:.1f}  p95 {r.p95_ms:.1f}  n={r.count}",
                transform=ax.get_yaxis_transform(), fontsize=7, va="center")


def _histograms(fig: Any, cell: Any, data: ReportData, n: int = 8) -> None:
    """Small histograms (ms) of the ``n`` slowest (by p50) latency series with at least
    :data:`MIN_HISTOGRAM_N` samples."""
    rows = [r for r in latency_rows(data.snapshot, ("stage.", "e2e.", "model.", "lm."))
            if len(data.samples.get(r.name, [])) >= MIN_HISTOGRAM_N and r.p95_ms > 0.05]
    rows = sorted(rows, key=lambda r: -r.p50_ms)[:n]
    grid = cell.subgridspec(2, 4, hspace=0.7, wspace=0.25)
    for i in range(8):
        ax = fig.add_subplot(grid[i // 4, i % 4])
        if i >= len(rows):
            ax.set_axis_off()
            continue
        row = rows[i]
        values = np.asarray(data.samples[row.name], float) / 1e6
        ax.hist(values, bins=30, color="#4a7bbf")
        ax.axvline(row.p50_ms, color="#c40", lw=1)
        ax.axvline(row.p95_ms, color="#c40", lw=1, ls="--")
        ax.set_title(f"{_row_label(row)} (n={row.count})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    if rows:
        fig.text(0.17, cell.get_position(fig).y1 + 0.014,
                 "latency histograms (ms; solid = p50, dashed = p95)", fontsize=10)
    else:
        fig.text(0.17, cell.get_position(fig).y1 - 0.02,
                 f"no latency histograms: no series has {MIN_HISTOGRAM_N} samples or more",
                 fontsize=9, color="#555")


def _row_label(row: LatencyRow) -> str:
    return row.label if len(row.label) < 34 else row.label[:31] + "…"


def _lineage(ax: Any, data: ReportData) -> None:
    rows = lineage_rows(data.snapshot.get("lineage", {}))
    ax.set_title("per-utterance lineage (ms after the utterance's first mark)", fontsize=10,
                 loc="left")
    if not rows:
        ax.text(0.5, 0.5, "no lineage recorded", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = sorted({ev for _, evs in rows for ev, _ in evs})
    colours = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    for y, (_uid, events) in enumerate(rows):
        xs = [ms for _, ms in events]
        ax.plot([min(xs), max(xs)], [y, y], color="#bbb", lw=1, zorder=1)
        for ev, ms in events:
            ax.scatter([ms], [y], color=colours[ev], s=22, zorder=2, label=ev)
    ax.set_yticks(range(len(rows)), [uid for uid, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("ms")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=False))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))


def render_png(data: ReportData, title: str = "") -> bytes:
    """Draw the report figure; returns PNG bytes."""
    n_lat = max(4, len(latency_rows(data.snapshot, ("stage.", "e2e.", "model.", "lm."))))
    n_lin = max(2, len(data.snapshot.get("lineage", {})))
    fig = plt.figure(figsize=(16, 11.5 + 0.28 * n_lat + 0.3 * n_lin), dpi=100)
    heights = [1.3, 1.4, 0.9, 1.0 + 0.45 * len(data.answers or data.tokens), 0.01,
               0.25 * n_lat + 0.5,
               2.6, 0.3 * n_lin + 0.8]
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.45,
                            left=0.17, right=0.86, top=0.95, bottom=0.04)
    axes = [fig.add_subplot(grid[0])]
    axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in (1, 2, 3)]
    for ax in axes[:3]:
        ax.tick_params(labelbottom=False)
    _timeline(axes, data)
    fig.add_subplot(grid[4]).set_axis_off()
    _latency(fig.add_subplot(grid[5]), data)
    _histograms(fig, grid[6], data)
    _lineage(fig.add_subplot(grid[7]), data)
    fig.suptitle(title or "streamkit session report", fontsize=13, x=0.02, ha="left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _html(data: ReportData, png: bytes, title: str) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(r.name)}</td><td>{r.count}</td><td>{r.p50_ms:.1f}</td>"
        f"<td>{r.p95_ms:.1f}</td><td>{r.max_ms:.1f}</td></tr>"
        for r in latency_rows(data.snapshot, ("stage.", "e2e.", "model.", "lm."))
    )
    lineage = "".join(
        f"<li><b>{esc(uid)}</b>: " + " → ".join(f"{esc(ev)} {ms:.0f} ms" for ev, ms in evs)
        + "</li>"
        for uid, evs in lineage_rows(data.snapshot.get("lineage", {}))
    )
    finals = "".join(
        f"<li><b>{esc(uid)}</b>: {esc(text)}</li>" for uid, text in data.utterances.items()
    )
    answers = "".join(
        f"<li>{'(cancelled) ' if c else ''}{esc(text) or '(empty)'}</li>"
        for _t, text, c in data.answers.values()
    )
    meta = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(key)}</td><td>{esc(str(value))}</td></tr>"
        for name, fields in data.metadata.items()
        for key, value in (fields.items() if isinstance(fields, dict) else [("", fields)])
    )
    img = base64.b64encode(png).decode()
    return f"""<!doctype html><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}</style>
<h1>{esc(title)}</h1><p>duration {data.duration:.2f} s</p>
<img alt="timeline and latency" src="data:image/png;base64,{img}">
<h2>Latency (ms)</h2><table><tr><th>histogram</th><th>n</th><th>p50</th><th>p95</th>
<th>max</th></tr>{rows}</table>
<h2>Lineage</h2><ul>{lineage or "<li>none recorded</li>"}</ul>
<h2>What was heard (one line per utterance)</h2><ol>{finals or "<li>none recorded</li>"}</ol>
<h2>Answers</h2><ol>{answers or "<li>none recorded</li>"}</ol>
<h2>Session metadata</h2><table><tr><th>record</th><th>field</th><th>value</th></tr>{meta}
</table>
"""


def has_events(session_path: str | Path) -> bool:
    """Whether a recording holds events (transcripts, answers…), not only media: what
    ``streamkit record`` writes has none until a pipeline ran on it (``report --run``)."""
    return collect(read_session(Path(session_path))).events > 0


def write_report(session_path: str | Path, out: str | Path) -> tuple[Path, Path]:
    """Write ``<out>.png`` and ``<out>.html`` for a session; returns both paths."""
    session_path = Path(session_path)
    session = read_session(session_path)
    data = collect(session)
    title = f"streamkit session report — {session_path.name}"
    if session.truncated:
        title += " (truncated recording)"
    png = render_png(data, title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png_path, html_path = out.with_suffix(".png"), out.with_suffix(".html")
    png_path.write_bytes(png)
    html_path.write_text(_html(data, png, title), encoding="utf-8")
    return png_path, html_path
