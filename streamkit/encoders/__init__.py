"""Encoders: streaming ASR, VAD and the vision encoder."""
