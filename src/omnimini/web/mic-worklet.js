// The microphone's AudioWorklet: the context's rate (44.1 or 48 kHz) down to the voice loop's 16 kHz
// 16-bit mono PCM (docs/audio.md), posted in 20 ms frames. Each output sample is the mean of the
// input samples in its interval: a box low-pass, enough for speech (Whisper takes 8 kHz of band).
"use strict";
const TARGET_RATE = 16000;
const FRAME = TARGET_RATE / 50;          // 20 ms, the frame size the `omnimini voice` CLI sends

class MicDownsampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE;   // input samples per output sample (sampleRate: the context's)
    this.pos = 0; this.sum = 0; this.n = 0;
    this.out = new Int16Array(FRAME); this.fill = 0;
    this.sending = true;
    this.port.onmessage = (e) => { this.sending = e.data.sending; };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || !channels.length) return true;
    const x = channels[0];
    for (let i = 0; i < x.length; i++) {
      this.sum += x[i]; this.n += 1; this.pos += 1;
      if (this.pos < this.step) continue;
      this.pos -= this.step;
      const v = Math.max(-1, Math.min(1, this.sum / this.n));
      this.sum = 0; this.n = 0;
      this.out[this.fill++] = v < 0 ? v * 32768 : v * 32767;
      if (this.fill === FRAME) {
        if (this.sending) this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(FRAME); this.fill = 0;
      }
    }
    return true;
  }
}

registerProcessor("mic-downsampler", MicDownsampler);
