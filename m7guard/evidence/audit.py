"""`m7guard audit --evidence-bundle PATH --signing-key KEY`: pack the audit's output
directory into a signed bundle once the reports are written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from m7guard.evidence import EvidenceError
from m7guard.evidence.bundle import Packed, PackOptions, pack
from m7guard.evidence.keys import Signer


def bundle_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--evidence-bundle",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Also write a signed evidence bundle (tar.gz) of --out here "
                "(docs/evidence.md).",
            ),
            click.option(
                "--signing-key",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="PEM private key (Ed25519 or ECDSA P-256) that signs the bundle.",
            ),
            click.option(
                "--signing-kms-key-id",
                default=None,
                help="Or an AWS KMS key (ECC_NIST_P256, SIGN_VERIFY) that signs the bundle.",
            ),
        ]
    ):
        func = option(func)
    return func


def prepare_signer(
    bundle: Path | None, signing_key: Path | None, kms_key_id: str | None
) -> Signer | None:
    """The bundle's signer, read before the audit runs so a bad key fails at once."""
    from m7guard.evidence.cli import make_signer

    if bundle is None:
        if signing_key is not None or kms_key_id is not None:
            raise EvidenceError("--signing-key/--signing-kms-key-id need --evidence-bundle")
        return None
    if signing_key is None and kms_key_id is None:
        raise EvidenceError("--evidence-bundle needs --signing-key or --signing-kms-key-id")
    return make_signer(signing_key, kms_key_id, None, None)


def inventory_paths(sources: Iterable[str]) -> tuple[Path, ...]:
    """The inventory sources that are files or directories (not `host1,host2,` lists)."""
    return tuple(Path(s) for s in sources if Path(s).exists())


def write_bundle(
    signer: Signer,
    bundle: Path,
    out: Path,
    waivers: Path | None,
    inventory: Iterable[str],
    policies: Path | None,
) -> Packed:
    return pack(PackOptions(out, waivers, inventory_paths(inventory), policies), signer, bundle)
