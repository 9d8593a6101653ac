// The playground's "Talk" control: the microphone streams to the voice loop (WebSocket /v1/voice,
// protocol in docs/audio.md) and the spoken answer plays as its clauses arrive.
// Hands-free: the server's VAD ends each turn. Otherwise push-to-talk: "Talk" starts a turn and
// "Done" ends it (input_audio_buffer.commit). The page does not use the loop's barge-in yet: the
// microphone is not sent while an answer is on its way or playing (that also keeps the answer out
// of the next question).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const status = $("status"), talk = $("talk"), hangUp = $("hang-up");
  const counters = { sent: 0, received: 0, played: 0, turns: 0 };
  let ws = null, audio = null, mic = null, worklet = null;
  let outRate = 24000, playAt = 0, pending = 0, answering = false, talking = false, odd = null;
  let userBox = null, answerBox = null;

  function show() {
    $("audio-sent").textContent = counters.sent;
    $("audio-received").textContent = counters.received;
    $("audio-played").textContent = counters.played.toFixed(2);
    $("voice-turns").textContent = counters.turns;
  }
  function say(text, cls = "") { status.textContent = text; status.className = cls; }
  function handsFree() { return $("hands-free").checked; }
  function add(cls, text) {
    const div = document.createElement("div");
    div.className = `msg ${cls}`;
    div.textContent = text;
    $("log").appendChild(div);
    return div;
  }

  // The microphone is sent only while the user may speak: hands-free between answers, or during a
  // push-to-talk turn.
  function updateSending() {
    const sending = !!ws && !answering && pending === 0 && (handsFree() || talking);
    if (worklet) worklet.port.postMessage({ sending });
    talk.textContent = !ws ? "Talk" : handsFree() ? (sending ? "Listening…" : "Answering…") : talking ? "Done" : "Talk";
  }

  async function open() {
    const q = new URLSearchParams({ model: $("model").value, vad: handsFree() ? "server" : "none" });
    if ($("system").value.trim()) q.set("instructions", $("system").value.trim());
    if (apiKey()) q.set("api_key", apiKey());        // browsers cannot set headers on a WebSocket
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const sock = new WebSocket(`${scheme}://${location.host}/v1/voice?${q}`);
    sock.binaryType = "arraybuffer";
    const hello = await new Promise((resolve, reject) => {
      sock.onmessage = (e) => resolve(JSON.parse(e.data));
      sock.onerror = () => reject(new Error("could not open the voice socket"));
      sock.onclose = (e) => reject(new Error(`the voice socket closed (${e.code})`));
    });
    if (hello.type === "error") { sock.close(); throw new Error(hello.error.message); }
    outRate = hello.output_audio.sample_rate;
    sock.onmessage = (e) => (typeof e.data === "string" ? onEvent(JSON.parse(e.data)) : onAudio(e.data));
    sock.onerror = null;
    sock.onclose = () => { if (ws === sock) stop("The voice socket closed."); };
    return sock;
  }

  async function start() {
    talk.disabled = true;
    say("Connecting…");
    try {
      ws = await open();
      audio = new AudioContext();
      await audio.resume();                        // a click started us: playback is allowed
      mic = await navigator.mediaDevices.getUserMedia(
        { audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
      await audio.audioWorklet.addModule("/arena/static/mic-worklet.js");
      worklet = new AudioWorkletNode(audio, "mic-downsampler", { numberOfInputs: 1, numberOfOutputs: 1 });
      const mute = audio.createGain();
      mute.gain.value = 0;                         // pulled by the graph, never heard
      audio.createMediaStreamSource(mic).connect(worklet).connect(mute).connect(audio.destination);
      worklet.port.onmessage = (e) => {
        if (ws && ws.readyState === WebSocket.OPEN) { ws.send(e.data); counters.sent += e.data.byteLength; show(); }
      };
      playAt = 0;
      talking = !handsFree();
      hangUp.disabled = false;
      say(handsFree() ? "Listening: speak, then pause." : "Speak, then press Done.");
    } catch (err) {
      stop(err.message || String(err));
    } finally {
      talk.disabled = false;
      updateSending();
    }
  }

  function stop(message) {
    const sock = ws;
    ws = null;
    if (sock) sock.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    if (audio) audio.close();
    mic = audio = worklet = null;
    answering = talking = false; pending = 0; odd = null;
    hangUp.disabled = true;
    if (answerBox) answerBox.classList.remove("streaming");
    if (message) say(message, "error"); else say("");
    updateSending();
  }

  function onEvent(ev) {
    if (ev.type === "speech_started") say("Hearing you…");
    else if (ev.type === "speech_stopped" && handsFree()) { answering = true; say("Thinking…"); updateSending(); }
    else if (ev.type === "transcript") {
      answering = true;
      userBox = add("user voice", ev.text || "(nothing heard)");
      answerBox = add("assistant voice streaming", "");
      updateSending();
    } else if (ev.type === "text.delta") {
      if (answerBox) answerBox.textContent += ev.delta;
      $("served-by").textContent = $("model").value;
    } else if (ev.type === "response.done") {
      counters.turns += 1;
      if (answerBox) answerBox.classList.remove("streaming");
      const t = ev.timings_ms || {};
      say(t.first_audio_sent != null ? `First audio ${Math.round(t.first_audio_sent)} ms after the end of speech.` : "", "good");
      answering = false;
      show(); updateSending();
    } else if (ev.type === "error") {
      answering = false;
      say(ev.error.message, "error");
      updateSending();
    }
  }

  // 16-bit mono PCM at the session's output rate, played gapless after what is already queued.
  function onAudio(buf) {
    counters.received += buf.byteLength;
    show();
    let bytes = new Uint8Array(buf);
    if (odd) { const b = new Uint8Array(bytes.length + 1); b[0] = odd[0]; b.set(bytes, 1); bytes = b; odd = null; }
    if (bytes.length % 2) { odd = bytes.slice(-1); bytes = bytes.slice(0, -1); }
    if (!audio || !bytes.length) return;
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    const clip = audio.createBuffer(1, pcm.length, outRate);
    const ch = clip.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    const src = audio.createBufferSource();
    src.buffer = clip;
    src.connect(audio.destination);
    playAt = Math.max(playAt, audio.currentTime + 0.02);
    src.start(playAt);
    playAt += clip.duration;
    pending += 1;
    updateSending();
    src.onended = () => { counters.played += clip.duration; pending -= 1; show(); updateSending(); };
  }

  talk.addEventListener("click", () => {
    if (!ws) { start(); return; }
    if (handsFree()) return;
    if (talking) {                                 // push-to-talk: the end of this turn
      talking = false; answering = true;
      ws.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
      say("Thinking…");
    } else if (!answering && pending === 0) {
      talking = true;
      say("Speak, then press Done.");
    }
    updateSending();
  });
  hangUp.addEventListener("click", () => stop());
  $("hands-free").addEventListener("change", () => { if (ws) stop("Hands-free changed: press Talk again."); });
  show();
})();
