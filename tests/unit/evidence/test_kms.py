"""Signing with an AWS KMS key (ECC_NIST_P256, ECDSA_SHA_256) through boto3 over HTTP to a
moto server on 127.0.0.1; verifying with the KMS key, with its exported public key, and with
openssl."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from evidencekit import POLICIES, dsse_pae, envelope, members, run
from motokit import AWS_ENV, moto_server

from m7guard.evidence.keys import KMS_RAW_LIMIT, KmsSigner, key_id


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def kms(endpoint: str) -> Any:
    import boto3

    return boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint)


def new_key(kms: Any, spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY") -> str:
    return kms.create_key(KeySpec=spec, KeyUsage=usage, Description="m7guard evidence test")[
        "KeyMetadata"
    ]["Arn"]


def kms_args(endpoint: str, key: str) -> list[str]:
    return ["--kms-key-id", key, "--kms-region", "us-east-1", "--kms-endpoint-url", endpoint]


def test_pack_and_verify_with_a_kms_key(
    audit_dir: Path, kms: Any, endpoint: str, workdir: Path, tmp_path: Path
) -> None:
    key = new_key(kms)
    bundle = workdir / "kms.tar.gz"
    packed = run(
        "evidence", "pack", audit_dir, "-o", bundle, "--policies", POLICIES,
        *kms_args(endpoint, key),
    )  # fmt: skip
    assert packed.exit_code == 0, packed.output
    der = kms.get_public_key(KeyId=key)["PublicKey"]
    kid = hashlib.sha256(der).hexdigest()
    assert f"signed by key {kid}" in packed.output
    files = members(bundle)
    assert envelope(files)["signatures"][0]["keyid"] == kid

    verified = run("evidence", "verify", bundle, *kms_args(endpoint, key))
    assert verified.exit_code == 0, verified.output
    assert f"signature ecdsa-p256-sha256 by key {kid}" in verified.output

    # the public key exported once verifies without KMS, in m7guard and in openssl
    pub = tmp_path / "kms.pub"
    exported = run("evidence", "public-key", *kms_args(endpoint, key), "-o", pub)
    assert exported.exit_code == 0, exported.output
    assert run("evidence", "verify", bundle, "--key", pub).exit_code == 0
    env = envelope(files)
    pae = tmp_path / "pae"
    pae.write_bytes(dsse_pae(env["payloadType"], base64.b64decode(env["payload"])))
    sig = tmp_path / "sig"
    sig.write_bytes(files["signature"])
    ok = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, pae],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
    pae.write_bytes(pae.read_bytes().replace(b'"fail":1', b'"fail":0'))
    bad = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, pae],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0

    # packed again: KMS signatures are randomised, everything else is the same bytes
    again = workdir / "kms-again.tar.gz"
    assert run(
        "evidence", "pack", audit_dir, "-o", again, "--policies", POLICIES,
        *kms_args(endpoint, key),
    ).exit_code == 0  # fmt: skip
    files_again = members(again)
    signing = {"statement.intoto.jsonl", "signature"}
    assert {n: d for n, d in files_again.items() if n not in signing} == {
        n: d for n, d in files.items() if n not in signing
    }
    assert json.loads(base64.b64decode(envelope(files_again)["payload"])) == json.loads(
        base64.b64decode(env["payload"])
    )
    assert run("evidence", "verify", again, "--key", pub).exit_code == 0

    # another KMS key does not verify it
    other = run("evidence", "verify", bundle, *kms_args(endpoint, new_key(kms)))
    assert other.exit_code == 2 and "does not verify" in other.output


def test_kms_sign_request_is_raw_ecdsa_sha_256(kms: Any, endpoint: str) -> None:
    key = new_key(kms)
    sent: list[dict[str, Any]] = []
    kms.meta.events.register("provide-client-params.kms.Sign", lambda params, **_: sent.append(
        dict(params)))  # fmt: skip
    signer = KmsSigner(key, kms)
    signer.sign(b"DSSEv1 short message")
    assert [(p["SigningAlgorithm"], p["MessageType"], p["Message"]) for p in sent] == [
        ("ECDSA_SHA_256", "RAW", b"DSSEv1 short message")
    ]


@pytest.mark.parametrize(
    ("spec", "usage"), [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("RSA_2048", "SIGN_VERIFY"),
                        ("ECC_NIST_P384", "SIGN_VERIFY")],
)  # fmt: skip
def test_a_kms_key_of_another_spec_is_refused(
    spec: str, usage: str, audit_dir: Path, kms: Any, endpoint: str, workdir: Path
) -> None:
    key = new_key(kms, spec, usage)
    result = run(
        "evidence", "pack", audit_dir, "-o", workdir / "b.tar.gz", "--policies", POLICIES,
        *kms_args(endpoint, key),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "ECC_NIST_P256" in result.output
    assert not (workdir / "b.tar.gz").exists()


def test_an_unknown_kms_key_is_a_usage_error(audit_dir: Path, endpoint: str, workdir) -> None:
    result = run(
        "evidence", "pack", audit_dir, "-o", workdir / "b.tar.gz", "--policies", POLICIES,
        *kms_args(endpoint, "alias/m7guard-none"),
    )  # fmt: skip
    assert result.exit_code == 1 and "KMS key alias/m7guard-none: GetPublicKey failed" in (
        result.output
    )


class DigestKms:
    """KMS's documented Sign semantics for the case moto does not implement: MessageType
    DIGEST signs the given SHA-256 digest as is."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.requests: list[dict[str, Any]] = []

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": KeyId, "PublicKey": der, "KeySpec": "ECC_NIST_P256",
                "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": ["ECDSA_SHA_256"]}  # fmt: skip

    def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> Any:
        self.requests.append({"MessageType": MessageType, "Message": Message})
        assert SigningAlgorithm == "ECDSA_SHA_256"
        if MessageType == "RAW":
            assert len(Message) <= KMS_RAW_LIMIT
            sig = self.key.sign(Message, ec.ECDSA(hashes.SHA256()))
        else:
            assert len(Message) == 32
            sig = self.key.sign(Message, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return {"Signature": sig}


def test_a_message_beyond_kms_raw_limit_is_signed_as_its_digest() -> None:
    """KMS takes at most 4096 bytes with MessageType RAW; a longer PAE (a bundle of many
    hosts) is sent as its SHA-256 and the signature is the same ECDSA-SHA256 one."""
    fake = DigestKms()
    signer = KmsSigner("key", fake)
    assert signer.public_key and key_id(signer.public_key)
    long = b"x" * (KMS_RAW_LIMIT + 1)
    sig = signer.sign(long)
    fake.key.public_key().verify(sig, long, ec.ECDSA(hashes.SHA256()))
    assert fake.requests[-1] == {"MessageType": "DIGEST", "Message": hashlib.sha256(long).digest()}
    signer.sign(b"x" * KMS_RAW_LIMIT)
    assert fake.requests[-1]["MessageType"] == "RAW"
