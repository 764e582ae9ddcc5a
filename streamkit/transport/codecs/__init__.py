"""Session codecs: one per wire protocol, sans-I/O (no socket, no clock).

- :mod:`~streamkit.transport.codecs.v1`: ``/ws``, streamkit's own protocol: its frame
  decoders and encoders and the session codec (the messages themselves are
  :mod:`streamkit.transport.protocol`); the Realtime codec reuses its binary media frames;
- :mod:`~streamkit.transport.codecs.realtime`: ``/v1/realtime``, the OpenAI Realtime API
  (``docs/realtime.md``), with its conversation state in ``realtime_state`` (user items),
  ``realtime_responses`` (the response lifecycle) and its pure shapes and checks in
  ``realtime_shapes`` / ``realtime_parse``.

Each has the shape :class:`streamkit.transport.session.Codec` describes: ``created``,
``decode`` (frame → commands), ``result`` (a command's outcome → events), ``encode``
(pipeline event → events), ``refuse`` (one ``error``).
"""

__all__: list[str] = []
