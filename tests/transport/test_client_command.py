"""``streamkit client --file`` against a real ``streamkit serve`` (Whisper + SmolLM2) on loopback.

Issue 12, bug 3: the client showed only the last 6 finals and 3 answers, and its wait matched
an *earlier* ``response.done``, so with a short ``--tail-s`` the last turn of a multi-turn
file was lost. Now every turn is printed once complete, in order, and the client waits for
the answer to its last utterance.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.transport._serve import serve_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_process(tmp_path_factory.mktemp("serve"), "--log-level", "warning") as port:
        yield f"ws://127.0.0.1:{port}/ws"


def _client(url: str, wav: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit", "client", "--url", url, "--file", str(wav), *extra],
        capture_output=True, text=True, timeout=180,
    )


def test_every_turn_is_printed_in_order_and_the_last_one_answered(
    url: str, data_dir: Path
) -> None:
    done = _client(url, data_dir / "speech/utterances/sr_english/english.wav", "--tail-s", "0.3")
    assert done.returncode == 0, done.stdout + done.stderr
    heard = [line for line in done.stdout.splitlines() if line.startswith("you: ")]
    words = re.sub(r"[^a-z0-9 ]+", " ", " ".join(heard).lower()).split()
    assert [w for w in words if w != "you"] == ["1", "2", "3"], done.stdout  # each once, in order
    answers = [line for line in done.stdout.splitlines() if line.startswith("assistant: ")]
    assert len(answers) == len(heard), done.stdout  # one per turn (earlier ones may be cut)
    assert "[cancelled]" not in answers[-1], answers
    assert len(answers[-1]) > len("assistant: "), answers
    assert "latency per turn" in done.stdout
    assert "→ first answer token" in done.stdout


def test_json_lines_hold_every_event_every_turn_and_a_summary(url: str, data_dir: Path) -> None:
    done = _client(url, data_dir / "speech/utterances/jfk/jfk.wav", "--json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]  # every line is JSON
    types = [r["event"]["type"] for r in records if "event" in r]
    assert types[0] == "session.created"
    assert "transcript.final" in types
    turns = [r["turn"] for r in records if "turn" in r]
    assert turns
    assert "fellow americans" in turns[0]["heard"].lower()
    assert turns[-1]["answer"]
    assert not turns[-1]["cancelled"]
    assert turns[-1]["eos_to_first_token_s"] is not None
    summary = records[-1]["summary"]
    assert summary["turns"] == len(turns)
    assert summary["eos_to_first_token"]["n"] >= 1
    assert summary["errors"] == []
