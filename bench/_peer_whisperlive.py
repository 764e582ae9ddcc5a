"""Start WhisperLive's server (faster_whisper backend) for bench/peers.py (run by its venv).

Usage: ``python bench/_peer_whisperlive.py --port P --model DIR``. One model is loaded and
shared by every client (``single_model``), as streamkit shares its Whisper.
"""

from __future__ import annotations

import argparse
import sys

from whisper_live.server import TranscriptionServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    TranscriptionServer().run(
        "127.0.0.1",
        port=args.port,
        backend="faster_whisper",
        faster_whisper_custom_model_path=args.model,
        single_model=True,
        max_clients=4,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
