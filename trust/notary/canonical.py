"""Canonical JSON, as Go's ``docker/go/canonical/json`` writes it
(docs/notary-protocol.md, "Canonical JSON and exact bytes").

Keys sorted by byte value, no whitespace, only ``"`` and ``\\`` escaped, integers only.
"""

import json
from typing import Any

_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def canonical_json(document: Any) -> bytes:
    """The bytes that get signed. Floats are refused: Go would fail on them too
    (docs/notary-protocol.md, "Canonical JSON and exact bytes")."""
    _refuse_floats(document)
    return _encode(document).encode("utf-8")


def _refuse_floats(document: Any) -> None:
    """One pass over the containers, without recursion (no stack limit, few calls)."""
    pending = [document]
    pop, extend = pending.pop, pending.extend
    while pending:
        value = pop()
        kind = type(value)
        if kind is str or kind is int or value is None or kind is bool:
            continue  # most values: checked first
        if kind is dict:
            extend(value.values())
        elif kind is list:
            extend(value)
        elif isinstance(value, float):
            raise ValueError(f"canonical JSON has no non-integer numbers: {value!r}")
        elif isinstance(value, dict):
            extend(value.values())
        elif isinstance(value, list | tuple):
            extend(value)
