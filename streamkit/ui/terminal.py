"""Headless view: the demo state as a live terminal screen (rich), then a latency summary.

:func:`view` is pure (state → rich renderable); :class:`TerminalView` owns the
``rich.live.Live`` display (refreshes on its own timer thread; ``update`` is cheap).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streamkit.ui.state import DemoState

__all__ = ["TerminalView", "hud_table", "view"]


def hud_table(state: DemoState, limit: int = 10) -> Table:
    """The HUD's latency rows as a table (ms)."""
    table = Table(title="latency (ms)", title_justify="left", expand=False, padding=(0, 1))
    table.add_column("stage / path")
    table.add_column("p50", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("n", justify="right")
    for row in state.hud_rows(limit):
        table.add_row(row.label, f"{row.p50_ms:.1f}", f"{row.p95_ms:.1f}", str(row.count))
    return table


def view(state: DemoState) -> RenderableType:
    """The whole screen for ``state``."""
    flags = []
    if state.speaking:
        flags.append("[green]● speaking[/]")
    if state.muted:
        flags.append("[red]MUTED[/]")
    if state.recording:
        flags.append("[red]● REC[/]")
    level = "▁" if state.muted else "▁▂▃▄▅▆▇█"[max(0, min(7, int((state.level_db + 60) / 7.5)))]
    header = Text.from_markup(
        f"[bold]{state.title}[/]  [dim]{state.source_label}[/]  {' '.join(flags)}  "
        f"mic {level}  frames {state.frames}  events {state.events}"
    )
    conversation = Text()
    for turn in list(state.turns)[-6:]:  # the terminal keeps the latest turns in view
        if turn.final or turn.partial:
            conversation.append("you: ", style="bold cyan")
            conversation.append(turn.final + " ", style="bold")
            conversation.append(turn.partial + "\n", style="dim")
        elif turn.speech_ns:
            conversation.append(f"[{turn.speech_ns / 1e9:.1f} s of speech]\n", style="dim")
        if turn.answer or turn.answer_done:
            conversation.append("assistant: ", style="bold green")
            conversation.append(turn.answer.strip())
            conversation.append(" (cancelled)\n" if turn.cancelled else "\n", style="dim")
        if turn.final_at is not None:
            first = turn.eos_to_first_token_ns
            final = turn.eos_to_final_ns
            conversation.append(
                f"  end of speech → final {final / 1e6 if final else 0:.0f} ms"
                + (f", → first token {first / 1e6:.0f} ms" if first is not None else "")
                + "\n", style="dim")
    parts: list[Any] = [header, Panel(conversation, title="conversation", title_align="left")]
    headline = state.headline()
    if headline:
        parts.append(Text("latency per turn from the end of speech: " + " · ".join(
            f"→ {name} p50 {p50:.0f} ms p90 {p90:.0f} ms (n={n})"
            for name, (n, p50, p90) in headline.items())))
    if state.observation:
        parts.append(Text.from_markup(f"[green]vision:[/] {state.observation}"))
    parts.append(hud_table(state))
    if state.errors:
        parts.append(Text(state.errors[-1], style="red"))
    return Group(*parts)


class TerminalView:
    """A rich Live display of a :class:`DemoState` (``start`` / ``update`` / ``stop``)."""

    def __init__(self, state: DemoState, console: Console | None = None) -> None:
        self.state = state
        self.console = console or Console()
        self._live = Live(view(state), console=self.console, refresh_per_second=4,
                          transient=False)

    def start(self) -> None:
        self._live.start()

    def update(self) -> None:
        self._live.update(view(self.state))

    def stop(self) -> None:
        self._live.update(view(self.state))
        self._live.stop()
        self.console.print()
