// streamkit browser client: mic (+ camera) -> protocol v1 binary frames; events -> the page.
// Query parameters: ?token=… (server auth), ?autostart=1, ?camera=1, ?pipeline=NAME.
// Resume: after an abnormal close or 1001 (a worker died or drains) the page reconnects with
// ?resume=<session id>&answered=<n> and re-sends the audio not yet answered (docs/deploy.md).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const NS_PER_SAMPLE = 62500n; // 1e9 / 16000
  const state = { ws: null, events: [], finals: [], answers: {}, errors: [], sessionId: null,
                  audioFrames: 0, videoFrames: 0, running: false,
                  // resume: unanswered audio (≤ 30 s), answers received, clock offset, seq
                  replay: [], answered: 0, offset: 0n, finalEnd: {}, seq: 0, update: null,
                  resumes: 0 };
  const REPLAY_FRAMES = 1500, RESUME_CODES = [1001, 1006, 1012, 1013];
  window.streamkit = state;

  function header(kind, format, channels, rate, seq, captureNs, payloadBytes) {
    const buf = new ArrayBuffer(24 + payloadBytes);
    const v = new DataView(buf);
    v.setUint8(0, 0x53); v.setUint8(1, 0x4b);           // "SK"
    v.setUint8(2, 1); v.setUint8(3, kind); v.setUint8(4, format); v.setUint8(5, channels);
    v.setUint16(6, 0, true); v.setUint32(8, rate, true); v.setUint32(12, seq >>> 0, true);
    v.setBigInt64(16, captureNs, true);
    return buf;
  }
  const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

  function setStatus(text) { $("status").textContent = text; }

  function show(ev) {
    state.events.push(ev.type);
    if (window.streamkitView) window.streamkitView.event(ev); // conversation.js: the turn view
    switch (ev.type) {
      case "session.created":
        if (state.sessionId === ev.session_id) state.resumes++;
        state.sessionId = ev.session_id; state.offset = BigInt(ev.server_time_ns) - nowNs();
        setStatus(`session ${ev.session_id} (${ev.protocol})`); break;
      case "transcript.partial":
        $("partial").textContent = ev.text; break;
      case "transcript.final":
        state.finalEnd[ev.utterance_id] = Math.max(state.finalEnd[ev.utterance_id] || 0, ev.end);
        state.finals.push(ev.text);
        $("final").textContent = state.finals.join(" ").trim();
        $("partial").textContent = ""; break;
      case "response.delta": {
        let el = document.getElementById("r-" + ev.response_id);
        if (!el) { el = document.createElement("div"); el.className = "answer"; el.id = "r-" + ev.response_id; $("answers").appendChild(el); }
        el.textContent += ev.text; state.answers[ev.response_id] = el.textContent; break;
      }
      case "response.done": {
        let el = document.getElementById("r-" + ev.response_id);
        if (!el) { el = document.createElement("div"); el.className = "answer"; el.id = "r-" + ev.response_id; $("answers").appendChild(el); }
        el.textContent = ev.text; if (ev.cancelled) el.classList.add("cancelled");
        state.answered++;
        const end = state.finalEnd[ev.utterance_id];
        if (!ev.cancelled && end) { // answered: its audio is never re-sent
          const until = BigInt(Math.round(end)) - state.offset + 300000000n;
          state.replay = state.replay.filter((f) => f.capture + BigInt(f.pcm.length) * NS_PER_SAMPLE > until);
        }
        state.answers[ev.response_id] = ev.text; break;
      }
      case "vision.observation":
        $("vision").textContent = `${ev.width}x${ev.height} ${ev.summary || ""}\n` +
          ev.detections.map((d) => `${d.label} ${d.score.toFixed(2)} ${d.text || ""}`).join("\n"); break;
      case "metrics": {
        const t = ev.transport;
        const lines = Object.keys(t).sort().map((k) => `${k} ${t[k]}`);
        const h = ev.snapshot.histograms || {};
        for (const k of Object.keys(h).filter((k) => k.startsWith("e2e.")).slice(0, 8))
          lines.push(`${k} p50 ${(h[k].p50_ns / 1e6).toFixed(0)} ms`);
        $("metrics").textContent = lines.join("\n"); break;
      }
      case "error": {
        state.errors.push(ev.code);
        const el = document.createElement("div"); el.textContent = `${ev.code}: ${ev.message}`;
        $("errors").appendChild(el); break;
      }
    }
  }

  async function startAudio(stream, ws) {
    const ctx = new AudioContext();
    if (ctx.state === "suspended") ctx.resume().catch(() => {}); // needs a user gesture
    const src = ctx.createMediaStreamSource(stream);
    let samples = 0n, t0 = null;
    const send = (pcm) => {
      if (t0 === null) t0 = nowNs() - BigInt(pcm.length) * NS_PER_SAMPLE;
      const capture = t0 + samples * NS_PER_SAMPLE;
      samples += BigInt(pcm.length);
      state.replay.push({ capture, pcm });
      if (state.replay.length > REPLAY_FRAMES) state.replay.shift();
      if (!state.ws || state.ws.readyState !== WebSocket.OPEN || state.ws.replaying) return;
      state.ws.send(audioFrame(capture, pcm)); state.audioFrames++;
    };
    if (ctx.audioWorklet) {
      await ctx.audioWorklet.addModule("pcm-worklet.js");
      const node = new AudioWorkletNode(ctx, "pcm-downsampler");
      node.port.onmessage = (e) => send(new Int16Array(e.data));
      src.connect(node);
    } else { // insecure origins have no AudioWorklet: ScriptProcessor fallback
      const node = ctx.createScriptProcessor(4096, 1, 1);
      const ratio = ctx.sampleRate / 16000; let pos = 0, acc = 0, n = 0, out = [];
      node.onaudioprocess = (e) => {
        for (const x of e.inputBuffer.getChannelData(0)) {
          acc += x; n++; pos++;
          if (pos >= ratio) { pos -= ratio; const v = Math.max(-1, Math.min(1, acc / n)); acc = 0; n = 0;
            out.push(v < 0 ? v * 32768 : v * 32767);
            if (out.length === 320) { send(Int16Array.from(out)); out = []; } }
        }
      };
      src.connect(node); node.connect(ctx.destination);
    }
    return ctx;
  }

  function audioFrame(capture, pcm) {
    const buf = header(1, 1, 1, 16000, state.seq++, capture, pcm.byteLength);
    new Int16Array(buf, 24).set(pcm);
    return buf;
  }

  function startVideo(stream, ws) {
    const video = $("preview"); video.hidden = false; video.srcObject = stream;
    const canvas = document.createElement("canvas"); canvas.width = 320; canvas.height = 240;
    const g = canvas.getContext("2d"); let seq = 0;
    return setInterval(() => {
      if (state.ws.readyState !== WebSocket.OPEN || video.readyState < 2) return;
      const capture = nowNs();
      g.drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(async (blob) => {
        if (!blob || state.ws.readyState !== WebSocket.OPEN) return;
        const jpeg = new Uint8Array(await blob.arrayBuffer());
        const buf = header(2, 2, 0, 0, seq++, capture, jpeg.byteLength);
        new Uint8Array(buf, 24).set(jpeg); state.ws.send(buf); state.videoFrames++;
      }, "image/jpeg", 0.7);
    }, 500);
  }

  async function start() {
    $("start").disabled = true;
    const camera = $("camera").checked || params.get("camera") === "1";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const token = params.get("token");
    const ws = new WebSocket(`${scheme}://${location.host}/ws` + (token ? `?token=${encodeURIComponent(token)}` : ""));
    ws.binaryType = "arraybuffer"; state.ws = ws;
    let ctx = null, timer = null, stream = null;
    const speech = window.streamkitSpeech; // speech.js: plays response.audio frames
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") { if (speech) speech.frame(e.data); return; }
      try { const ev = JSON.parse(e.data); show(ev); if (speech) speech.event(ev); } catch (err) { console.error(err); }
    };
    ws.onclose = (e) => {
      if (state.running && RESUME_CODES.includes(e.code)) { resume(scheme, token, 300); return; }
      setStatus(`closed (${e.code}${e.reason ? " " + e.reason : ""})`); stop();
    };
    const stop = () => {
      state.running = false;
      if (timer) clearInterval(timer);
      if (ctx) ctx.close();
      if (stream) stream.getTracks().forEach((t) => t.stop());
      if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.close(1000);
      $("start").disabled = false; for (const id of ["stop", "commit", "cancel"]) $(id).disabled = true;
    };
    $("stop").onclick = stop;
    $("commit").onclick = () => state.ws.send(JSON.stringify({ type: "input.commit" }));
    $("cancel").onclick = () => state.ws.send(JSON.stringify({ type: "response.cancel" }));
    await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = bad; });
    const update = { type: "session.update", video: camera, output_audio: params.get("speech") !== "0" };
    if (params.get("pipeline")) update.pipeline = params.get("pipeline");
    ws.send(JSON.stringify(update)); state.update = update;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
        video: camera ? { width: 640, height: 480 } : false,
      });
    } catch (err) { setStatus(`no media: ${err}`); ws.close(1000); return; }
    ctx = await startAudio(stream, ws);
    if (camera) timer = startVideo(stream, ws);
    state.running = true;
    for (const id of ["stop", "commit", "cancel"]) $(id).disabled = false;
    setStatus(`streaming (${ctx.sampleRate} Hz → 16 kHz)` + (camera ? " + camera" : ""));
  }

  // Reconnect (through the balancer: any worker) and resume the session by id; the audio not
  // yet answered is re-sent before live audio goes on.
  function resume(scheme, token, delayMs, tries = 0) {
    setStatus(`reconnecting (session ${state.sessionId})…`);
    setTimeout(() => {
      const q = new URLSearchParams({ resume: state.sessionId, answered: String(state.answered) });
      if (token) q.set("token", token);
      const ws = new WebSocket(`${scheme}://${location.host}/ws?${q}`);
      ws.binaryType = "arraybuffer"; ws.replaying = true;
      const old = state.ws; state.ws = ws;
      ws.onmessage = old.onmessage;
      ws.onopen = () => {
        state.seq = 0;
        if (state.update) ws.send(JSON.stringify(state.update));
        for (const f of state.replay) ws.send(audioFrame(f.capture, f.pcm));
        ws.replaying = false;
      };
      ws.onclose = (e) => {
        if (!state.running) return;
        if (ws.replaying || RESUME_CODES.includes(e.code)) {
          if (tries < 30) resume(scheme, token, Math.min(2000, 200 * 2 ** tries), tries + 1);
          else setStatus(`closed (${e.code}): could not resume`);
          return;
        }
        old.onclose(e);
      };
    }, delayMs);
  }

  $("start").onclick = () => start().catch((err) => setStatus(`error: ${err}`));
  if (params.get("autostart") === "1") start().catch((err) => setStatus(`error: ${err}`));
})();
