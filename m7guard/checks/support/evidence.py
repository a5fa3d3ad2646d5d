"""Evidence attached to a result: what was read, trimmed, with anything secret-looking removed."""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 400
MAX_ITEMS = 50
REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|private[_-]?key|credential|api[_-]?key|keytab)",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"(-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|\b[A-Za-z0-9+/]{40,}={0,2})"
)


def trim(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def sanitize(value: Any, name: str = "") -> Any:
    """A JSON-safe copy of value: long text trimmed, long lists cut, secrets redacted."""
    if name and _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): sanitize(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [sanitize(v, name) for v in list(value)[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"... [{len(value) - MAX_ITEMS} more]")
        return items
    if isinstance(value, str):
        return trim(_SECRET_TEXT.sub(REDACTED, value))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return trim(str(value))
