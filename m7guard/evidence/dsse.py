"""DSSE (Dead Simple Signing Envelope) v1: the pre-authentication encoding and the envelope.

PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths as ASCII
decimal byte counts (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md).
The signature is over PAE(payloadType, payload), never over the payload alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature signs."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json_line(self) -> bytes:
        """The envelope as one JSON line (the .intoto.jsonl form), keys sorted."""
        doc = {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse an envelope; ValueError naming the field that is wrong."""
        try:
            doc: Any = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a JSON DSSE envelope ({exc})") from exc
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        payload_type = doc.get("payloadType")
        if not isinstance(payload_type, str):
            raise ValueError("payloadType is missing or not a string")
        sigs = doc.get("signatures")
        if not isinstance(sigs, list) or not sigs:
            raise ValueError("signatures is missing or empty")
        signatures = []
        for i, s in enumerate(sigs):
            if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
                raise ValueError(f"signatures[{i}].sig is missing or not a string")
            keyid = s.get("keyid", "")
            if not isinstance(keyid, str):
                raise ValueError(f"signatures[{i}].keyid is not a string")
            signatures.append(Signature(keyid, _b64(s["sig"], f"signatures[{i}].sig")))
        if not isinstance(doc.get("payload"), str):
            raise ValueError("payload is missing or not a string")
        return cls(payload_type, _b64(doc["payload"], "payload"), tuple(signatures))


def _b64(text: str, field: str) -> bytes:
    """Standard or URL-safe base64 (DSSE allows either)."""
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{field} is not base64") from exc
