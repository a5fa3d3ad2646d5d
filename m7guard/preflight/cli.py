"""`m7guard preflight`: catch a dangerous deployment in CI, before any host is touched.

Exit codes are those of `m7guard audit`: 0 nothing fails at or above --fail-on, 2 something
does, 1 preflight itself could not run.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from m7guard.errors import M7guardError
from m7guard.inventory import inventory_option
from m7guard.locate import shipped_root
from m7guard.preflight.engine import PreflightOptions, run_preflight
from m7guard.reports import FORMATS, parse_formats, render
from m7guard.reports.console import print_results
from m7guard.results import FAIL_ON_CHOICES


@click.command()
@inventory_option("Ansible inventory of the deployment (e.g. inventories/example).")
@click.option("--profile", default="baseline", show_default=True,
              help="Profile in policies/profiles/ (pci_dss requires MFA for admins).")
@click.option("--limit", default=None, help="Hosts or groups (Ansible pattern).")
@click.option("--aws", is_flag=True,
              help="Also check the AWS side (instances, IMDSv2, EBS keys, security groups, "
                   "KMS rotation) with boto3; read-only.")
@click.option("--aws-region", default=None, help="AWS region (default: the environment's).")
@click.option("--aws-profile", default=None, help="AWS named profile.")
@click.option("--controller-address", default=None,
              help="The address the nodes see the controller connect from (default: "
                   "zero_trust_network_controller_address, else this machine's route to them).")
@click.option("--playbook", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The playbook whose plays decide which roles a host gets "
                   "(default: playbooks/site.yml).")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True,
              help="Variables as ansible-playbook takes them: @FILE or key=value (repeat).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports/preflight"), show_default=True,
              help="Directory for results.json and the reports.")
@click.option("--format", "formats", default="json", show_default=True,
              help=f"Comma separated: {','.join(FORMATS)}. results.json is always written.")
@click.option("--fail-on", type=click.Choice(FAIL_ON_CHOICES), default="medium",
              show_default=True,
              help="Exit 2 if a rule of at least this severity fails, any rule errors "
                   "or nothing passed or failed (none: never).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A directory with roles/, playbooks/ and policies/ (default: those m7guard "
                   "ships: the checkout's, or the installed package's).")
@click.pass_context
def preflight(ctx: click.Context, inventory: tuple[str, ...], profile: str, limit: str | None,
              aws: bool, aws_region: str | None, aws_profile: str | None,
              controller_address: str | None, playbook: Path | None,
              extra_vars: tuple[str, ...], out: Path, formats: str,
              fail_on: str, root: Path | None) -> None:
    """Verify a deployment before it happens: role variables, policy, playbooks, AWS."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        wanted = parse_formats(formats)
        with err.status("preflight: reading the inventory and the roles"):
            results = run_preflight(PreflightOptions(
                inventory=inventory, root=root.resolve() if root else shipped_root(),
                profile=profile, limit=limit,
                aws=aws, aws_region=aws_region, aws_profile=aws_profile,
                controller_address=controller_address, playbook=playbook,
                extra_vars=list(extra_vars),
            ))
        written = render(results, wanted, out)
    except M7guardError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        ctx.exit(1)
    print_results(results, written, fail_on, err)
    ctx.exit(results.exit_code(fail_on))
