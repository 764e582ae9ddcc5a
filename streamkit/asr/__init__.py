"""Streaming speech recognition: VAD, faster-whisper windows and LocalAgreement commits.

:mod:`.core` is the pure core (jobs out, results in), :mod:`.stage` the thin stage on a
``ModelSlot``, :mod:`.config` the settings, :mod:`.whisper` the faster-whisper engine,
:mod:`.vad` Silero VAD, :mod:`.hypothesis` the commit policy, :mod:`.textnorm` WER scoring.
"""
