"""Canonical JSON, as Go's ``docker/go/canonical/json`` writes it (§3.1).

Keys sorted by byte value, no whitespace, only ``"`` and ``\\`` escaped, integers only.
"""

import json
from typing import Any


def canonical_json(document: Any) -> bytes:
    """The bytes that get signed. Floats are refused: Go would fail on them too (§3.1)."""
    _refuse_floats(document)
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise ValueError(f"canonical JSON has no non-integer numbers: {value!r}")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_floats(item)
