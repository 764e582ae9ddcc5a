"""Reference Smart Turn numbers from Pipecat's own implementation, for tests/turn.

Run in a throwaway venv, never the project's (Pipecat's pins conflict with ours):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install pipecat-ai==1.14.0 onnxruntime transformers soundfile
    /tmp/refvenv/bin/python scripts/smart_turn_reference.py OUT_DIR

It writes OUT_DIR/reference.json (probabilities from Pipecat's LocalSmartTurnAnalyzerV3 and
feature samples from transformers' WhisperFeatureExtractor); tests/turn/smart_turn_reference.json
holds that file's cases.
"""
import json, sys
import numpy as np, soundfile as sf, soxr
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.turn.smart_turn._whisper_features import compute_whisper_log_mel_features
from transformers import WhisperFeatureExtractor

ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/data/speech/utterances") + "/"
OUT = sys.argv[1] if len(sys.argv) > 1 else "."
CASES = [  # (name, file, cut seconds or None = whole clip, trailing silence s)
    ("goforward_full", "pocketsphinx_goforward/goforward.wav", None, 0.2),
    ("jfk_full", "jfk/jfk.wav", None, 0.2),
    ("jfk_cut_5.2", "jfk/jfk.wav", 5.2, 0.2),
    ("lj0002_full", "ljspeech/LJ001-0002.wav", None, 0.2),
    ("sense0870_cut_2.0", "librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0870.wav", 2.0, 0.2),
    ("arctic0010_full", "cmu_arctic/arctic_a0010_pyroomacoustics.wav", None, 0.2),
    ("leopard_cut_3.0", "picovoice/leopard_test_librispeech_1272-128104-0000.wav", 3.0, 0.2),
    ("stars_full", "deepspeech/new-home-in-the-stars-16k.wav", None, 0.2),
]

def load(path):
    x, sr = sf.read(ROOT + path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != 16000:
        x = soxr.resample(x, sr, 16000, quality="HQ").astype(np.float32)
    return x

analyzer = LocalSmartTurnAnalyzerV3(sample_rate=16000)
fe = WhisperFeatureExtractor(chunk_length=8)
out = {}
for name, f, cut, sil in CASES:
    x = load(f)
    if cut is not None:
        x = x[: int(cut * 16000)]
    x = np.concatenate([x, np.zeros(int(sil * 16000), np.float32)])
    p = analyzer._predict_endpoint(x)["probability"]
    n = 128000
    padded = x[-n:] if len(x) >= n else np.pad(x, (n - len(x), 0))
    pc = compute_whisper_log_mel_features(padded, do_normalize=True)
    hf = fe(padded, sampling_rate=16000, padding="max_length", max_length=n, truncation=True,
            do_normalize=True, return_tensors="np").input_features[0]
        print(name, f"p={p:.5f}", "pipecat-vs-hf maxdiff", float(np.abs(pc - hf).max()), hf.shape, file=sys.stderr)
    out[name] = {"file": f, "cut_s": cut, "silence_s": sil, "probability": round(float(p), 6),
                 "features_mean": round(float(hf.mean()), 6), "features_std": round(float(hf.std()), 6),
                 "features_sample": [[round(float(v), 5) for v in row] for row in hf[::10, ::50]]}
json.dump(out, open(f"{OUT}/reference.json", "w"), indent=1)
