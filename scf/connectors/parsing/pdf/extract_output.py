"""The PDF parser child's output: JSON lines to the parent, metadata as small plain JSON.

A sibling of `extract.py`, loaded by it in the child (standard library only).
"""

from __future__ import annotations

import json
import math
from typing import IO, Any

MAX_METADATA_ITEMS = 64
MAX_METADATA_CHARS = 1_000


class Output:
    """JSON lines to the parent; page lines share the `max_text_bytes` budget."""

    def __init__(self, stream: IO[bytes], budget: int) -> None:
        self.stream, self.budget, self.used, self.full = stream, budget, 0, False

    def emit(self, record: dict[str, Any]) -> None:
        self.stream.write(_line(record))
        self.stream.flush()

    def emit_page(self, record: dict[str, Any]) -> bool:
        """Write a page that fits; else cut its text (dropping tables) to fit, and say the budget is spent."""
        line = _line(record)
        if self.used + len(line) <= self.budget:
            self.stream.write(line)
            self.stream.flush()
            self.used += len(line)
            return True
        self.full = True
        room = self.budget - self.used
        text = record["text"]
        keep = len(text)
        cut = {**record, "tables": [], "text_truncated": True}
        while keep > 0:  # shrink in proportion to the overshoot: a few rounds at most
            keep = min(keep - 1, int(keep * room / max(len(line), 1)))
            line = _line({**cut, "text": text[:keep]})
            if len(line) <= room:
                self.stream.write(line)
                self.stream.flush()
                self.used += len(line)
                break
        return False


def _line(record: dict[str, Any]) -> bytes:
    # "replace": a lone surrogate (from a broken font map) becomes "?" instead of failing the page
    return json.dumps(record, ensure_ascii=False, allow_nan=False).encode("utf-8", "replace") + b"\n"


def plain(value: Any, depth: int = 0) -> Any:
    """A metadata value as small plain JSON (pdfminer hands out literals, bytes and nested objects)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, list | tuple) and depth < 3:
        return [plain(v, depth + 1) for v in value[:MAX_METADATA_ITEMS]]
    if isinstance(value, dict) and depth < 3:
        items = list(value.items())[:MAX_METADATA_ITEMS]
        return {str(k)[:100]: plain(v, depth + 1) for k, v in items}
    return str(value)[:MAX_METADATA_CHARS]
