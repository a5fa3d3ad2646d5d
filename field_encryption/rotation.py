"""Rotation: rewrap (new wrapping of the data keys) and rekey (new data keys).

``rewrap`` changes only the record header's wrapped keys (``_fe.w``) through the
destination keyring's ``rewrap`` (KMS ReEncrypt for KMS keys), so field ciphertexts,
the data key id and the record MAC stay byte-for-byte the same. ``rekey`` decrypts the
record and encrypts the same fields again under a fresh data key.
"""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Any

from field_encryption import envelope, paths
from field_encryption.errors import FormatError
from field_encryption.keyrings.base import EncryptedDataKey, Keyring
from field_encryption.paths import FieldSpec
from field_encryption.selection import MISSING, make_target, walk

if TYPE_CHECKING:
    from collections.abc import Mapping

    from field_encryption.client import FieldEncryption


def rewrap_record(
    fe: FieldEncryption,
    data: Mapping[str, Any],
    destination: Keyring,
    memo: dict[str, list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """See :meth:`FieldEncryption.rewrap`."""
    header = fe._header(dict(data))
    key_text = header.get("k")
    new_edks = memo.get(key_text) if memo is not None and type(key_text) is str else None
    if new_edks is None:
        wrapped = header.get("w")
        if type(wrapped) is not list or not wrapped:
            raise FormatError("record header: 'w' (wrapped data keys) is missing or empty")
        edks = [EncryptedDataKey.from_json(item) for item in wrapped]
        rewrapped = destination.rewrap(edks, fe._context, fe.keyring)
        new_edks = [e.to_json() for e in rewrapped]
        if memo is not None and type(key_text) is str:
            memo[key_text] = new_edks
    out = dict(data)
    out[fe.header_field] = {**header, "w": list(new_edks)}
    return out


def rekey_record(
    fe: FieldEncryption,
    data: Mapping[str, Any],
    destination: FieldEncryption | None = None,
    record_id: str | int | None = None,
) -> dict[str, Any]:
    """See :meth:`FieldEncryption.rekey`."""
    target_fe = destination or fe
    header = fe._header(dict(data))
    listed = header.get("f")
    if type(listed) is not list:
        raise FormatError("record header: 'f' must be a list")
    old_key = header.get("k")
    algorithms: dict[str, int] = {}
    for canonical in listed:
        steps = fe._concrete_path(canonical)[0]
        value = walk(data, steps)
        if value is not MISSING:
            raw = (
                value
                if type(value) is bytes
                else (envelope.from_string(value) if type(value) is str else b"")
            )
            if len(raw) > 1:
                algorithms[canonical] = raw[1]
    scopes = header.get("s") or {}
    plain = fe.decrypt_fields(data, record_id=record_id)
    carried = data.get(fe.index_field)
    if type(carried) is not dict:
        carried = None
    targets = []
    for canonical in listed:
        steps = fe._concrete_path(canonical)[0]
        deterministic = algorithms.get(canonical) == envelope.ALG_AES_SIV_512
        scope = scopes.get(canonical) if deterministic else None
        spec = FieldSpec(paths.display(steps), deterministic=deterministic, join_scope=scope)
        targets.append((make_target(steps, spec), paths.get(plain, steps)))
    avoid = None
    if type(old_key) is str:
        try:
            avoid = binascii.a2b_base64(old_key, strict_mode=True)
        except (binascii.Error, ValueError):
            avoid = None
    rid = None if "r" in header else target_fe._record_id(plain, record_id)
    return target_fe._encrypt_targets(plain, targets, rid, carried, avoid)
