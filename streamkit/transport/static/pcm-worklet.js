// AudioWorklet: mono input at the context's rate -> 16 kHz PCM16 frames of 20 ms (320 samples).
// Downsampling averages the input samples that fall into each output sample (a box low-pass),
// which is enough to keep speech intelligible to the ASR without aliasing hiss.
class PcmDownsampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 16000;
    this.acc = 0; this.count = 0; this.pos = 0;
    this.frame = new Int16Array(320); this.fill = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (!input || !input[0]) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      this.acc += ch[i]; this.count += 1; this.pos += 1;
      if (this.pos >= this.ratio) {
        this.pos -= this.ratio;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.acc = 0; this.count = 0;
        this.frame[this.fill++] = v < 0 ? v * 32768 : v * 32767;
        if (this.fill === this.frame.length) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(320); this.fill = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm-downsampler", PcmDownsampler);
