// AudioWorklet: plays the spoken answer (response.audio chunks, mono float32) back to back.
// Messages in: {chunk: Float32Array, rid} queues audio; {flush: rid} drops that answer's queued
// audio at once (barge-in / cancel); {capture: true} posts a copy of every rendered block back
// (how the page's own audio output is checked in tests).
class SpeechPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; this.head = 0; this.capture = false; this.playing = null;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.chunk) this.queue.push({ rid: m.rid, samples: m.chunk });
      if (m.flush !== undefined) { this.queue = this.queue.filter((c) => c.rid !== m.flush);
        if (this.playing === m.flush) this.head = 0; }
      if (m.capture !== undefined) this.capture = m.capture;
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let filled = 0;
    while (filled < out.length && this.queue.length) {
      const c = this.queue[0];
      if (this.playing !== c.rid) { this.playing = c.rid; this.head = 0; }
      const take = Math.min(out.length - filled, c.samples.length - this.head);
      out.set(c.samples.subarray(this.head, this.head + take), filled);
      filled += take; this.head += take;
      if (this.head >= c.samples.length) { this.queue.shift(); this.head = 0; }
    }
    out.fill(0, filled);
    for (let ch = 1; ch < outputs[0].length; ch++) outputs[0][ch].set(out);
    if (this.capture) this.port.postMessage({ block: out.slice(0), at: currentTime });
    return true;
  }
}
registerProcessor("speech-player", SpeechPlayer);
