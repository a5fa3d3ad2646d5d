"""Signing keys for evidence bundles: a PEM key file (Ed25519 or ECDSA P-256) or an AWS KMS
key (key spec ECC_NIST_P256, signing algorithm ECDSA_SHA_256).

A key's id is the SHA-256 (hex) of its public key in DER SubjectPublicKeyInfo form; it goes
into the DSSE signature's keyid. Private key bytes never leave this module: no message, log
or file but the key file itself holds them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from m7guard.evidence import EvidenceError

PASSPHRASE_ENV = "M7GUARD_SIGNING_KEY_PASSPHRASE"  # noqa: S105 (a variable name)
KEY_TYPES = ("ed25519", "ecdsa-p256")
KMS_KEY_SPEC = "ECC_NIST_P256"
KMS_ALGORITHM = "ECDSA_SHA_256"
# KMS signs at most 4096 bytes with MessageType RAW; a longer message is signed as its
# SHA-256 digest (MessageType DIGEST), which gives the same ECDSA-SHA256 signature.
KMS_RAW_LIMIT = 4096

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def algorithm(public_key: PublicKey) -> str:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "ecdsa-p256-sha256"


def _check_public(public_key: Any, where: str) -> PublicKey:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return public_key
    raise EvidenceError(
        f"{where}: not an Ed25519 or ECDSA P-256 key (the kinds m7guard signs with)"
    )


def verify_signature(public_key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when signature is the key's signature of data (ECDSA: DER, over SHA-256)."""
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


class Signer(Protocol):
    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class FileSigner:
    """A private key read from a PEM file. ECDSA signatures are deterministic (RFC 6979), so
    the same bundle content gives the same bytes with either key kind."""

    _key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    source: str

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def __repr__(self) -> str:
        return f"FileSigner({self.source!r})"


def load_signing_key(path: Path) -> FileSigner:
    """The PEM private key at path (PKCS#8 or traditional; encrypted ones take the
    passphrase from $M7GUARD_SIGNING_KEY_PASSPHRASE)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read signing key {path}: {exc.strerror}") from exc
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if passphrase else None
        )
    except TypeError as exc:
        raise EvidenceError(
            f"signing key {path} is encrypted: set {PASSPHRASE_ENV} to its passphrase"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise EvidenceError(
            f"{path} is not a PEM private key (or its passphrase is wrong); "
            "make one with `m7guard evidence keygen`"
        ) from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return FileSigner(key, str(path))
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return FileSigner(key, str(path))
    raise EvidenceError(f"signing key {path}: not an Ed25519 or ECDSA P-256 private key")


def load_public_key(path: Path) -> PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise EvidenceError(
            f"{path} is not a PEM public key (SubjectPublicKeyInfo, -----BEGIN PUBLIC KEY-----)"
        ) from exc
    return _check_public(key, str(path))


def public_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """data into path, created with mode from the start, renamed over nothing."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise EvidenceError(f"cannot write {path}: {exc.strerror}") from exc


def generate_key(
    out_dir: Path, kind: str = "ed25519", name: str = "evidence-signing"
) -> tuple[Path, Path, str]:
    """Write OUT/NAME.key (PKCS#8 PEM, mode 0600) and OUT/NAME.pub (PEM); refuse to replace
    an existing key. Returns (private path, public path, key id)."""
    if kind not in KEY_TYPES:
        raise EvidenceError(f"unknown key type {kind!r}; choose from {', '.join(KEY_TYPES)}")
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise EvidenceError(f"{path} exists; m7guard does not overwrite a key (move it away)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvidenceError(f"cannot create {out_dir}: {exc.strerror}") from exc
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    key = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(private_path, pem, 0o600)
    _write_atomic(public_path, public_pem(key.public_key()), 0o644)
    return private_path, public_path, key_id(key.public_key())


# -- AWS KMS ------------------------------------------------------------------------------
def kms_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    import boto3

    return boto3.client("kms", region_name=region, endpoint_url=endpoint_url)


def _kms_error(exc: Exception, key: str, action: str) -> EvidenceError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        detail = f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
    else:
        detail = str(exc)
    return EvidenceError(f"KMS key {key}: {action} failed ({detail})")


def kms_public_key(client: Any, key: str) -> PublicKey:
    """The public key of a KMS signing key, after checking its spec, usage and algorithm."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        reply = client.get_public_key(KeyId=key)
    except (ClientError, BotoCoreError) as exc:
        raise _kms_error(exc, key, "GetPublicKey") from exc
    spec = reply.get("KeySpec") or reply.get("CustomerMasterKeySpec")
    if spec != KMS_KEY_SPEC or reply.get("KeyUsage") != "SIGN_VERIFY":
        raise EvidenceError(
            f"KMS key {key} is {spec} for {reply.get('KeyUsage')}; evidence bundles need an "
            f"asymmetric {KMS_KEY_SPEC} key for SIGN_VERIFY ({KMS_ALGORITHM})"
        )
    if KMS_ALGORITHM not in reply.get("SigningAlgorithms", [KMS_ALGORITHM]):
        raise EvidenceError(f"KMS key {key} does not sign with {KMS_ALGORITHM}")
    public = serialization.load_der_public_key(reply["PublicKey"])
    return _check_public(public, f"KMS key {key}")


class KmsSigner:
    """Signs with an AWS KMS key (kms:Sign, ECDSA_SHA_256). Each signature is checked against
    the key's public key before it is used. KMS's ECDSA signatures are not deterministic:
    two bundles of the same audit differ in their signature."""

    def __init__(self, key: str, client: Any) -> None:
        self.key = key
        self._client = client
        self._public = kms_public_key(client, key)

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        if len(data) <= KMS_RAW_LIMIT:
            request = {"Message": data, "MessageType": "RAW"}
        else:
            request = {"Message": hashlib.sha256(data).digest(), "MessageType": "DIGEST"}
        try:
            reply = self._client.sign(KeyId=self.key, SigningAlgorithm=KMS_ALGORITHM, **request)
        except (ClientError, BotoCoreError) as exc:
            raise _kms_error(exc, self.key, "Sign") from exc
        signature = reply["Signature"]
        if not verify_signature(self._public, signature, data):
            raise EvidenceError(
                f"KMS key {self.key}: the signature KMS returned does not verify with the "
                f"key's public key (MessageType {request['MessageType']})"
            )
        return bytes(signature)

    def __repr__(self) -> str:
        return f"KmsSigner({self.key!r})"
