"""Benchmark of field_encryption against the AWS Encryption SDK and a bare AES-GCM loop.

Run:  .venv/bin/python benchmarks/field_encryption.py [--records N] [--stream-records N]

All rates are single-threaded (one core), measured in one run on the same data:
records with three sensitive fields, one of them nested (ssn, credit_card,
personal_info.email). It prints a table, ratios and the targets:

- this library, encrypt and decrypt (fields/s, data-key cache on, local keyring): the
  authenticated default (format 2, record MAC over header and fields) side by side with
  the unauthenticated legacy format 1 (the default before format 2), interleaved runs,
  best of each, so both see the same machine;
- AWS Encryption SDK, one message per field, raw AES keyring, suite 0x0478 (key
  commitment, no signature); the legacy raw master key is measured too and the faster
  of the two is used for the ratio;
- a bare AESGCM loop (one reused AESGCM object, random nonces): the ceiling;
- KMS calls per million fields with the cache on, counted against a moto server on
  127.0.0.1 (no AWS);
- peak memory (ru_maxrss of the child) of `field-encrypt encrypt` streaming 200k and
  2M records: about equal means constant memory.

Needs the `bench` and `test` extras (aws-encryption-sdk with its material providers,
moto[server]).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# this file shares its name with the package: keep its own folder off the import path
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from field_encryption import AwsKmsKeyring, FieldEncryption, LocalKeyring  # noqa: E402

FIELDS = ["ssn", "credit_card", "personal_info.email"]
TARGET_ENCRYPT = 300_000
TARGET_DECRYPT = 500_000
TARGET_SDK_RATIO = 30.0
TARGET_AUTH_RATIO = 0.85  # authenticated default within 15 % of the unauthenticated legacy
TARGET_KMS_FIELDS_PER_CALL = 2**20


def make_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"user-{i:08d}",
            "name": f"User {i}",
            "ssn": f"{100 + i % 800:03d}-{10 + i % 89:02d}-{1000 + i % 8999:04d}",
            "credit_card": f"4111 1111 {i % 10000:04d} {(i * 7) % 10000:04d}",
            "personal_info": {
                "email": f"user{i}@example.com",
                "city": "Boston",
                "age": 20 + i % 60,
            },
            "plan": "gold",
        }
        for i in range(n)
    ]


def timed(func: Callable[[], Any], repeats: int = 3) -> float:
    """Median wall time of ``repeats`` runs (the machine may be shared: the median is
    steadier than one run)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_library(
    records: list[dict[str, Any]], rounds: int = 5, batch: int = 2_000
) -> dict[str, Any]:
    """Encrypt and decrypt rates of the default and of legacy format 1, side by side.

    The two are measured in alternating batches of ``batch`` records (the order swapping
    every batch), so a machine whose load changes during the run slows both alike. Rates
    are the fields over the summed time of each; the ratios are the medians of the
    batch-by-batch ratios, which a passing burst of load cannot move much.
    """
    keyring = LocalKeyring(os.urandom(32), "local:bench")
    variants = {
        "default": FieldEncryption(keyring=keyring, namespace="users"),
        "legacy": FieldEncryption(
            keyring=keyring, namespace="users", format_version=1, allow_legacy_v1=True
        ),
    }
    encrypted = {
        name: [fe.encrypt_fields(r, FIELDS) for r in records] for name, fe in variants.items()
    }
    for name, fe in variants.items():
        assert fe.decrypt_fields(encrypted[name][0]) == records[0]
    assert encrypted["default"][0]["_fe"]["v"] == 2 and "a" in encrypted["default"][0]["_fe"]
    assert encrypted["legacy"][0]["_fe"]["v"] == 1 and "a" not in encrypted["legacy"][0]["_fe"]
    gc.collect()
    gc.freeze()  # the inputs are long-lived; outputs are dropped as a stream would
    clock = time.perf_counter
    totals = {name: [0.0, 0.0] for name in variants}
    ratios: tuple[list[float], list[float]] = ([], [])
    order = list(variants)
    for _ in range(rounds):
        for start in range(0, len(records), batch):
            plain = records[start : start + batch]
            taken: dict[str, list[float]] = {}
            order.reverse()
            for name in order:
                fe = variants[name]
                enc_fields, dec_fields = fe.encrypt_fields, fe.decrypt_fields
                rows = encrypted[name][start : start + batch]
                t0 = clock()
                for record in plain:
                    enc_fields(record, FIELDS)
                t1 = clock()
                for record in rows:
                    dec_fields(record)
                t2 = clock()
                taken[name] = [t1 - t0, t2 - t1]
                totals[name][0] += t1 - t0
                totals[name][1] += t2 - t1
            for i in (0, 1):
                ratios[i].append(taken["legacy"][i] / taken["default"][i])
    gc.unfreeze()
    fields = len(records) * len(FIELDS) * rounds
    size = {n: sum(len(r["ssn"]) for r in encrypted[n][:1000]) // 1000 for n in variants}
    out: dict[str, Any] = {
        name: (fields / totals[name][0], fields / totals[name][1], size[name]) for name in variants
    }
    out["ratio"] = (statistics.median(ratios[0]), statistics.median(ratios[1]))
    return out


def field_values(records: list[dict[str, Any]]) -> list[bytes]:
    out = []
    for r in records:
        out += [r["ssn"].encode(), r["credit_card"].encode(), r["personal_info"]["email"].encode()]
    return out


def bench_ceiling(values: list[bytes]) -> tuple[float, float]:
    aead = AESGCM(AESGCM.generate_key(256))
    aad = b"x" * 48
    urandom = os.urandom
    sealed: list[tuple[bytes, bytes]] = []

    def encrypt_all() -> None:
        sealed.clear()
        for v in values:
            nonce = urandom(12)
            sealed.append((nonce, aead.encrypt(nonce, v, aad)))

    def decrypt_all() -> None:
        for nonce, ct in sealed:
            aead.decrypt(nonce, ct, aad)

    enc = len(values) / timed(encrypt_all)
    dec = len(values) / timed(decrypt_all)
    return enc, dec


def bench_sdk(values: list[bytes]) -> dict[str, tuple[float, float, int]]:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import (
        Algorithm,
        CommitmentPolicy,
        EncryptionKeyType,
        WrappingAlgorithm,
    )
    from aws_encryption_sdk.key_providers.raw import RawMasterKey, WrappingKey

    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    suite = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY  # 0x0478, no signature
    key = os.urandom(32)
    results: dict[str, tuple[float, float, int]] = {}

    providers: dict[str, dict[str, Any]] = {}
    try:
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        from aws_cryptographic_material_providers.mpl.models import (
            AesWrappingAlg,
            CreateRawAesKeyringInput,
        )

        mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
        keyring = mpl.create_raw_aes_keyring(
            input=CreateRawAesKeyringInput(
                key_namespace="bench",
                key_name="k1",
                wrapping_key=key,
                wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
            )
        )
        providers["raw AES keyring (MPL)"] = {"keyring": keyring}
    except ImportError:
        pass
    master_key = RawMasterKey(
        provider_id="bench",
        key_id=b"k1",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=key,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    providers["raw master key (legacy)"] = {"key_provider": master_key}

    context = {"table": "users"}
    for name, kwargs in providers.items():
        messages: list[bytes] = []

        def encrypt_all(kwargs: dict[str, Any] = kwargs, messages: list[bytes] = messages) -> None:
            messages.clear()
            for v in values:
                ct, _ = client.encrypt(
                    source=v, algorithm=suite, encryption_context=context, **kwargs
                )
                messages.append(ct)

        def decrypt_all(kwargs: dict[str, Any] = kwargs, messages: list[bytes] = messages) -> None:
            for ct in messages:
                client.decrypt(source=ct, **kwargs)

        encrypt_all()  # warm up
        enc = len(values) / timed(encrypt_all, repeats=1)
        dec = len(values) / timed(decrypt_all, repeats=1)
        results[name] = (enc, dec, sum(len(m) for m in messages) // len(messages))
    return results


def bench_kms_calls(fields_wanted: int) -> dict[str, float]:
    """Count KMS calls for ~fields_wanted fields through a moto server on 127.0.0.1."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        admin = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint)
        arn = admin.create_key()["KeyMetadata"]["Arn"]
        keyring = AwsKmsKeyring(arn, endpoint_url=endpoint)
        calls: list[str] = []
        keyring.client().meta.events.register(
            "before-call.kms.*", lambda model, **_: calls.append(model.name)
        )
        fe = FieldEncryption(keyring=keyring, namespace="users")
        n_records = -(-fields_wanted // len(FIELDS))
        batch = make_records(10_000)
        done = 0
        last = None
        while done < n_records:
            for record in batch[: n_records - done]:
                last = fe.encrypt_fields(record, FIELDS)
            done += min(len(batch), n_records - done)
        fields = n_records * len(FIELDS)
        generate_calls = calls.count("GenerateDataKey")
        reader = FieldEncryption(keyring=keyring, namespace="users")
        for _ in range(100_000):
            reader.decrypt_fields(last)  # type: ignore[arg-type]
        decrypt_calls = calls.count("Decrypt")

        calls.clear()
        no_cache = FieldEncryption(keyring=keyring, namespace="users", cache=False)
        for record in batch[:300]:
            no_cache.encrypt_fields(record, FIELDS)
        uncached_per_field = len(calls) / (300 * len(FIELDS))
        return {
            "fields": fields,
            "generate_calls": generate_calls,
            "decrypt_calls": decrypt_calls,
            "per_million": generate_calls * 1_000_000 / fields,
            "uncached_per_million": uncached_per_field * 1_000_000,
        }
    finally:
        server.stop()


def write_input(path: Path, n: int) -> None:
    line = (
        '{{"_id":"user-{i:08d}","name":"User {i}","ssn":"123-45-{s:04d}",'
        '"credit_card":"4111 1111 1111 {c:04d}",'
        '"personal_info":{{"email":"user{i}@example.com","city":"Boston"}},"plan":"gold"}}\n'
    )
    with path.open("w", buffering=1 << 20) as handle:
        for start in range(0, n, 10_000):
            handle.write(
                "".join(
                    line.format(i=i, s=1000 + i % 8999, c=i % 10000)
                    for i in range(start, min(n, start + 10_000))
                )
            )


def baseline_rss(workdir: Path) -> int:
    """ru_maxrss (KiB) of a child that only starts the CLI (`--help`)."""
    cmd = [sys.executable, "-m", "field_encryption.cli", "encrypt", "--help"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss


def stream_peak_rss(records: int, workdir: Path, key_file: Path) -> tuple[int, float]:
    """ru_maxrss (KiB) and records/s of a child `field-encrypt encrypt` over ``records``."""
    source = workdir / f"in-{records}.jsonl"
    target = workdir / f"out-{records}.jsonl"
    write_input(source, records)
    cmd = [
        sys.executable,
        "-m",
        "field_encryption.cli",
        "encrypt",
        str(source),
        "-o",
        str(target),
        "--local-key",
        str(key_file),
        "--table",
        "users",
        *[arg for f in FIELDS for arg in ("-f", f)],
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"field-encrypt failed on {records} records ({proc.returncode})")
    with target.open("rb") as handle:
        lines = sum(1 for _ in handle)
    if lines != records + 1:  # the records and the file trailer
        raise SystemExit(f"expected {records} output records and a trailer, found {lines} lines")
    source.unlink()
    target.unlink()
    return usage.ru_maxrss, records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--sdk-fields", type=int, default=6_000)
    parser.add_argument("--kms-fields", type=int, default=2**21)
    parser.add_argument("--stream-records", type=int, default=2_000_000)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    # streaming first, while this process is small: on Linux a child's ru_maxrss also
    # counts the memory it shared with its parent before exec
    with tempfile.TemporaryDirectory(prefix="fe-bench-") as tmp:
        workdir = Path(tmp)
        from field_encryption import create_key_file

        key_file = create_key_file(workdir / "bench-key.json", "bench")
        rss_base = baseline_rss(workdir)
        small = max(args.stream_records // 10, 1)
        rss_small, rate_small = stream_peak_rss(small, workdir, key_file)
        rss_large, rate_large = stream_peak_rss(args.stream_records, workdir, key_file)

    records = make_records(args.records)
    values = field_values(records)
    library = bench_library(records)
    lib_enc, lib_dec, lib_size = library["default"]
    old_enc, old_dec, _ = library["legacy"]
    ceil_enc, ceil_dec = bench_ceiling(values)
    sdk = bench_sdk(values[: args.sdk_fields])
    kms = bench_kms_calls(args.kms_fields)

    best_sdk_name = max(sdk, key=lambda k: sdk[k][0])
    best_sdk_enc, best_sdk_dec, _ = sdk[best_sdk_name]

    print(
        f"field_encryption benchmark: {args.records} records x {len(FIELDS)} fields "
        f"({', '.join(FIELDS)}), one core, Python {sys.version.split()[0]}"
    )
    print()
    print(f"{'implementation':<52} {'encrypt f/s':>12} {'decrypt f/s':>12} {'bytes/field':>12}")
    print("-" * 91)
    print(
        f"{'field_encryption, authenticated default (format 2)':<52} "
        f"{lib_enc:>12,.0f} {lib_dec:>12,.0f} {lib_size:>12}"
    )
    print(
        f"{'field_encryption, unauthenticated legacy (format 1)':<52} "
        f"{old_enc:>12,.0f} {old_dec:>12,.0f} {lib_size:>12}"
    )
    for name, (enc, dec, size) in sdk.items():
        label = f"AWS Encryption SDK 0x0478, {name}"
        print(f"{label:<52} {enc:>12,.0f} {dec:>12,.0f} {size:>12}")
    print(
        f"{'bare AESGCM loop (ceiling, 28 bytes overhead)':<52} "
        f"{ceil_enc:>12,.0f} {ceil_dec:>12,.0f} {'':>12}"
    )
    print()
    auth_enc, auth_dec = library["ratio"]
    print("ratios")
    print(
        f"  authenticated default / unauthenticated legacy (median of interleaved batches): "
        f"encrypt {auth_enc:5.3f}, decrypt {auth_dec:5.3f}"
    )
    print(f"  encrypt vs AWS Encryption SDK ({best_sdk_name}): {lib_enc / best_sdk_enc:8.1f}x")
    print(f"  decrypt vs AWS Encryption SDK ({best_sdk_name}): {lib_dec / best_sdk_dec:8.1f}x")
    print(
        f"  encrypt vs ceiling: {lib_enc / ceil_enc:6.2f}    decrypt vs ceiling: "
        f"{lib_dec / ceil_dec:6.2f}"
    )
    print()
    print("KMS calls (moto server on 127.0.0.1, data-key cache on)")
    print(
        f"  {kms['fields']:,.0f} fields encrypted: {kms['generate_calls']:.0f} GenerateDataKey "
        f"= {kms['per_million']:.2f} calls per million fields"
    )
    print(f"  100,000 decryptions of cached-key records: {kms['decrypt_calls']:.0f} Decrypt")
    print(
        f"  cache off, for comparison: {kms['uncached_per_million']:,.0f} calls per million fields"
    )
    print()
    print("streaming through `field-encrypt encrypt` (child process, JSON Lines)")
    print(f"  start-up only (--help): peak RSS {rss_base / 1024:7.1f} MiB")
    print(
        f"  {small:>9,} records: peak RSS {rss_small / 1024:7.1f} MiB, {rate_small:9,.0f} records/s"
    )
    print(
        f"  {args.stream_records:>9,} records: peak RSS {rss_large / 1024:7.1f} MiB, "
        f"{rate_large:9,.0f} records/s"
    )
    print(f"  peak RSS ratio {args.stream_records // small}x records: {rss_large / rss_small:.2f}")
    print()
    checks = [
        ("encrypt >= 300k fields/s", lib_enc >= TARGET_ENCRYPT),
        ("decrypt >= 500k fields/s", lib_dec >= TARGET_DECRYPT),
        ("encrypt >= 30x AWS Encryption SDK", lib_enc / best_sdk_enc >= TARGET_SDK_RATIO),
        (
            "authenticated encrypt within 15% of unauthenticated legacy",
            auth_enc >= TARGET_AUTH_RATIO,
        ),
        (
            "authenticated decrypt within 15% of unauthenticated legacy",
            auth_dec >= TARGET_AUTH_RATIO,
        ),
        (
            "<= 1 KMS call per 2^20 fields (cache on)",
            kms["generate_calls"] <= max(1, kms["fields"] // TARGET_KMS_FIELDS_PER_CALL),
        ),
        ("constant memory (2M vs 200k peak RSS within 10%)", rss_large <= rss_small * 1.10),
    ]
    print("targets")
    for name, ok in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")


if __name__ == "__main__":
    main()
