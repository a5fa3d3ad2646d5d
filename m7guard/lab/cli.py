"""`m7guard lab`: the local stand-in for an M7i VPC."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from m7guard.lab.manager import Lab, default_paths, lab_id_from_env, state_json
from m7guard.lab.spec import DEFAULT_RELEASE, MATRIX, RELEASES, spec_for

_root_option = click.option(
    "--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Project checkout that holds the lab's state (.lab/) and inventory (default: here).",
)


def _lab(root: Path | None, console: Console, releases: dict[str, str] | None = None) -> Lab:
    def say(message: str) -> None:
        console.print(f"[bold cyan]lab[/]: {escape(message)}", highlight=False)

    return Lab(default_paths(root), say=say, releases=releases)


@click.group()
def lab() -> None:
    """Build, inspect and remove the local lab (podman containers and a qemu VM)."""


@lab.command()
@click.option("--no-vm", is_flag=True, help="Skip the VM node vm1 (quicker).")
@click.option("--release", type=click.Choice(RELEASES), default=None,
              help=f"Every node on this Debian release (default: {DEFAULT_RELEASE}, or the "
              "releases the lab is up with).")
@click.option("--matrix", is_flag=True, envvar="M7GUARD_LAB_MATRIX", show_envvar=True,
              help="One data node per release: " + ", ".join(
                  f"{node} {release}" for node, release in MATRIX.items())
              + f"; the other nodes on {DEFAULT_RELEASE}.")
@_root_option
def up(no_vm: bool, release: str | None, matrix: bool, root: Path | None) -> None:
    """Bring the lab up (idempotent; cleans what an interrupted run left)."""
    console = Console(stderr=True, soft_wrap=True)
    if release and matrix:
        raise click.UsageError("--release and --matrix are exclusive")
    releases = None
    if matrix:
        releases = dict(MATRIX)
    elif release:
        releases = {name: release for name in spec_for(lab_id_from_env()).node_names}
    started = time.monotonic()
    the_lab = _lab(root, console, releases)
    with console.status("bringing the lab up", spinner="dots"):
        report = the_lab.up(with_vm=not no_vm)
    took = time.monotonic() - started
    if report.changed:
        console.print(
            f"lab is up in {took:.0f} s: created {', '.join(report.created) or 'nothing'}"
            + (f"; built {', '.join(report.built_images)}" if report.built_images else "")
        )
    else:
        console.print(f"lab is up, nothing to do ({took:.0f} s): every node was already running")
    console.print(f"inventory: {the_lab.paths.inventory}")


@lab.command()
@click.option("--purge", is_flag=True, help="Also remove the cached node images.")
@_root_option
def down(purge: bool, root: Path | None) -> None:
    """Remove every container, network, VM and per-lab file of the lab."""
    console = Console(stderr=True, soft_wrap=True)
    removed = _lab(root, console).down(purge=purge)
    for item in removed:
        console.print(f"removed {item}")
    if not removed:
        console.print("nothing to remove: no lab here")


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_root_option
def status(as_json: bool, root: Path | None) -> None:
    """Show each node's state and address."""
    console = Console(soft_wrap=True)
    rows = _lab(root, console).status()
    if as_json:
        click.echo(state_json(rows))
        return
    table = Table("node", "kind", "state", "ssh address", "release")
    for row in rows:
        table.add_row(row.name, row.kind, row.state, row.address, row.release)
    console.print(table)


@lab.command()
@click.argument("node")
@_root_option
def reset(node: str, root: Path | None) -> None:
    """Replace NODE with a fresh node from the cached image (tests use it for a clean start)."""
    console = Console(stderr=True, soft_wrap=True)
    started = time.monotonic()
    _lab(root, console).reset(node)
    console.print(f"{node} is fresh ({time.monotonic() - started:.0f} s)")


@lab.command()
@_root_option
def inventory(root: Path | None) -> None:
    """Write the lab's Ansible inventory again and print it."""
    path = _lab(root, Console(stderr=True, soft_wrap=True)).write_inventory()
    click.echo(path.read_text(), nl=False)


@lab.command(context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@_root_option
def ssh(node: str, command: tuple[str, ...], root: Path | None) -> None:
    """Open a root shell on NODE (or run COMMAND there)."""
    the_lab = _lab(root, Console(stderr=True, soft_wrap=True))
    if node not in the_lab.spec.node_names:
        raise click.BadParameter(
            f"unknown node {node!r}; the lab has {', '.join(the_lab.spec.node_names)}",
            param_hint="NODE",
        )
    args = the_lab.ssh_args(node)
    if not command:
        args = [*_drop_batch_mode(args), "-t"]
    os.execvp("ssh", [*args, *command])  # noqa: S606 - replaces this process with ssh


def _drop_batch_mode(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "-o" and i + 1 < len(args) and args[i + 1] == "BatchMode=yes":
            skip = True
            continue
        out.append(arg)
    return out
