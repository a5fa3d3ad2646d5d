"""Rotation: rewrap (new wrapping of the data keys) and rekey (new data keys).

``rewrap`` authenticates each record (its MAC, with the data key unwrapped by the
source keyring), then changes only the record header's wrapped keys (``_fe.w``) through
the destination keyring's ``rewrap`` (KMS ReEncrypt for KMS keys) and the record MAC
that covers them; field ciphertexts and the data key id stay byte-for-byte the same.
``rekey`` decrypts the record and encrypts the same fields again under a fresh data key.
"""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Any

from field_encryption import envelope, paths
from field_encryption.cache import canonical_json
from field_encryption.client import HEADER_VERSION
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
    memo: dict[tuple[str, bytes], list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """See :meth:`FieldEncryption.rewrap`."""
    record = dict(data)
    opened = fe._open(record)
    if opened.version != HEADER_VERSION:
        raise FormatError(
            "record is format 1: rewrap keeps records authenticated and cannot vouch for an "
            "unauthenticated header; re-encrypt legacy records with rekey (--allow-legacy-v1)"
        )
    fe._verify_random_fields(opened)
    header = opened.header
    # the memo is keyed on the whole (data key id, wrapped keys) pair, and consulted only
    # once this record's wrapped keys were verified: a record only ever gets the rewrap of
    # exactly the wrapped keys it carried
    memo_key = (header["k"], canonical_json(header["w"]))
    new_edks = memo.get(memo_key) if memo is not None else None
    if new_edks is None:
        edks = [EncryptedDataKey.from_json(item) for item in header["w"]]
        rewrapped = destination.rewrap(edks, fe._context, fe.keyring)
        new_edks = [e.to_json() for e in rewrapped]
        if memo is not None:
            memo[memo_key] = new_edks
    new_w = [dict(e) for e in new_edks]
    record[fe.header_field] = {
        **header,
        "w": new_w,
        "a": opened.materials.wrapped_tag(canonical_json(new_w)),
    }
    return record


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
