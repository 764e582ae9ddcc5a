// The conversation view of the browser page: one card per turn — what was heard, the answer,
// and its latency from the end of speech (→ final transcript, → first answer token) — the
// session's p50/p90 of both as the headline, and a readable per-stage panel one level down.
// app.js calls streamkitView.event(ev) for every server event (one line in its show()).
// Times: the server's shared clock maps to this page's with the offset measured at
// session.created (exact to within the one-way delay: the clocks coincide on one host).
"use strict";
window.streamkitView = (() => {
  const $ = (id) => document.getElementById(id);
  const nowNs = () => (performance.timeOrigin + performance.now()) * 1e6;
  const turns = new Map(); // utterance id → turn, in the order utterances started
  const api = { turns, offset: 0, headline: null };

  function turn(uid) {
    let t = turns.get(uid);
    if (!t) {
      t = { uid, heard: "", partial: "", answer: "", cancelled: false, done: false, eos: null,
            finalAt: null, tokenAt: null, el: null };
      turns.set(uid, t);
      t.el = document.createElement("div"); t.el.className = "turn"; t.el.dataset.uid = uid;
      t.el.innerHTML = '<div class="you"><span class="who">you</span> <span class="heard"></span>' +
        ' <span class="partial"></span></div><div class="assistant" hidden><span class="who">' +
        'assistant</span> <span class="answer"></span></div><div class="latency"></div>';
      $("turns").appendChild(t.el);
      $("empty").hidden = true;
    }
    return t;
  }

  const ms = (ns) => (ns === null ? "–" : ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : `${Math.round(ns / 1e6)} ms`);
  const since = (t, at) => (t.eos === null || at === null ? null : at - t.eos);

  function draw(t) {
    const q = (sel) => t.el.querySelector(sel);
    q(".heard").textContent = t.heard; q(".partial").textContent = t.partial;
    const answer = q(".assistant");
    answer.hidden = !(t.answer || t.done);
    q(".answer").textContent = t.answer + (t.cancelled ? " (cancelled)" : "");
    t.el.classList.toggle("cancelled", t.cancelled);
    const parts = [];
    if (t.finalAt !== null) parts.push(`end of speech → final transcript ${ms(since(t, t.finalAt))}`);
    if (t.tokenAt !== null) parts.push(`→ first answer token ${ms(since(t, t.tokenAt))}`);
    q(".latency").textContent = parts.join(" · ");
    t.el.scrollIntoView({ block: "nearest" });
  }

  function pct(values, q) {
    const v = [...values].sort((a, b) => a - b);
    if (!v.length) return null;
    const r = (v.length - 1) * q, lo = Math.floor(r), hi = Math.ceil(r);
    return v[lo] + (v[hi] - v[lo]) * (r - lo);
  }

  function headline() {
    const rows = [["first answer token", (t) => since(t, t.tokenAt)],
                  ["final transcript", (t) => since(t, t.finalAt)]];
    const out = {};
    $("headline").textContent = rows.map(([name, f]) => {
      const values = [...turns.values()].map(f).filter((x) => x !== null);
      out[name] = { n: values.length, p50: pct(values, 0.5), p90: pct(values, 0.9) };
      return values.length
        ? `→ ${name}: p50 ${ms(out[name].p50)}, p90 ${ms(out[name].p90)} (n=${values.length})`
        : `→ ${name}: –`;
    }).join("   ·   ");
    api.headline = out;
  }

  const LABELS = { "e2e.": "capture → ", "stage.": "stage ", "lm.": "LM ", "model.": "model " };
  function stages(ev) {
    const h = ev.snapshot.histograms || {};
    const rows = Object.keys(h).filter((k) => h[k].count && Object.keys(LABELS).some((p) => k.startsWith(p)))
      .sort((a, b) => h[b].p50_ns - h[a].p50_ns).slice(0, 14);
    const body = rows.map((k) => {
      const p = Object.keys(LABELS).find((x) => k.startsWith(x));
      return `<tr><td>${LABELS[p]}${k.slice(p.length).replaceAll(".", " ")}</td><td>${h[k].count}</td>` +
        `<td>${ms(h[k].p50_ns)}</td><td>${ms(h[k].p95_ns)}</td></tr>`;
    }).join("");
    const t = ev.transport || {};
    const sent = ((t["ws.audio.samples"] || 0) / 16000).toFixed(1);
    $("stages").innerHTML = `<p>audio received by the server ${sent} s · events sent ` +
      `${t["ws.outbox.sent"] || 0} · dropped ${t["ws.outbox.dropped"] || 0} · video frames ` +
      `${t["ws.video.frames"] || 0}</p><table><tr><th>stage</th><th>n</th><th>p50</th>` +
      `<th>p95</th></tr>${body || '<tr><td colspan="4">no samples yet</td></tr>'}</table>`;
  }

  api.event = (ev) => {
    const at = nowNs();
    switch (ev.type) {
      case "session.created": api.offset = ev.server_time_ns - at; $("intro").hidden = true; break;
      case "speech.stopped": turn(ev.utterance_id).eos = ev.t - api.offset; break;
      case "transcript.partial": { const t = turn(ev.utterance_id); t.partial = ev.text; draw(t); break; }
      case "transcript.final": {
        const t = turn(ev.utterance_id);
        if (ev.text.trim()) t.heard = `${t.heard} ${ev.text.trim()}`.trim();
        t.partial = "";
        if (ev.is_last !== false) { t.finalAt = at; if (t.eos === null) t.eos = ev.end - api.offset; }
        draw(t); headline(); break;
      }
      case "response.delta": {
        const t = turn(ev.utterance_id);
        if (t.tokenAt === null) t.tokenAt = at;
        t.answer += ev.text; draw(t); headline(); break;
      }
      case "response.done": {
        const t = turn(ev.utterance_id);
        t.answer = ev.text; t.cancelled = ev.cancelled; t.done = true; draw(t); break;
      }
      case "vision.observation": $("observation").textContent = ev.summary ||
        ev.detections.map((d) => d.label).join(", ") || `motion ${ev.motion.toFixed(2)}`; break;
      case "metrics": stages(ev); break;
    }
  };
  return api;
})();
