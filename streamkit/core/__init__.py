"""The framework core, the folder to read first: one integer-ns clock, packets, bounded edges,
stages, the pipeline, metrics and the model slot.

Nothing here imports a capability package (asr, vision, lm, tts, turn, transport, …); they
import the core and meet each other only through :mod:`streamkit.core.events` payloads.
"""
