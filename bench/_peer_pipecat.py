"""A Pipecat voice pipeline as a WebSocket server, for bench/peers.py (run by the Pipecat venv).

transport in → Silero VAD (``VADProcessor``) → local Whisper STT (``WhisperSTTService``, the
same tiny.en CTranslate2 directory, int8, CPU) → user context aggregator → OpenAI-compatible
LLM service (a llama.cpp server on the same SmolLM2 GGUF) → transport out.

Wire format (a small serializer; the transport is Pipecat's own ``WebsocketServerTransport``):
binary frames from the client are PCM16 16 kHz mono; the server sends JSON text frames
``{"type": "transcript" | "token" | "response", "text": ...}`` (the final transcription of a
VAD segment; each streamed LLM token; ``response`` when the LLM starts an answer, so the client
can tell one answer's tokens from the next). Usage::

    python bench/_peer_pipecat.py --port P --model DIR --llm-url http://127.0.0.1:Q/v1
        [--system PROMPT] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.workers.runner import WorkerRunner


class BenchSerializer(FrameSerializer):
    """PCM16 in; transport messages out as JSON text."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputTransportMessageUrgentFrame):
            return json.dumps(frame.message)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes) and data:
            return InputAudioRawFrame(audio=data, sample_rate=16_000, num_channels=1)
        return None


class Report(FrameProcessor):
    """Passes every frame on; tells the client about transcriptions, answer starts and tokens."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        message = None
        if isinstance(frame, TranscriptionFrame):
            message = {"type": "transcript", "text": frame.text}
        elif isinstance(frame, LLMTextFrame):
            message = {"type": "token", "text": frame.text}
        elif isinstance(frame, LLMFullResponseStartFrame):
            message = {"type": "response", "text": ""}
        if message is not None:
            await self.push_frame(OutputTransportMessageUrgentFrame(message=message))


async def serve(args: argparse.Namespace) -> None:
    transport = SingleClientWebsocketServerTransport(
        params=SingleClientWebsocketServerParams(
            serializer=BenchSerializer(),
            audio_in_enabled=True,
            audio_in_sample_rate=16_000,
            audio_out_enabled=False,
            allowed_origins=[],
        ),
        host="127.0.0.1",
        port=args.port,
    )
    stt = WhisperSTTService(
        settings=WhisperSTTService.Settings(model=args.model),
        device="cpu",
        compute_type="int8",
    )
    llm = OpenAILLMService(
        api_key="none",
        base_url=args.llm_url,
        settings=OpenAILLMService.Settings(
            model="smollm2",
            max_tokens=args.max_tokens,
            temperature=0.0,
            system_instruction=args.system,
        ),
    )
    context = LLMContext()
    user, assistant = LLMContextAggregatorPair(context)
    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(vad_analyzer=SileroVADAnalyzer()),
            stt,
            Report(),
            user,
            llm,
            Report(),
            transport.output(),
            assistant,
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=16_000),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport: object, _client: object) -> None:
        context.set_messages([])  # each client (one file) starts a new conversation

    runner = WorkerRunner(handle_sigint=True)
    await runner.add_workers(worker)
    await runner.run()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--system", default="You are a helpful assistant. Answer briefly.")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
