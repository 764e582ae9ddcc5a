"""Fetch the Smart Turn v3.2 end-of-turn model (ONNX, ~8.7 MB, BSD-2-Clause) at setup.

The weights ship inside the ``pipecat-ai`` wheel on PyPI. This script downloads that one
wheel with ``pip download --no-deps`` into a temporary folder (Pipecat is never installed),
reads ``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`` out of it, checks its
sha256 and stores it as ``models/smart-turn-v3.2-cpu.onnx`` (git-ignored). Idempotent: an
existing file with the right hash is kept. Run by ``make`` (stamp ``.stamps/smart-turn``).

Usage: python scripts/fetch_smart_turn.py [DEST_DIR]
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PIPECAT_VERSION = "1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
FILENAME = "smart-turn-v3.2-cpu.onnx"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str]) -> int:
    dest_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "models"
    dest = dest_dir / FILENAME
    if dest.is_file() and _sha256(dest.read_bytes()) == SHA256:
        print(f"smart-turn: {dest} present (sha256 ok)")
        return 0
    with tempfile.TemporaryDirectory(prefix="smart-turn-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--dest", tmp, f"pipecat-ai=={PIPECAT_VERSION}",
        ]  # fmt: skip
        done = subprocess.run(command, check=False)
        wheels = sorted(Path(tmp).glob("pipecat_ai-*.whl"))
        if done.returncode != 0 or not wheels:
            print(
                f"smart-turn: could not download pipecat-ai=={PIPECAT_VERSION} from PyPI "
                "(needed only for its Smart Turn weights); turn detection falls back to `vad`",
                file=sys.stderr,
            )
            return 1
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                data = wheel.read(MEMBER)
            except KeyError:
                print(f"smart-turn: {MEMBER} is not in {wheels[0].name}", file=sys.stderr)
                return 1
    digest = _sha256(data)
    if digest != SHA256:
        print(f"smart-turn: sha256 mismatch ({digest}, expected {SHA256})", file=sys.stderr)
        return 1
    dest_dir.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(dest)
    print(f"smart-turn: wrote {dest} ({len(data)} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
