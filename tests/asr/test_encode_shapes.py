"""The encoder sees a bounded set of input lengths (issue 18: native memory that crept).

CTranslate2's oneDNN convolutions cache one primitive per input shape (up to 1,024, ~1.3 MB
each with tiny.en). Free-running window lengths made the server's glibc in-use bytes grow
with every new length; :func:`encode_frames` rounds lengths up to whole seconds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from streamkit.asr.whisper import DecodeOptions, ModelNotFound, WhisperModelShared, encode_frames
from streamkit.commands.heap import heap_stats, trim


def test_encode_frames_covers_the_window_and_takes_few_values() -> None:
    opts = DecodeOptions()
    seen: set[int] = set()
    for centis in range(0, 4000):  # every 10 ms window length from 0 to 40 s
        duration = centis / 100
        frames = encode_frames(duration, opts)
        seen.add(frames)
        wanted = min(3000, max(600, round((duration + opts.pad_s) * 100)))
        assert wanted <= frames < wanted + 100 or frames == 3000
    assert seen == set(range(600, 3001, 100))  # 25 shapes, whatever the windows


def test_encode_frames_follows_its_options() -> None:
    assert encode_frames(0.5, DecodeOptions()) == 600
    assert encode_frames(3.01, DecodeOptions()) == 700
    assert encode_frames(3.0, DecodeOptions()) == 600
    fine = DecodeOptions(encode_step_s=0.02, min_encode_s=2.0)
    assert encode_frames(0.5, fine) == 350  # the old behaviour: any even length
    assert encode_frames(0.511, fine) == 352
    assert encode_frames(60.0, fine) == 3000


@pytest.mark.slow
def test_native_heap_stays_flat_over_many_window_lengths() -> None:
    """40 windows of 40 different lengths: glibc's in-use bytes grow by a few shapes only."""
    if heap_stats() is None:
        pytest.skip("glibc's mallinfo2 is not available")
    try:
        model = WhisperModelShared()
    except ModelNotFound as error:
        pytest.skip(str(error))
    rng = np.random.default_rng(0)

    def noise(n: int) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(n) * 0.01).astype(np.float32)

    for seconds in (3.5, 4.5, 5.5):  # warm-up: the shapes the loop below uses
        model.decode_window(noise(int(seconds * 16000)))
    trim()
    before = heap_stats()
    assert before is not None
    for i in range(40):  # 3.50 … 5.06 s: 40 lengths, 2 frames apart, in 3 one-second shapes
        model.decode_window(noise(56_000 + i * 640))
    trim()
    after = heap_stats()
    assert after is not None
    grown_mb = (after.in_use - before.in_use) / 2**20
    assert grown_mb < 8.0, f"in-use native heap grew {grown_mb:.1f} MB over 40 lengths"
