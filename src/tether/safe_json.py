"""JSON from untrusted peers: bounded size and depth, and one error type for every way
a document can be bad (the stdlib raises four different ones)."""

from __future__ import annotations

import json
from typing import Any

# Parameters are flat and signaling messages two levels deep; 32 leaves room.
MAX_DEPTH = 32


class BadJson(ValueError):
    pass


def depth(value: Any) -> int:
    """Nesting depth of a parsed document, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def loads(raw: str | bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` or raise BadJson with a reason a client can act on."""
    if len(raw) > max_bytes:
        raise BadJson(f"document is larger than {max_bytes} bytes")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson("not UTF-8 text") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadJson(f"not valid JSON: {exc.msg} (at {exc.pos})") from None
    except RecursionError:
        raise BadJson(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # e.g. an integer past the digit limit
        raise BadJson(f"not acceptable JSON: {str(exc)[:120]}") from None
    if depth(value) > max_depth:
        raise BadJson(f"nested deeper than {max_depth} levels")
    return value
