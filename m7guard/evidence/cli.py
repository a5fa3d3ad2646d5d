"""`m7guard evidence`: make, sign and verify evidence bundles.

Exit codes: 0 done (verify: every check passed), 2 verify found the bundle wrong (each
failed check is named), 1 the command could not run (bad option, unreadable key or file,
KMS unreachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from m7guard.errors import M7guardError
from m7guard.evidence import EvidenceError, VerificationError
from m7guard.evidence.bundle import Packed, PackOptions, pack
from m7guard.evidence.keys import (
    KEY_TYPES,
    KmsSigner,
    PublicKey,
    Signer,
    generate_key,
    key_id,
    kms_client,
    kms_public_key,
    load_public_key,
    load_signing_key,
    public_pem,
)
from m7guard.evidence.verify import verify
from m7guard.results import STATE_LABELS, STATES


class _UsageExit1:
    """Click reports usage errors with exit code 2; here 2 means a bundle failed
    verification, so usage errors exit 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            exc.exit_code = 1
            raise


class Command(_UsageExit1, click.Command):
    pass


class Group(_UsageExit1, click.Group):
    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            exc.exit_code = 1
            raise


def kms_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--kms-key-id",
                default=None,
                help="AWS KMS key (id, ARN or alias) of spec ECC_NIST_P256 for SIGN_VERIFY.",
            ),
            click.option("--kms-region", default=None, help="AWS region of the KMS key."),
            click.option(
                "--kms-endpoint-url",
                default=None,
                help="KMS endpoint URL (default: AWS_ENDPOINT_URL or the public endpoint).",
            ),
        ]
    ):
        func = option(func)
    return func


def make_signer(
    key: Path | None, kms_key_id: str | None, region: str | None, endpoint: str | None
) -> Signer:
    """The signer of a key file or of a KMS key (exactly one)."""
    if (key is None) == (kms_key_id is None):
        raise EvidenceError("sign with a key file (--key) or a KMS key (--kms-key-id), one of them")
    if key is not None:
        return load_signing_key(key)
    assert kms_key_id is not None
    return KmsSigner(kms_key_id, kms_client(region, endpoint))


def packed_lines(packed: Packed) -> list[str]:
    return [
        f"evidence bundle: {packed.path} ({len(packed.files)} files, sha256 {packed.sha256})",
        f"signed by key {packed.keyid}",
    ]


@click.group(cls=Group)
def evidence() -> None:
    """Signed evidence bundles of an audit (see docs/evidence.md)."""


@evidence.command("pack", cls=Command)
@click.argument("audit_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle to write (BUNDLE.tar.gz).",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key (Ed25519 or ECDSA P-256) to sign with.",
)
@kms_options
@click.option(
    "--waivers",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The waivers file the audit used (default: the one the results name, if any).",
)
@click.option(
    "--inventory",
    "inventory",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Inventory file or directory the audit read; its SHA-256 goes in (repeatable).",
)
@click.option(
    "--policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Policies directory, for results that do not record their catalog's digest.",
)
@click.pass_context
def pack_command(
    ctx: click.Context,
    audit_dir: Path,
    output: Path,
    key: Path | None,
    kms_key_id: str | None,
    kms_region: str | None,
    kms_endpoint_url: str | None,
    waivers: Path | None,
    inventory: tuple[Path, ...],
    policies: Path | None,
) -> None:
    """Pack AUDIT_DIR (what `m7guard audit --out` wrote) into a signed bundle."""
    try:
        signer = make_signer(key, kms_key_id, kms_region, kms_endpoint_url)
        packed = pack(PackOptions(audit_dir, waivers, inventory, policies), signer, output)
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    for line in packed_lines(packed):
        click.echo(line)


@evidence.command("verify", cls=Command)
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM public key of the signer.",
)
@kms_options
@click.pass_context
def verify_command(
    ctx: click.Context,
    bundle: Path,
    key: Path | None,
    kms_key_id: str | None,
    kms_region: str | None,
    kms_endpoint_url: str | None,
) -> None:
    """Verify BUNDLE's signature and every file in it; exit 2 naming each failed check."""
    try:
        if (key is None) == (kms_key_id is None):
            raise EvidenceError("verify with a public key (--key) or a KMS key (--kms-key-id)")
        public: PublicKey
        if key is not None:
            public, name = load_public_key(key), str(key)
        else:
            assert kms_key_id is not None
            client = kms_client(kms_region, kms_endpoint_url)
            public, name = kms_public_key(client, kms_key_id), f"KMS key {kms_key_id}"
        if not bundle.is_file():
            raise EvidenceError(f"{bundle}: no such file")
        result = verify(bundle, public, name)
    except VerificationError as exc:
        click.echo(f"FAILED {bundle}", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        ctx.exit(2)
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    p = result.predicate
    counts = ", ".join(f"{STATE_LABELS.get(s, s)} {p.get('counts', {}).get(s, 0)}" for s in STATES)
    click.echo(
        f"OK {bundle}: {result.files} files match the manifest and the signed statement; "
        f"signature {result.algorithm} by key {result.keyid}"
    )
    click.echo(
        f"   profile {p.get('profile', {}).get('id')}, audit finished {p.get('timestamp')}, "
        f"catalog {p.get('catalog', {}).get('version')} {p.get('catalog', {}).get('digest')}"
    )
    click.echo(f"   {counts}")


@evidence.command("keygen", cls=Command)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for evidence-signing.key (mode 0600) and evidence-signing.pub.",
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(KEY_TYPES),
    default="ed25519",
    show_default=True,
    help="Key kind.",
)
@click.pass_context
def keygen_command(ctx: click.Context, out_dir: Path, kind: str) -> None:
    """Make a signing key pair (the private key unencrypted, readable by its owner only)."""
    try:
        private, public, kid = generate_key(out_dir, kind)
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"private key: {private} (mode 0600; keep it out of reports and git)")
    click.echo(f"public key: {public}")
    click.echo(f"key id: {kid}")


@evidence.command("public-key", cls=Command)
@click.option("--kms-key-id", required=True, help="AWS KMS key (id, ARN or alias).")
@click.option("--kms-region", default=None, help="AWS region of the KMS key.")
@click.option("--kms-endpoint-url", default=None, help="KMS endpoint URL.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PEM public key.",
)
@click.pass_context
def public_key_command(
    ctx: click.Context,
    kms_key_id: str,
    kms_region: str | None,
    kms_endpoint_url: str | None,
    output: Path,
) -> None:
    """Write a KMS signing key's public key (PEM), for verifying without KMS access."""
    from m7guard.evidence.bundle import write_atomic

    try:
        public = kms_public_key(kms_client(kms_region, kms_endpoint_url), kms_key_id)
        write_atomic(output, public_pem(public))
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"public key: {output} (key id {key_id(public)})")
