// A session of the OpenAI Agents SDK for JavaScript (@openai/agents-realtime, WebSocket
// transport, unchanged) against streamkit's /v1/realtime: a typed turn, then a spoken turn
// (24 kHz PCM16 from a file, server VAD). Prints one JSON line: every server event type in
// order, the SDK's conversation history, its errors, and how many events its own schemas
// could not parse. Run by tests/transport/test_realtime_agents_js.py.
//
// usage: node realtime_agents.mjs URL PCM_FILE   (AGENTS_JS: the folder holding node_modules)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [url, pcmFile] = process.argv.slice(2);
const root = join(process.env.AGENTS_JS, 'node_modules', '@openai', 'agents-realtime');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const entry = pkg.exports['.'].import?.default ?? pkg.exports['.'].import ?? pkg.module;
const { RealtimeAgent, RealtimeSession } = await import(pathToFileURL(join(root, entry)).href);

const agent = new RealtimeAgent({ name: 'streamkit', instructions: 'You are a concise assistant.' });
const session = new RealtimeSession(agent, {
  transport: 'websocket',
  model: 'streamkit',
  config: {
    outputModalities: ['text'],
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: 24000 },
        transcription: { model: 'whisper-1' },
        turnDetection: { type: 'server_vad', silenceDurationMs: 500 },
      },
    },
  },
});

const events = [];
const errors = [];
session.transport.on('*', (event) => events.push(event.type));
session.on('error', (error) => errors.push(JSON.stringify(error.error ?? error).slice(0, 300)));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(predicate, ms) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out; events: ${events.join(' ')}`);
    await sleep(20);
  }
}
const count = (type) => events.filter((t) => t === type).length;

await session.connect({ apiKey: 'sk-local', url });
await until(() => count('session.updated') >= 1, 20000);

session.sendMessage('What is the capital of France?');
await until(() => count('response.done') >= 1, 60000);

const pcm = readFileSync(pcmFile);
const chunk = 4800; // 100 ms of 24 kHz PCM16
const silence = Buffer.alloc(24000 * 2 * 2);
const audio = Buffer.concat([Buffer.alloc(24000), pcm, silence]);
for (let at = 0; at < audio.length; at += chunk) {
  const piece = audio.subarray(at, at + chunk);
  session.sendAudio(piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.length));
  await sleep(100);
}
await until(() => count('response.done') >= 2, 60000);
await until(() => count('conversation.item.input_audio_transcription.completed') >= 1, 30000);
await sleep(500); // the history update that follows the transcript

const history = session.history.map((item) => ({
  type: item.type,
  role: item.role,
  status: item.status,
  content: (item.content ?? []).map((part) => ({
    type: part.type,
    text: part.text ?? part.transcript ?? null,
  })),
}));
console.log(JSON.stringify({ events, history, errors }));
session.close();
process.exit(0);
