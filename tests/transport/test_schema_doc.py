"""The protocol document, the schema file and the code agree (field by field)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streamkit.transport import protocol
from streamkit.transport.codecs.v1 import decode_text
from streamkit.transport.protocol import CLOSE_CODES, ERROR_CODES
from streamkit.transport.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
SCHEMA = ROOT / "streamkit" / "transport" / "schema.json"


def _strip(node: Any) -> Any:
    """Drop human text (descriptions) so wording edits in events.py do not break the check."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _doc_sections() -> dict[str, list[list[str]]]:
    """``type`` → rows of the first table under its ``### `type` `` heading."""
    sections: dict[str, list[list[str]]] = {}
    current: str | None = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^#{2,3} `([a-z_.]+)`", line)
        if heading:
            current = heading.group(1)
            sections[current] = []
            continue
        if line.startswith("#"):
            current = None
        elif current is not None and line.startswith("| `"):
            sections[current].append([c.strip() for c in line.strip("|").split("|")])
    return sections


def _messages(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for side in ("client", "server"):
        for kind, ref in schema[side]["discriminator"]["mapping"].items():
            out[kind] = schema["$defs"][ref.rsplit("/", 1)[1]]
    return out


def test_schema_file_is_what_the_code_validates_with() -> None:
    on_disk = json.loads(SCHEMA.read_text())
    assert _strip(on_disk) == _strip(json.loads(json.dumps(json_schema()))), (
        "schema.json is stale: python -m streamkit.transport.schema > "
        "streamkit/transport/schema.json"
    )


def test_doc_documents_every_message_and_field_of_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    sections = _doc_sections()
    messages = _messages(schema)
    binary = {"audio.append", "video.frame", "response.audio"}
    assert set(messages) | binary == set(protocol.CLIENT_MESSAGES) | set(protocol.SERVER_EVENTS)
    for kind, definition in messages.items():
        assert kind in sections, f"docs/protocol.md has no section for `{kind}`"
        props = {k for k in definition["properties"] if k != "type"}
        rows = {r[0].strip("`"): r for r in sections[kind]}
        assert set(rows) == props, f"`{kind}`: doc fields {sorted(rows)} != schema {sorted(props)}"
        required = set(definition.get("required", [])) - {"type"}
        for name, row in rows.items():
            assert (row[2] == "yes") == (name in required), f"`{kind}.{name}` required-ness"
    for kind in binary:
        assert kind in sections


def test_doc_binary_header_error_and_close_codes_match_the_code() -> None:
    text = DOC.read_text()
    header_rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.M)
    assert [name for _, name in header_rows] == json_schema()["binary"]["fields"]
    offsets = [int(o) for o, _ in header_rows]
    assert offsets[-1] + 8 == protocol.HEADER.size == 24
    doc_errors = set(re.findall(r"^\| `([a-z_]+)` \| (?!string)", text, re.M)) & set(
        re.findall(r"^\| `([a-z_]+)` \|", text.split("## Error codes")[1], re.M)
    )
    assert doc_errors == set(ERROR_CODES)
    close_section = text.split("## Close codes")[1].split("##")[0]
    assert {int(c) for c in re.findall(r"^\| (\d{4}) \|", close_section, re.M)} == set(CLOSE_CODES)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "session.update", "pipeline": "echo", "partials": False},
        {"type": "input.commit"},
        {"type": "response.cancel", "response_id": None},
    ],
)
def test_documented_examples_decode(message: dict[str, Any]) -> None:
    decoded = decode_text(msgspec.json.encode(message))
    assert not isinstance(decoded, protocol.ProtocolError), decoded
