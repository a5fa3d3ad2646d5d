"""FieldEncryption: encrypt and decrypt selected fields of records (envelope encryption).

One data key (from the keyring, cached) encrypts many fields with AES-256-GCM; the
record carries the wrapped data key once, in its header field (``_fe`` by default)::

    {"v": 2,                      # header version (format 2: authenticated)
     "k": "<base64 data key id>", # 16 bytes, names the data key in every field
     "w": [{"p": provider, "k": wrapping key id, "b": "<base64 wrapped key>"}, ...],
     "a": "<base64>",             # tag of w under the data key
     "f": ["[\"ssn\"]", ...],     # canonical paths of the encrypted fields
     "n": "<base64>",             # record nonce, fresh for every encryption of the record
     "r": "<base64>",             # only when the record has no id: random record id
     "s": {"<path>": "<scope>"},  # only for deterministic fields with a join scope
     "m": "<base64>"}             # only for a record without a random-mode field

Format 2 binds the header (record nonce, field list, join scopes, blind indexes and the
deterministic ciphertexts) into the associated data of every random-mode field, so no
field decrypts once any of them changed; ``a`` authenticates the wrapped keys and ``m``
the binding of a record with no random-mode field. The reader always checks all of it:
whether a record is authenticated is never the record's own choice. Format-1 records
(no authentication of the header) are read only with ``allow_legacy_v1=True``. The byte
layout is in docs/field-encryption.md.
"""

from __future__ import annotations

import binascii
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from cryptography.exceptions import InvalidTag

from field_encryption import aad, blind_index, envelope, paths, trailer, values
from field_encryption.cache import (
    CacheLimits,
    DataKeyCache,
    DataKeyMaterials,
    NoCache,
    UnwrappedKeyCache,
    canonical_json,
)
from field_encryption.compat import a2b_strict, zip_equal
from field_encryption.errors import (
    ConfigurationError,
    DecryptionError,
    FormatError,
    PathError,
    TamperError,
)
from field_encryption.keyrings import Keyring
from field_encryption.keyrings.base import EncryptedDataKey, key_id_for
from field_encryption.keyrings.spec import KeyringSpec
from field_encryption.paths import Concrete, FieldSpec
from field_encryption.selection import (
    MISSING,
    Plan,
    Target,
    compatible,
    make_target,
    walk,
)
from field_encryption.vault import KeyVault

log = logging.getLogger(__name__)

HEADER_VERSION = 2
LEGACY_HEADER_VERSION = 1
HEADER_KEYS = frozenset({"v", "k", "w", "a", "f", "n", "r", "s", "m"})
_MAC_LABEL = b"fe-record-mac-v1"
_GCM_HEAD = bytes((envelope.VERSION, envelope.ALG_AES_256_GCM))
_SIV_HEAD = bytes((envelope.VERSION, envelope.ALG_AES_SIV_512))
_LEN1 = tuple(bytes((n,)) for n in range(128))
_PREFIX = envelope.STRING_PREFIX
_PREFIX_LEN = len(_PREFIX)
_NONCE = envelope.NONCE_LEN
_b2a = binascii.b2a_base64
_a2b = a2b_strict
_parse = envelope.parse
_writable = paths.writable
_lp = aad.lp
_GCM_MIN_BODY = envelope.TAG_LEN + 1
_GCM_MIN = 31 + _GCM_MIN_BODY
_STRING_HEAD_LEN = _PREFIX_LEN + 24  # base64 of the 18-byte head

FieldList = Sequence["str | FieldSpec"]
_EMPTY: Mapping[str, Any] = {}
_EMPTY_LP = bytes(4)  # an empty length-prefixed part
_EMPTY_SID = bytes(12)  # S, I and D all empty
_N_LP = (12).to_bytes(4, "big")  # lp() of the 12-byte record nonce


class _Opened(NamedTuple):
    """A record whose header was parsed and checked as far as the header alone allows;
    ``prefix`` is the associated data of its random-mode fields, up to the path part."""

    header: dict[str, Any]
    version: int
    layout: tuple[tuple[Any, ...], ...]
    materials: DataKeyMaterials
    rid: bytes
    raws: list[bytes]
    scopes: Mapping[str, Any]
    prefix: bytes


class _Item(NamedTuple):
    path_part: bytes
    deterministic: bool


def context_for(namespace: str) -> dict[str, str]:
    """The encryption context (KMS) of a namespace's data keys."""
    return {"field-encryption": "v1", "namespace": namespace}


def record_id_bytes(value: Any, where: str = "record id") -> bytes:
    """Typed bytes of a caller-supplied record id: ``"i"`` + its text."""
    if isinstance(value, str) and value:
        return b"i" + value.encode("utf-8", "surrogatepass")
    if type(value) is int:
        return b"i" + str(value).encode("ascii")
    raise ConfigurationError(
        f"{where} must be a non-empty string or an integer, not {type(value).__name__}"
    )


class FieldEncryption:
    """Encrypt and decrypt selected fields of dict records.

    ``FieldEncryption(key_provider="aws_kms", key_id=arn)`` or
    ``FieldEncryption(key_provider="local", key_file=path)`` or ``keyring=...``.
    ``namespace`` names the table or collection: it is bound into every ciphertext and
    the KMS encryption context. ``record_id_field`` (top-level, default ``_id``) binds
    each field to its record; a record without it gets a random id in its header.
    """

    def __init__(
        self,
        key_provider: Literal["aws_kms", "local"] | None = None,
        key_id: str | None = None,
        *,
        keyring: Keyring | None = None,
        key_file: str | os.PathLike[str] | None = None,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        additional_key_ids: Sequence[str] = (),
        namespace: str = "default",
        record_id_field: str | None = "_id",
        cache: DataKeyCache | bool = True,
        cache_limits: CacheLimits | None = None,
        record_mac: bool | None = None,
        format_version: Literal[1, 2] = HEADER_VERSION,
        allow_legacy_v1: bool = False,
        vault: KeyVault | None = None,
        output: Literal["string", "bytes"] = "string",
        header_field: str = "_fe",
        index_field: str = "_fe_bidx",
    ) -> None:
        self.keyring = keyring or _build_keyring(
            key_provider, key_id, key_file, region, profile, endpoint_url, additional_key_ids
        )
        if not isinstance(namespace, str) or not namespace:
            raise ConfigurationError("namespace must be a non-empty string (the table name)")
        if output not in ("string", "bytes"):
            raise ConfigurationError("output must be 'string' or 'bytes'")
        if header_field == index_field:
            raise ConfigurationError("header_field and index_field must differ")
        self.namespace = namespace
        self.record_id_field = record_id_field
        if format_version == HEADER_VERSION:
            if record_mac is False:
                raise ConfigurationError(
                    "record_mac=False: format 2 always authenticates the record; an "
                    "unauthenticated writer exists only as format_version=1 (legacy)"
                )
            self.record_mac = True
        elif format_version == LEGACY_HEADER_VERSION:
            self.record_mac = bool(record_mac)
            log.warning(
                "writing legacy format-1 records: the header (which fields are encrypted) is %s",
                "covered by the optional record MAC" if record_mac else "NOT authenticated",
            )
        else:
            raise ConfigurationError(f"format_version must be 1 or 2, not {format_version!r}")
        self.format_version = format_version
        self.allow_legacy_v1 = bool(allow_legacy_v1)
        self.vault = vault
        self.header_field = header_field
        self.index_field = index_field
        self._as_bytes = output == "bytes"
        if cache is True:
            self.cache: DataKeyCache | NoCache = DataKeyCache(cache_limits)
        elif cache is False:
            self.cache = NoCache()
        elif isinstance(cache, DataKeyCache):
            self.cache = cache
        else:
            raise ConfigurationError("cache must be True, False or a DataKeyCache")
        self._unwrapped = UnwrappedKeyCache()
        self._context = context_for(namespace)
        self._cache_key = (self.keyring.identity, namespace)
        self._plans: dict[tuple, Plan] = {}
        self._concrete: dict[str, tuple[Concrete, bytes, Concrete, Any]] = {}
        self._layouts: dict[tuple[str, ...], tuple[tuple[Any, ...], ...]] = {}
        self._f_parts: dict[tuple[bytes, ...], bytes] = {}
        # per field list: lp(B)'s length and lp(n) || n || lp(F) || empty S, I, D
        self._f_by_layout: dict[tuple[str, ...], tuple[bytes, bytes]] = {}
        self._f_by_plan: dict[Plan, bytes] = {}
        self._det_aad: dict[tuple[bytes, str, str | None], bytes] = {}
        self._index_keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FieldEncryption({self.keyring!r}, namespace={self.namespace!r})"

    # -- key materials ----------------------------------------------------------------
    def _new_materials(self) -> DataKeyMaterials:
        key, edks = self.keyring.generate(self._context)
        log.debug("generated a data key for namespace %s", self.namespace)
        return DataKeyMaterials(key, edks, self.namespace)

    def _materials_for(self, header: Mapping[str, Any]) -> DataKeyMaterials:
        key_text = header.get("k")
        if type(key_text) is not str:
            raise FormatError("record header: 'k' (data key id) is missing or not a string")
        found = self._unwrapped.get(key_text)
        if found is not None:
            return found
        try:
            key_id = _a2b(key_text)
        except (binascii.Error, ValueError):
            raise FormatError("record header: data key id is not valid base64") from None
        if len(key_id) != envelope.KEY_ID_LEN:
            raise FormatError("record header: data key id must be 16 bytes")
        wrapped = header.get("w")
        if type(wrapped) is not list or not wrapped:
            raise FormatError("record header: 'w' (wrapped data keys) is missing or empty")
        edks = [EncryptedDataKey.from_json(item) for item in wrapped]
        key = self.keyring.unwrap(edks, self._context)
        if key_id_for(key) != key_id:
            raise TamperError(
                "record header: the wrapped data key does not match the data key id "
                "(header modified or assembled from different records)"
            )
        materials = DataKeyMaterials(key, edks, self.namespace)
        self._unwrapped.put(key_text, materials)
        log.debug("unwrapped data key %s for namespace %s", key_text, self.namespace)
        return materials

    def _vault(self) -> KeyVault:
        if self.vault is None:
            raise ConfigurationError(
                "deterministic encryption and blind indexes need a key vault: create one "
                "with `field-encrypt keys vault-new` and pass vault=KeyVault.load(...)"
            )
        return self.vault

    def _index_key(self, name: str) -> bytes:
        key = self._index_keys.get(name)
        if key is None:
            key = self._vault().blind_index_key(name)
            self._index_keys[name] = key
        return key

    def _deterministic_aad(self, key_id: bytes, canonical: str, scope: str | None) -> bytes:
        cache_key = (key_id, canonical, scope)
        found = self._det_aad.get(cache_key)
        if found is None:
            found = aad.deterministic(key_id, self.namespace, canonical, scope)
            if len(self._det_aad) < 65536:
                self._det_aad[cache_key] = found
        return found

    def _plan(self, fields: FieldList) -> Plan:
        if isinstance(fields, (str, FieldSpec)):
            fields = [fields]
        try:
            cache_key = tuple(fields)
            plan = self._plans.get(cache_key)
        except TypeError:
            cache_key, plan = None, None
        if plan is None:
            if not fields:
                raise PathError("no fields selected; pass fields=['ssn', ...]")
            plan = Plan([paths.as_spec(f) for f in fields], self.record_id_field)
            if plan.has_deterministic or plan.has_index:
                self._vault()
            if cache_key is not None and len(self._plans) < 256:
                self._plans[cache_key] = plan
        return plan

    def _record_id(self, data: Mapping[str, Any], record_id: Any) -> bytes | None:
        if record_id is not None:
            return record_id_bytes(record_id)
        if self.record_id_field is not None and self.record_id_field in data:
            return record_id_bytes(
                data[self.record_id_field], f"record id field {self.record_id_field!r}"
            )
        return None

    # -- encrypt ------------------------------------------------------------------------
    def encrypt_fields(
        self,
        data: Mapping[str, Any],
        fields: FieldList,
        *,
        record_id: str | int | None = None,
    ) -> dict[str, Any]:
        """A copy of ``data`` with the selected fields encrypted (``data`` is not changed)."""
        if type(data) is not dict:
            if not isinstance(data, Mapping):
                raise ConfigurationError(f"data must be a dict record, not {type(data).__name__}")
            data = dict(data)
        if self.header_field in data:
            raise ConfigurationError(
                f"record already has a {self.header_field!r} header (already encrypted); "
                "use rekey to re-encrypt it"
            )
        plan = self._plan(fields)
        targets: list[tuple[Target, Any]] = []
        for spec, target in plan.fixed:
            value = walk(data, target.steps) if target.parent else data.get(target.last, MISSING)
            if value is not MISSING:
                targets.append((target, value))
            elif not spec.optional:
                raise PathError(
                    f"field {spec.path} not found in the record; fix the path or mark it "
                    "optional (trailing '?' or --optional)"
                )
        for spec in plan.wild:
            matches = paths.expand(data, spec.steps)
            if not matches and not spec.optional:
                raise PathError(
                    f"field {spec.path} matches nothing in the record; fix the path or mark "
                    "it optional"
                )
            targets.extend((make_target(steps, spec), paths.get(data, steps)) for steps in matches)
        f_part = None
        if not plan.wild and len(targets) == len(plan.fixed):
            f_part = self._f_by_plan.get(plan)
            if f_part is None:
                f_part = self._f_part(tuple([target.path_part for target, _ in targets]))
                if len(self._f_by_plan) < 256:
                    self._f_by_plan[plan] = f_part
        if record_id is None and self.record_id_field is not None:
            rid_value = data.get(self.record_id_field)
            if type(rid_value) is str and rid_value:
                rid = b"i" + rid_value.encode("utf-8", "surrogatepass")
                return self._encrypt_targets(data, targets, rid, None, None, f_part)
        return self._encrypt_targets(
            data, targets, self._record_id(data, record_id), None, None, f_part
        )

    def _encrypt_targets(
        self,
        data: dict[str, Any],
        targets: list[tuple[Target, Any]],
        rid: bytes | None,
        carried_index: dict[str, str] | None,
        avoid_key_id: bytes | None,
        f_part: bytes | None = None,
    ) -> dict[str, Any]:
        random_id = None
        if rid is None:
            random_id = os.urandom(16)
            rid = b"r" + random_id
        encode = values.encode
        plaintexts = []
        total = 0
        random_count = 0
        special = False  # a deterministic field or a blind index
        for target, value in targets:
            if type(value) is str:
                pt = b"\x05" + value.encode("utf-8", "surrogatepass")
            else:
                pt = encode(value, target.canonical)
            plaintexts.append(pt)
            total += len(pt)
            if target.deterministic:
                special = True
            else:
                random_count += 1
            if target.index is not None:
                special = True
        version = self.format_version
        v2 = version == HEADER_VERSION
        # format 2 reserves one more use of the data key: the record nonce n
        uses = random_count + 1 if v2 else random_count
        materials, first_use = self.cache.acquire(self._cache_key, uses, total, self._new_materials)
        if avoid_key_id is not None and materials.key_id == avoid_key_id:
            self.cache.clear()
            materials, first_use = self.cache.acquire(
                self._cache_key, uses, total, self._new_materials
            )
        header: dict[str, Any] = {
            "v": version,
            "k": materials.key_id_text,
            # copies: a caller editing one record's header must not reach the cache
            "w": [dict(e) for e in materials.header_edks],
        }
        if random_id is not None:
            header["r"] = _b2a(random_id, newline=False).decode("ascii")
        rid_part = _lp(rid)
        nonce_int = materials.nonce_base + first_use
        scopes: dict[str, str] = {}
        index: dict[str, str] = dict(carried_index) if carried_index else {}
        sealed: list[bytes] = []  # deterministic envelopes, in field order
        if special:
            det = None
            for (target, value), pt in zip_equal(targets, plaintexts):
                if target.index is not None:
                    index[target.index_name] = blind_index.compute(  # type: ignore[index]
                        self._index_key(target.index_name),  # type: ignore[arg-type]
                        value,
                        target.index,
                        target.canonical,
                    )
                if target.deterministic:
                    if det is None:
                        det = self._vault().deterministic_key()
                    ct = det.siv.encrypt(
                        pt, [self._deterministic_aad(det.key_id, target.canonical, target.scope)]
                    )
                    n = len(ct)
                    sealed.append(
                        _SIV_HEAD
                        + det.key_id
                        + (_LEN1[n] if n < 128 else envelope.encode_length(n))
                        + ct
                    )
                    if target.scope is not None:
                        scopes[target.canonical] = target.scope
        record_prefix = materials.aad_prefix + rid_part
        binding = b""
        if v2:
            record_nonce = nonce_int.to_bytes(12, "big")
            nonce_int += 1
            header["a"] = materials.verified_tag or materials.wrapped_tag()
            header["n"] = _b2a(record_nonce, newline=False).decode("ascii")
            if f_part is None:
                f_part = self._f_part(tuple([target.path_part for target, _ in targets]))
            if special or index:
                binding = _binding(record_nonce, f_part, targets, sealed, scopes, index, special)
            else:
                binding = _N_LP + record_nonce + f_part + _EMPTY_SID
            record_prefix += len(binding).to_bytes(4, "big") + binding
        gcm_head = materials.gcm_head
        aead_encrypt = materials.aead.encrypt
        root = dict(data)
        mine: set[int] = set()
        as_bytes = self._as_bytes
        mac_parts: list[bytes] | None = [] if not v2 and self.record_mac else None
        plain_strings = not as_bytes
        string_head = materials.string_head
        canonicals = []
        next_sealed = iter(sealed).__next__
        for (target, _value), pt in zip_equal(targets, plaintexts):
            if target.deterministic:
                env = next_sealed()
            else:
                nonce = nonce_int.to_bytes(12, "big")
                nonce_int += 1
                ct = aead_encrypt(nonce, pt, record_prefix + target.path_part)
                n = len(ct)
                tail = nonce + (_LEN1[n] if n < 128 else envelope.encode_length(n)) + ct
                if plain_strings and mac_parts is None:
                    # the 18-byte head is a whole number of base64 groups: encode the rest
                    node = root
                    if target.parent:
                        node = _writable(root, target.parent, mine)
                    node[target.last] = string_head + _b2a(tail, newline=False).decode("ascii")
                    canonicals.append(target.canonical)
                    continue
                env = gcm_head + tail
            node = root
            if target.parent:
                node = _writable(root, target.parent, mine)
            node[target.last] = (
                env if as_bytes else _PREFIX + _b2a(env, newline=False).decode("ascii")
            )
            canonicals.append(target.canonical)
            if mac_parts is not None:
                mac_parts.append(target.path_part + _lp(env))
        header["f"] = canonicals
        if scopes:
            header["s"] = scopes
        out = root
        if index:
            out[self.index_field] = index
        if v2:
            if not random_count:
                tag = materials.record_mac(rid_part + binding)
                header["m"] = _b2a(tag, newline=False).decode("ascii")
        elif mac_parts is not None:
            tag = self._mac(materials, rid, mac_parts, scopes, index)
            header["m"] = _b2a(tag, newline=False).decode("ascii")
        out[self.header_field] = header
        return out

    def _f_part(self, path_parts: tuple[bytes, ...]) -> bytes:
        """``lp(F)``: F is every encrypted field's ``lp(canonical path)``, in order."""
        found = self._f_parts.get(path_parts)
        if found is None:
            found = _lp(b"".join(path_parts))
            if len(self._f_parts) < 4096:
                self._f_parts[path_parts] = found
        return found

    def _mac(  # format 1
        self,
        materials: DataKeyMaterials,
        rid: bytes,
        field_parts: list[bytes],
        scopes: Mapping[str, str],
        index: Mapping[str, Any],
    ) -> bytes:
        parts = [
            _lp(_MAC_LABEL),
            _lp(self.namespace.encode("utf-8")),
            _lp(rid),
            _lp(materials.key_id),
            _lp(str(len(field_parts)).encode("ascii")),
            *field_parts,
            _lp(json.dumps(dict(sorted(scopes.items())), separators=(",", ":")).encode()),
            _lp(json.dumps(dict(sorted(index.items())), separators=(",", ":")).encode()),
        ]
        return hmac.digest(materials.mac_key(), b"".join(parts), "sha256")

    def encrypt_records(
        self, records: Iterable[Mapping[str, Any]], fields: FieldList
    ) -> Iterator[dict[str, Any]]:
        """Encrypt a stream of records (the data-key cache spreads one key over many)."""
        for record in records:
            yield self.encrypt_fields(record, fields)

    # -- decrypt ------------------------------------------------------------------------
    def _header(self, data: Mapping[str, Any]) -> dict[str, Any]:
        header = data.get(self.header_field)
        if header is None:
            raise FormatError(
                f"record has no {self.header_field!r} header: it was not encrypted by "
                "field_encryption, or the header was removed"
            )
        if type(header) is not dict:
            raise FormatError(f"record header {self.header_field!r} must be an object")
        version = header.get("v")
        if type(version) is not int or version not in (HEADER_VERSION, LEGACY_HEADER_VERSION):
            raise FormatError(
                f"record header version {version!r} is not supported (this library reads "
                f"version {HEADER_VERSION}, and {LEGACY_HEADER_VERSION} with allow_legacy_v1)"
            )
        if version == LEGACY_HEADER_VERSION and not self.allow_legacy_v1:
            raise TamperError(
                "record header is format 1, whose list of encrypted fields is not "
                "authenticated: a legacy record, or a format-2 record someone downgraded to "
                "change it. Read legacy data with allow_legacy_v1=True (CLI: "
                "--allow-legacy-v1) and re-encrypt it with rekey"
            )
        if not HEADER_KEYS.issuperset(header):
            raise FormatError("record header has unknown entries")
        return header

    def _concrete_path(self, canonical: Any) -> tuple[Concrete, bytes, Concrete, Any]:
        """(steps, AAD path part, parent steps, last step) of a header path, cached."""
        found = self._concrete.get(canonical)
        if found is not None:
            return found
        if type(canonical) is not str:
            raise FormatError("record header: field paths must be strings")
        try:
            steps = json.loads(canonical)
        except ValueError:
            raise FormatError("record header: a field path is not a JSON array") from None
        if (
            type(steps) is not list
            or not steps
            or not all(type(s) is str or (type(s) is int and s >= 0) for s in steps)
            or paths.canonical(tuple(steps)) != canonical
        ):
            raise FormatError("record header: a field path is not canonical")
        concrete = tuple(steps)
        found = (concrete, aad.path_part(canonical), concrete[:-1], concrete[-1])
        if len(self._concrete) < 65536:
            self._concrete[canonical] = found
        return found

    def decrypt_fields(
        self,
        data: Mapping[str, Any],
        fields: FieldList | None = None,
        *,
        record_id: str | int | None = None,
    ) -> dict[str, Any]:
        """A copy of ``data`` with its encrypted fields decrypted.

        The whole record is authenticated (format 2: its header and every random-mode
        field, whatever ``fields`` selects). Without ``fields``, or with ``fields`` that
        cover every encrypted field, every field is decrypted and the header and blind
        indexes are removed. With fewer ``fields`` only those are returned decrypted and
        the header stays (a view for reading: do not store it back as is).
        """
        if fields is None and record_id is None and type(data) is dict:
            fast = self._try_fast_decrypt(data)
            if fast is not None:
                return fast
        if type(data) is not dict:
            if not isinstance(data, Mapping):
                raise ConfigurationError(f"data must be a dict record, not {type(data).__name__}")
            data = dict(data)
        opened = self._open(data, record_id)
        layout = opened.layout
        selected = None if fields is None else self._select(list(opened.header["f"]), fields)
        if selected is not None and len(selected) == len(layout):
            selected = None
        materials = opened.materials
        record_prefix = opened.prefix
        aead_decrypt = materials.aead.decrypt
        key_id = materials.key_id
        head = materials.gcm_head
        decode = values.decode
        verify_all = opened.version == HEADER_VERSION
        root = dict(data)
        mine: set[int] | None = None
        for (canonical, steps, path_part, parent, last), raw in zip_equal(layout, opened.raws):
            wanted = selected is None or canonical in selected
            # fast path: version 1, AES-256-GCM, a one-byte length that matches exactly
            if (
                len(raw) >= _GCM_MIN
                and raw[:18] == head
                and len(raw) == raw[30] + 31
                and raw[30] < 0x80
            ):
                if not wanted and not verify_all:
                    continue
                try:
                    pt = aead_decrypt(raw[18:30], raw[31:], record_prefix + path_part)
                except InvalidTag:
                    raise _auth_failed(steps) from None
            else:
                env = _parse(raw)
                if env.algorithm == envelope.ALG_AES_256_GCM:
                    if not wanted and not verify_all:
                        continue
                    if env.key_id != key_id:
                        raise _other_key(steps)
                    try:
                        pt = aead_decrypt(env.nonce, env.body, record_prefix + path_part)
                    except InvalidTag:
                        raise _auth_failed(steps) from None
                elif not wanted:
                    continue  # format 2: covered by the binding of the record's other fields
                else:
                    pt = self._decrypt_deterministic(env, canonical, opened.scopes, steps)
            if not wanted:
                continue
            value = pt[1:].decode("utf-8", "surrogatepass") if pt[0] == 5 else decode(pt, canonical)
            if parent:
                if mine is None:
                    mine = set()
                _writable(root, parent, mine)[last] = value
            else:
                root[last] = value
        if selected is None:
            root.pop(self.header_field, None)
            root.pop(self.index_field, None)
        return root

    def _open(self, data: dict[str, Any], record_id: Any = None) -> _Opened:
        """Parse a record's header, find its data key and check what the header alone
        can prove.

        Format 2: the wrapped keys' tag ``a`` must verify, and the binding B (record
        nonce, field list, join scopes, blind indexes, deterministic ciphertexts) goes
        into the associated data of every random-mode field, so decrypting any of them
        authenticates the header; a record without one carries the MAC ``m`` over B,
        checked here. Format 1 (only with ``allow_legacy_v1``): its optional MAC is
        checked when present; each field authenticates itself when it is decrypted.
        """
        header = self._header(data)
        listed = header.get("f")
        if type(listed) is not list or not all(type(p) is str for p in listed):
            raise FormatError("record header: 'f' must be a list of field paths")
        layout_key = tuple(listed)
        layout = self._layouts.get(layout_key)
        if layout is None:
            layout = self._layout(layout_key)
        key_text = header.get("k")
        if type(key_text) is not str:
            raise FormatError("record header: 'k' (data key id) is missing or not a string")
        materials = self._unwrapped.get(key_text) or self._materials_for(header)
        rid_value = data.get(self.record_id_field) if record_id is None else None  # type: ignore[arg-type]
        if type(rid_value) is str and rid_value and "r" not in header:
            rid = b"i" + rid_value.encode("utf-8", "surrogatepass")
        else:
            rid = self._header_record_id(header, data, record_id)
        scopes = header.get("s", _EMPTY)
        if type(scopes) is not dict or ("s" in header and not scopes):
            raise FormatError("record header: 's' must be a non-empty object when present")
        raws: list[bytes] = []
        a2b = _a2b
        for _canonical, steps, _path_part, parent, last in layout:
            value = data.get(last, MISSING) if not parent else walk(data, steps)
            if type(value) is str and value.startswith(_PREFIX):
                try:
                    raws.append(a2b(value[_PREFIX_LEN:]))
                except (binascii.Error, ValueError):
                    raise FormatError(
                        f"field {paths.display(steps)}: ciphertext is not valid base64"
                    ) from None
            elif type(value) is bytes:
                raws.append(value)
            else:
                raise _not_ciphertext(steps, value)
        version = header["v"]
        mac_text = header.get("m")
        prefix = materials.aad_prefix + _lp(rid)
        if version == HEADER_VERSION:
            prefix += _lp(self._check_v2_header(header, data, materials, rid, layout, raws, scopes))
        elif mac_text is not None or (
            self.format_version == LEGACY_HEADER_VERSION and self.record_mac
        ):
            parts = [
                _lp(item[0].encode("utf-8")) + _lp(raw)
                for item, raw in zip_equal(layout, raws)
            ]
            self._verify_mac(materials, rid, parts, scopes, data, mac_text)
        return _Opened(header, version, layout, materials, rid, raws, scopes, prefix)

    def _check_v2_header(
        self,
        header: Mapping[str, Any],
        data: Mapping[str, Any],
        materials: DataKeyMaterials,
        rid: bytes,
        layout: Sequence[tuple[Any, ...]],
        raws: Sequence[bytes],
        scopes: Mapping[str, Any],
    ) -> bytes:
        """Verify ``a`` (and ``m`` where it belongs); return the binding B."""
        wrapped = header.get("w")
        if wrapped == materials.header_edks:
            expected = materials.wrapped_tag()
        else:
            expected = materials.wrapped_tag(canonical_json(wrapped))
        found = header.get("a")
        if type(found) is not str or not hmac.compare_digest(found.encode(), expected.encode()):
            raise TamperError(
                "record header: the wrapped keys 'w' or their tag 'a' were changed (a wrapped "
                "key removed, added or altered)"
            )
        nonce_text = header.get("n")
        if type(nonce_text) is not str:
            raise TamperError("record header has no record nonce 'n' (removed?)")
        try:
            record_nonce = _a2b(nonce_text)
        except (binascii.Error, ValueError):
            raise FormatError("record header: 'n' is not valid base64") from None
        if len(record_nonce) != 12:
            raise FormatError("record header: 'n' must be 12 bytes")
        sealed: list[bytes] = []
        items: list[tuple[Any, None]] = []
        random_count = 0
        for entry, raw in zip_equal(layout, raws):
            if len(raw) < 2:
                raise FormatError(f"field {paths.display(entry[1])}: ciphertext truncated")
            deterministic = raw[1] == envelope.ALG_AES_SIV_512
            if deterministic:
                sealed.append(raw)
            else:
                random_count += 1
            items.append((_Item(entry[2], deterministic), None))
        index = self._index_of(data)
        f_part = self._f_part(tuple([entry[2] for entry in layout]))
        binding = _binding(record_nonce, f_part, items, sealed, scopes, index, bool(sealed))
        mac_text = header.get("m")
        if random_count:
            if "m" in header:
                raise FormatError(
                    "record header: 'm' belongs only to records without a random-mode field"
                )
            return binding
        if type(mac_text) is not str:
            raise TamperError(
                "record header has no MAC 'm' (removed?): a record without a random-mode field "
                "always carries one"
            )
        try:
            expected_mac = _a2b(mac_text)
        except (binascii.Error, ValueError):
            raise FormatError("record header: 'm' is not valid base64") from None
        if not hmac.compare_digest(materials.record_mac(_lp(rid) + binding), expected_mac):
            raise TamperError(
                "record MAC mismatch: the header (field list, record id, record nonce, join "
                "scopes), the blind indexes or a deterministic field were changed"
            )
        return binding

    def _index_of(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        index = data.get(self.index_field, _EMPTY)
        if type(index) is not dict or (self.index_field in data and not index):
            raise FormatError(f"{self.index_field!r} must be a non-empty object when present")
        return index

    def authenticate(self, data: Mapping[str, Any], *, record_id: str | int | None = None) -> None:
        """Verify a format-2 record without returning any value (no vault needed).

        Raises :class:`TamperError` when the header or any field was changed.
        """
        if type(data) is not dict:
            data = dict(data)
        opened = self._open(data, record_id)
        if opened.version != HEADER_VERSION:
            raise TamperError(
                "record is format 1: its header is not authenticated; decrypt it with "
                "allow_legacy_v1=True and re-encrypt it (rekey)"
            )
        self._verify_random_fields(opened)

    def _verify_random_fields(self, opened: _Opened) -> None:
        aead_decrypt = opened.materials.aead.decrypt
        key_id = opened.materials.key_id
        for entry, raw in zip_equal(opened.layout, opened.raws):
            env = _parse(raw)
            if env.algorithm != envelope.ALG_AES_256_GCM:
                continue
            if env.key_id != key_id:
                raise _other_key(entry[1])
            try:
                aead_decrypt(env.nonce, env.body, opened.prefix + entry[2])
            except InvalidTag:
                raise _auth_failed(entry[1]) from None

    def _try_fast_decrypt(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The common case with the fewest steps: a record whose header has only v, k, w,
        a, f and n (format 2; v, k, w and f for a legacy record read on request), a
        string record id, no blind indexes, a data key and field layout seen before, and
        AES-GCM fields with short values. The wrapped keys' tag must be the one already
        verified for this data key, and every field authenticates the header through its
        associated data, as in the general path.

        Returns None as soon as anything is unusual; the general path then decrypts the
        record again and reports any error precisely.
        """
        header = data.get(self.header_field)
        if type(header) is not dict:
            return None
        version = header.get("v")
        if version == HEADER_VERSION and type(version) is int:
            if len(header) != 6 or self.index_field in data:
                return None
            v2 = True
        elif (
            version == LEGACY_HEADER_VERSION
            and type(version) is int
            and self.allow_legacy_v1
            and not (self.format_version == LEGACY_HEADER_VERSION and self.record_mac)
            and len(header) == 4
        ):
            v2 = False
        else:
            return None
        listed = header.get("f")
        key_text = header.get("k")
        if type(listed) is not list or "w" not in header or type(key_text) is not str:
            return None
        try:
            layout_key = tuple(listed)
            layout = self._layouts.get(layout_key)
        except TypeError:  # unhashable entries: let the general path report it
            return None
        materials = self._unwrapped.entries.get(key_text)
        if layout is None or materials is None:
            return None
        if time.monotonic() - materials.created > self._unwrapped.max_age:
            return None
        rid_value = data.get(self.record_id_field)  # type: ignore[arg-type]
        if type(rid_value) is not str or not rid_value:
            return None
        rid = b"i" + rid_value.encode("utf-8", "surrogatepass")
        record_prefix = materials.aad_prefix + _lp(rid)
        if v2:
            wrapped = header["w"]
            if (
                wrapped is not materials.header_edks and wrapped != materials.header_edks
            ) or header.get("a") != materials.verified_tag:
                return None
            nonce_text = header.get("n")
            if type(nonce_text) is not str or len(nonce_text) != 16:
                return None
            try:
                record_nonce = _a2b(nonce_text)
            except (binascii.Error, ValueError):
                return None
            bind = self._f_by_layout.get(layout_key)
            if bind is None:
                return None
            record_prefix += bind[0] + record_nonce + bind[1]
        aead_decrypt = materials.aead.decrypt
        string_head = materials.string_head
        a2b = _a2b
        root = dict(data)
        mine: set[int] | None = None
        for _canonical, steps, path_part, parent, last in layout:
            value = walk(data, steps) if parent else data.get(last, MISSING)
            # "fe1:" + base64 of version, algorithm and key id: 28 characters, so the rest
            # decodes on its own to nonce(12) || length(1) || body
            if type(value) is not str or not value.startswith(string_head):
                return None
            try:
                raw = a2b(value[_STRING_HEAD_LEN:])
            except (binascii.Error, ValueError):
                return None
            size = len(raw)
            if size < _GCM_MIN - 18 or size != raw[12] + 13 or raw[12] >= 0x80:
                return None
            try:
                pt = aead_decrypt(raw[:12], raw[13:], record_prefix + path_part)
            except InvalidTag:
                return None
            if pt[0] == 5:
                value = pt[1:].decode("utf-8", "surrogatepass")
            else:
                value = values.decode(pt, _canonical)
            if parent:
                if mine is None:
                    mine = set()
                _writable(root, parent, mine)[last] = value
            else:
                root[last] = value
        root.pop(self.header_field, None)
        root.pop(self.index_field, None)
        return root

    def _layout(self, listed: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
        if len(set(listed)) != len(listed):
            raise FormatError("record header: 'f' lists a field twice")
        layout = tuple((c, *self._concrete_path(c)) for c in listed)
        if len(self._layouts) < 4096:
            self._layouts[listed] = layout
            f_part = self._f_part(tuple([entry[2] for entry in layout]))
            self._f_by_layout[listed] = (
                (16 + len(f_part) + len(_EMPTY_SID)).to_bytes(4, "big") + _N_LP,
                f_part + _EMPTY_SID,
            )
        return layout

    def _decrypt_deterministic(
        self, env: envelope.Envelope, canonical: str, scopes: Mapping[str, Any], steps: Concrete
    ) -> bytes:
        det = self._vault().deterministic_key_by_id(env.key_id)
        if det is None:
            raise DecryptionError(
                f"field {paths.display(steps)}: its deterministic key is not in the key vault "
                "(wrong vault, or the vault key was removed)"
            )
        scope = scopes.get(canonical)
        if scope is not None and type(scope) is not str:
            raise FormatError("record header: join scopes must be strings")
        try:
            return det.siv.decrypt(
                env.body, [self._deterministic_aad(det.key_id, canonical, scope)]
            )
        except InvalidTag:
            raise TamperError(
                f"field {paths.display(steps)} failed authentication (deterministic): modified "
                "or moved from another field or table"
            ) from None

    def _header_record_id(
        self, header: Mapping[str, Any], data: Mapping[str, Any], record_id: Any
    ) -> bytes:
        random_id = header.get("r", MISSING)
        if random_id is not MISSING:
            try:
                raw = _a2b(random_id)
            except (binascii.Error, ValueError, TypeError):
                raise FormatError("record header: 'r' is not valid base64") from None
            if len(raw) != 16:
                raise FormatError("record header: 'r' must be 16 bytes")
            return b"r" + raw
        rid = self._record_id(data, record_id)
        if rid is None:
            raise TamperError(
                f"record has neither its id field {self.record_id_field!r} nor a random id in "
                "its header; pass record_id= or keep the id field"
            )
        return rid

    def _select(self, listed: list[str], fields: FieldList | None) -> set[str] | None:
        if fields is None:
            return None
        specs = [
            paths.as_spec(f) for f in ([fields] if isinstance(fields, (str, FieldSpec)) else fields)
        ]
        chosen: set[str] = set()
        for spec in specs:
            hit = False
            for canonical in listed:
                steps = self._concrete_path(canonical)[0]
                if len(steps) == len(spec.steps) and all(
                    compatible(p, s) for p, s in zip_equal(spec.steps, steps)
                ):
                    chosen.add(canonical)
                    hit = True
            if not hit and not spec.optional:
                raise PathError(
                    f"field {spec.path} is not among the record's encrypted fields; mark it "
                    "optional or pick one the header lists"
                )
        return chosen

    def _verify_mac(
        self,
        materials: DataKeyMaterials,
        rid: bytes,
        mac_parts: list[bytes],
        scopes: Mapping[str, Any],
        data: Mapping[str, Any],
        mac_text: Any,
    ) -> None:
        if mac_text is None:
            raise TamperError("record MAC required but the record header has none (removed?)")
        try:
            expected = _a2b(mac_text)
        except (binascii.Error, ValueError, TypeError):
            raise FormatError("record header: 'm' is not valid base64") from None
        index = data.get(self.index_field) or {}
        if type(index) is not dict:
            raise FormatError(f"{self.index_field!r} must be an object")
        actual = self._mac(materials, rid, mac_parts, scopes, index)
        if not hmac.compare_digest(actual, expected):
            raise TamperError(
                "record MAC mismatch: an encrypted field was dropped, swapped, replayed from an "
                "older version, or the header or blind indexes were changed"
            )

    def decrypt_records(self, records: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield self.decrypt_fields(record)

    # -- file trailer ---------------------------------------------------------------------
    def file_trailer(self, digest: trailer.FileDigest) -> dict[str, Any]:
        """The trailer record that ends a file whose records were chained in ``digest``.

        Its key is the current data key of this object's encryption cache (no extra
        key-service call when records were just encrypted; one for an empty file).
        """
        materials, _ = self.cache.acquire(self._cache_key, 0, 0, self._new_materials)
        chained = digest.digest()
        tag = hmac.digest(
            materials.derived_key(trailer.TRAILER_KEY_LABEL),
            trailer.tag_message(self.namespace, digest.count, chained),
            "sha256",
        )[:16]
        body = {
            "v": trailer.TRAILER_VERSION,
            "c": digest.count,
            "h": _b2a(chained, newline=False).decode("ascii"),
            "k": materials.key_id_text,
            "w": list(materials.header_edks),
            "t": _b2a(tag, newline=False).decode("ascii"),
        }
        return {self.header_field: {trailer.TRAILER_KEY: body}}

    def check_file_trailer(self, found: Mapping[str, Any], digest: trailer.FileDigest) -> None:
        """Verify a file's trailer against the records read: count, chain and tag."""
        trailer.check_digest(found, digest.count, digest.digest())
        materials = self._materials_for({"k": found.get("k"), "w": found.get("w")})
        try:
            expected = _a2b(found.get("t") or "")
        except (binascii.Error, ValueError, TypeError):
            raise FormatError("file trailer: 't' is not valid base64") from None
        actual = hmac.digest(
            materials.derived_key(trailer.TRAILER_KEY_LABEL),
            trailer.tag_message(self.namespace, digest.count, digest.digest()),
            "sha256",
        )[:16]
        if not hmac.compare_digest(actual, expected):
            raise TamperError(
                "file trailer: its tag does not verify (trailer forged or edited, or the file "
                "belongs to another namespace)"
            )

    # -- searchable helpers -----------------------------------------------------------
    def blind_index(self, path: str, value: Any, normaliser: str = "text") -> str:
        """The blind index of ``value`` for field ``path`` (to query ``_fe_bidx.<name>``)."""
        spec = FieldSpec(path, blind_index=normaliser)  # type: ignore[arg-type]
        if spec.has_wildcard:
            raise PathError("blind indexes need a path without [*]")
        name = blind_index.index_name(paths.display(spec.steps))
        return blind_index.compute(self._index_key(name), value, normaliser, path)

    def encrypt_deterministic(self, path: str, value: Any, join_scope: str | None = None) -> str:
        """The deterministic ciphertext a field would get (to query equality)."""
        spec = FieldSpec(path, deterministic=True, join_scope=join_scope)
        steps: Concrete = tuple(spec.steps)  # type: ignore[arg-type]
        canonical = paths.canonical(steps)
        det = self._vault().deterministic_key()
        ct = det.siv.encrypt(
            values.encode(value, canonical),
            [self._deterministic_aad(det.key_id, canonical, join_scope)],
        )
        env = _SIV_HEAD + det.key_id + envelope.encode_length(len(ct)) + ct
        return envelope.to_string(env)

    # -- rotation ---------------------------------------------------------------------------
    # rewrap authenticates each record (its MAC, with the data key unwrapped by the source
    # keyring), then changes only the header's wrapped keys (``_fe.w``) through the
    # destination keyring's ``rewrap`` (KMS ReEncrypt for KMS keys) and the record MAC that
    # covers them; field ciphertexts and the data key id stay byte for byte the same. rekey
    # decrypts the record and encrypts the same fields again under a fresh data key.
    def rewrap(
        self,
        data: Mapping[str, Any],
        destination: Keyring,
        memo: dict[tuple[str, bytes], list[dict[str, str]]] | None = None,
    ) -> dict[str, Any]:
        """Re-wrap the record's data key under ``destination`` (KMS ReEncrypt); fields untouched.

        The record is authenticated first (its MAC, :class:`TamperError` otherwise) and
        its MAC is renewed over the new wrapped keys. ``memo`` (a dict kept across calls)
        makes one key-service call per distinct (data key, wrapped keys) pair.
        """
        record = dict(data)
        opened = self._open(record)
        if opened.version != HEADER_VERSION:
            raise FormatError(
                "record is format 1: rewrap keeps records authenticated and cannot vouch for an "
                "unauthenticated header; re-encrypt legacy records with rekey (--allow-legacy-v1)"
            )
        self._verify_random_fields(opened)
        header = opened.header
        # the memo is keyed on the whole (data key id, wrapped keys) pair, and consulted only
        # once this record's wrapped keys were verified: a record only ever gets the rewrap of
        # exactly the wrapped keys it carried
        memo_key = (header["k"], canonical_json(header["w"]))
        new_edks = memo.get(memo_key) if memo is not None else None
        if new_edks is None:
            edks = [EncryptedDataKey.from_json(item) for item in header["w"]]
            rewrapped = destination.rewrap(edks, self._context, self.keyring)
            new_edks = [e.to_json() for e in rewrapped]
            if memo is not None:
                memo[memo_key] = new_edks
        new_w = [dict(e) for e in new_edks]
        record[self.header_field] = {
            **header,
            "w": new_w,
            "a": opened.materials.wrapped_tag(canonical_json(new_w)),
        }
        return record

    def rekey(
        self,
        data: Mapping[str, Any],
        destination: FieldEncryption | None = None,
        *,
        record_id: str | int | None = None,
    ) -> dict[str, Any]:
        """Decrypt the record and encrypt the same fields again under a new data key.

        ``destination`` (default: this object) supplies the keyring, vault and options;
        the new data key is never the record's old one. Blind indexes are carried over.
        """
        target_fe = destination or self
        header = self._header(dict(data))
        listed = header.get("f")
        if type(listed) is not list:
            raise FormatError("record header: 'f' must be a list")
        old_key = header.get("k")
        algorithms: dict[str, int] = {}
        for canonical in listed:
            steps = self._concrete_path(canonical)[0]
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
        plain = self.decrypt_fields(data, record_id=record_id)
        carried = data.get(self.index_field)
        if type(carried) is not dict:
            carried = None
        targets = []
        for canonical in listed:
            steps = self._concrete_path(canonical)[0]
            deterministic = algorithms.get(canonical) == envelope.ALG_AES_SIV_512
            scope = scopes.get(canonical) if deterministic else None
            spec = FieldSpec(paths.display(steps), deterministic=deterministic, join_scope=scope)
            targets.append((make_target(steps, spec), paths.get(plain, steps)))
        avoid = None
        if type(old_key) is str:
            try:
                avoid = a2b_strict(old_key)
            except (binascii.Error, ValueError):
                avoid = None
        rid = None if "r" in header else target_fe._record_id(plain, record_id)
        return target_fe._encrypt_targets(plain, targets, rid, carried, avoid)


def _binding(
    record_nonce: bytes,
    f_part: bytes,
    fields: Sequence[tuple[Any, Any]],
    sealed: Sequence[bytes],
    scopes: Mapping[str, Any],
    index: Mapping[str, Any],
    special: bool,
) -> bytes:
    """B, what format 2 binds into every random-mode field's associated data (and what
    its record MAC covers when the record has no random-mode field)::

        lp(n) || lp(F) || lp(S) || lp(I) || lp(D)

    F: ``lp(canonical path)`` of every encrypted field, in header order; S, I: the join
    scopes and blind indexes as canonical JSON, or empty; D: ``lp(canonical path) ||
    lp(envelope)`` of every deterministic field, in order, or empty. ``fields`` pairs
    (object with ``path_part`` and ``deterministic``, ...) line up with ``sealed``.
    """
    if not special and not scopes and not index:
        return _N_LP + record_nonce + f_part + _EMPTY_SID
    det = b""
    if sealed:
        it = iter(sealed)
        det = b"".join(item.path_part + _lp(next(it)) for item, _ in fields if item.deterministic)
    return b"".join(
        (
            _N_LP,
            record_nonce,
            f_part,
            _lp(canonical_json(scopes)) if scopes else _EMPTY_LP,
            _lp(canonical_json(index)) if index else _EMPTY_LP,
            _lp(det),
        )
    )


def _not_ciphertext(steps: Concrete, value: Any) -> TamperError:
    if value is MISSING:
        return TamperError(
            f"encrypted field {paths.display(steps)} is listed in the record header but "
            "missing from the record (dropped?)"
        )
    return TamperError(
        f"field {paths.display(steps)} should be encrypted but holds a non-ciphertext "
        f"{type(value).__name__}"
    )


def _other_key(steps: Concrete) -> TamperError:
    return TamperError(
        f"field {paths.display(steps)} was encrypted under another data key than the record "
        "header names (moved from another record?)"
    )


def _auth_failed(steps: Concrete) -> TamperError:
    return TamperError(
        f"field {paths.display(steps)} failed authentication: modified, moved from another "
        "field, record or table, or the wrong namespace/record id"
    )


def _build_keyring(
    key_provider: str | None,
    key_id: str | None,
    key_file: Any,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    additional_key_ids: Sequence[str],
) -> Keyring:
    if key_provider == "aws_kms":
        if not key_id:
            raise ConfigurationError("key_provider='aws_kms' needs key_id (KMS key ARN or alias)")
        return KeyringSpec(kms_key_id=key_id, dr_key_ids=tuple(additional_key_ids),
                           region=region, profile=profile, endpoint_url=endpoint_url).build()
    if key_provider == "local":
        if key_file is None:
            raise ConfigurationError("key_provider='local' needs key_file (a local key file)")
        return KeyringSpec(local_key=key_file).build()
    raise ConfigurationError(
        f"key_provider must be 'aws_kms' or 'local' (or pass keyring=...), not {key_provider!r}"
    )
