// The spoken answer in the page: response.audio binary frames (protocol v1 kind 3) are decoded
// and played by an AudioWorklet (speech-worklet.js) in an AudioContext at the voice's rate;
// response.audio.done with cancelled=true drops the rest of that answer at once (barge-in).
// The page's microphone uses the browser's echo cancellation (app.js getUserMedia), which
// removes this playback from what the server hears. ?speech=0 turns the voice off.
"use strict";
window.streamkitSpeech = (() => {
  const api = { frames: 0, played: 0, flushed: [], texts: [], captured: [], enabled: true };
  let ctx = null, node = null, pending = [], capture = false;

  async function open(rate) {
    ctx = new AudioContext({ sampleRate: rate });
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    await ctx.audioWorklet.addModule("speech-worklet.js");
    node = new AudioWorkletNode(ctx, "speech-player", { outputChannelCount: [1] });
    node.port.onmessage = (e) => { if (e.data.block) api.captured.push(e.data.block); };
    node.connect(ctx.destination);
    if (capture) node.port.postMessage({ capture: true });
    for (const m of pending) node.port.postMessage(m);
    pending = [];
  }
  function post(m) { if (node) node.port.postMessage(m); else pending.push(m); }

  // one binary frame: 24-byte header (kind 3), N bytes of JSON metadata, PCM16LE samples
  api.frame = (buf) => {
    const v = new DataView(buf);
    if (buf.byteLength < 24 || v.getUint8(3) !== 3) return false;
    const metaLen = v.getUint16(6, true), rate = v.getUint32(8, true);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 24, metaLen)));
    const pcm = new Int16Array(buf.slice(24 + metaLen));
    const samples = Float32Array.from(pcm, (x) => x / 32768);
    api.frames++; api.texts.push(meta.text || "");
    if (!ctx) open(rate).catch((err) => console.error("speech:", err));
    post({ chunk: samples, rid: meta.response_id });
    return true;
  };
  // server events: stop at once when the server cut the voice
  api.event = (ev) => {
    if (ev.type === "response.audio.done" && ev.cancelled) {
      api.flushed.push(ev.response_id); post({ flush: ev.response_id });
    }
  };
  api.capture = () => { capture = true; if (node) node.port.postMessage({ capture: true }); };
  api.rate = () => (ctx ? ctx.sampleRate : 0);
  return api;
})();
