"""WebSocket transport: the protocol v1 codec, the server, the Python client, the browser client.

- :mod:`~streamkit.transport.protocol`: pure codec; :mod:`~streamkit.transport.schema`: its
  JSON Schema (``schema.json``);
- :mod:`~streamkit.transport.server` / :mod:`~streamkit.transport.session`: ``websockets``
  server, one pipeline and task group per connection, bounded outbox per client;
- :mod:`~streamkit.transport.ws_source`: the source stage fed by a client's media;
- :mod:`~streamkit.transport.client`: Python client library;
- ``static/``: the browser client served by the same port.
"""

from __future__ import annotations

from streamkit.transport.limits import Limits
from streamkit.transport.protocol import PROTOCOL, SessionConfig
from streamkit.transport.server import Server, ServerOptions
from streamkit.transport.session import PipelineFactory, Session, SessionControls
from streamkit.transport.ws_source import WsSource

__all__ = [
    "PROTOCOL",
    "Limits",
    "PipelineFactory",
    "Server",
    "ServerOptions",
    "Session",
    "SessionConfig",
    "SessionControls",
    "WsSource",
]
