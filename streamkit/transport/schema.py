"""The machine-checkable JSON Schema of protocol v1, generated from the codec's structs.

``python -m streamkit.transport.schema > streamkit/transport/schema.json`` regenerates the
file; ``tests/transport/test_schema_doc.py`` checks the file, this function and
``docs/protocol.md`` agree.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streamkit.transport.protocol import (
    CLOSE_CODES,
    ERROR_CODES,
    KIND_AUDIO,
    KIND_OUTPUT_AUDIO,
    KIND_VIDEO,
    PROTOCOL,
    ClientMessage,
    ServerEvent,
)

__all__ = ["json_schema"]


def json_schema() -> dict[str, Any]:
    """The machine-checkable JSON Schema of protocol v1 (``transport/schema.json``)."""
    (client, server), defs = msgspec.json.schema_components(
        [ClientMessage, ServerEvent], ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "streamkit WebSocket protocol",
        "version": PROTOCOL,
        "client": client,
        "server": server,
        "binary": {
            "header": "little-endian <2sBBBBHIIq (24 bytes)",
            "fields": [
                "magic",
                "version",
                "kind",
                "format",
                "channels",
                "reserved",
                "sample_rate",
                "seq",
                "capture_ns",
            ],
            "kinds": {
                str(KIND_AUDIO): "audio.append",
                str(KIND_VIDEO): "video.frame",
                str(KIND_OUTPUT_AUDIO): "response.audio",
            },
        },
        "error_codes": sorted(ERROR_CODES),
        "close_codes": sorted(CLOSE_CODES),
        "$defs": defs,
    }


def main() -> None:  # pragma: no cover - regenerates schema.json
    """``python -m streamkit.transport.schema > streamkit/transport/schema.json``."""
    import json

    print(json.dumps(json_schema(), indent=2, sort_keys=True))


if __name__ == "__main__":  # pragma: no cover
    main()
