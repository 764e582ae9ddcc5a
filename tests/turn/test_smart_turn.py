"""Smart Turn v3.2 on real clips: our features and probabilities equal the reference
implementation's (Pipecat 1.14.0 + transformers' WhisperFeatureExtractor, numbers stored in
smart_turn_reference.json by scripts/smart_turn_reference.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from streamkit.turn.backend import TurnModel, TurnUnavailable
from streamkit.turn.smart_turn import (
    N_SAMPLES,
    SmartTurnModel,
    log_mel_features,
    model_input,
    smart_turn_path,
)

HERE = Path(__file__).parent
CLIPS = HERE.parent / "data" / "speech" / "utterances"
REFERENCE: dict[str, Any] = json.loads((HERE / "smart_turn_reference.json").read_text())["cases"]


def clip(case: dict[str, Any]) -> npt.NDArray[np.float32]:
    x, rate = sf.read(CLIPS / case["file"], dtype="float32", always_2d=True)
    audio = x.mean(axis=1)
    if rate != 16_000:
        audio = soxr.resample(audio, rate, 16_000, quality="HQ").astype(np.float32)
    if case["cut_s"] is not None:
        audio = audio[: int(case["cut_s"] * 16_000)]
    silence = np.zeros(int(case["silence_s"] * 16_000), np.float32)
    return np.concatenate([audio, silence]).astype(np.float32)


def test_model_input_keeps_the_end_and_pads_at_the_start() -> None:
    short = np.arange(1, 11, dtype=np.float32)
    window = model_input(short)
    assert len(window) == N_SAMPLES
    assert not window[:-10].any()
    assert list(window[-10:]) == list(short)
    long = np.arange(N_SAMPLES + 5, dtype=np.float32)
    assert list(model_input(long)[:3]) == [5.0, 6.0, 7.0]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_features_match_the_reference_extractor(name: str) -> None:
    case = REFERENCE[name]
    features = log_mel_features(clip(case))
    assert features.shape == (80, 800)
    assert features.dtype == np.float32
    sample = np.array(case["features_sample"], dtype=np.float32)
    np.testing.assert_allclose(features[::10, ::50], sample, atol=2e-4)
    assert features.mean() == pytest.approx(case["features_mean"], abs=1e-4)
    assert features.std() == pytest.approx(case["features_std"], abs=1e-4)


@pytest.fixture(scope="module")
def model() -> SmartTurnModel:
    try:
        return SmartTurnModel()
    except TurnUnavailable as error:  # pragma: no cover - `make test` fetches the model
        pytest.fail(str(error))


@pytest.mark.slow
def test_probabilities_match_the_reference_on_real_clips(model: SmartTurnModel) -> None:
    assert isinstance(model, TurnModel)
    for name, case in sorted(REFERENCE.items()):
        p = model.predict(clip(case))
        assert p == pytest.approx(case["probability"], abs=2e-3), name
    # the model separates a finished sentence from one cut in the middle on these clips
    assert REFERENCE["goforward_full"]["probability"] > 0.9
    assert REFERENCE["jfk_cut_5.2"]["probability"] < 0.5


def test_missing_model_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(TurnUnavailable, match="fetch_smart_turn"):
        smart_turn_path(tmp_path / "nothing.onnx")
