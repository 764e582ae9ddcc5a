"""A tiny real OpenAI-compatible speech server for tests: ``POST /v1/audio/speech``.

Run as a separate process: ``python tests/tts/_speech_server.py`` prints ``PORT <n>`` once it
listens on 127.0.0.1. It speaks with streamkit's embedded Piper voice, one clause at a time,
and streams raw PCM16LE (``response_format: "pcm"``, 22.05 kHz) with chunked transfer encoding,
so the first audio leaves before the whole text is synthesised. ``GET /stats`` answers JSON
counters: requests, streams finished, streams the client dropped. Unknown voices get 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamkit.tts.backend import pcm16_bytes
from streamkit.tts.phonemes import clauses
from streamkit.tts.piper import PiperConfig, PiperEngine

ENGINE = PiperEngine(PiperConfig(deterministic=True))
LOCK = threading.Lock()
STATS = {"requests": 0, "finished": 0, "dropped": 0}


def synthesize(text: str) -> bytes:
    async def run() -> bytes:
        return b"".join([pcm16_bytes(c.samples) async for c in ENGINE.synthesize(text)])

    with LOCK:
        return asyncio.run(run())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._json(200, STATS)
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        if self.path != "/v1/audio/speech":
            self._json(404, {"error": {"message": "not found"}})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        STATS["requests"] += 1
        if body.get("voice") not in ("joe", "alloy") or body.get("response_format") != "pcm":
            self._json(400, {"error": {"message": f"unsupported voice {body.get('voice')!r}"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/pcm")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for words, punct in clauses(str(body["input"])):
                pcm = synthesize(words + punct)
                self.wfile.write(f"{len(pcm):x}\r\n".encode() + pcm + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            STATS["finished"] += 1
        except (BrokenPipeError, ConnectionResetError):
            STATS["dropped"] += 1


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
