"""Associated data: length-prefixed parts, so no two part lists share an encoding.

Each part is a 4-byte big-endian length followed by the bytes. A random-mode field
binds (version, algorithm, key id, namespace, record id, canonical path); a
deterministic field binds the same with an empty record id, or
(version, algorithm, key id, "join-scope", scope) when it has an explicit join scope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from field_encryption import envelope

JOIN_SCOPE_LABEL = b"join-scope"


def lp(part: bytes) -> bytes:
    """One length-prefixed part."""
    return len(part).to_bytes(4, "big") + part


def join(parts: Sequence[bytes]) -> bytes:
    """Length-prefix every part and concatenate."""
    return b"".join(lp(p) for p in parts)


def prefix(algorithm: int, key_id: bytes, namespace: str) -> bytes:
    """The parts shared by every field of one key and namespace."""
    return join(
        (bytes((envelope.VERSION,)), bytes((algorithm,)), key_id, namespace.encode("utf-8"))
    )


def record_part(record_id: bytes) -> bytes:
    """The record id part (already typed, see :func:`field_encryption.records.record_id_bytes`)."""
    return lp(record_id)


def path_part(canonical_path: str) -> bytes:
    return lp(canonical_path.encode("utf-8"))


def deterministic(key_id: bytes, namespace: str, canonical_path: str, scope: str | None) -> bytes:
    """Associated data of a deterministic (AES-SIV) field."""
    head = (bytes((envelope.VERSION,)), bytes((envelope.ALG_AES_SIV_512,)), key_id)
    if scope is not None:
        return join((*head, JOIN_SCOPE_LABEL, scope.encode("utf-8")))
    return join((*head, namespace.encode("utf-8"), b"", canonical_path.encode("utf-8")))


def canonical_path(steps: Sequence[str | int]) -> str:
    """Canonical text of a concrete path: a compact JSON array of keys and indexes."""
    return json.dumps(list(steps), ensure_ascii=False, separators=(",", ":"))
