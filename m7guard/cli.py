"""The `m7guard` command line."""

from __future__ import annotations

import sys

import click

from m7guard import __version__
from m7guard.audit.cli import audit
from m7guard.catalog.cli import catalog
from m7guard.diff import diff_command
from m7guard.docsgen import docs
from m7guard.errors import M7guardError
from m7guard.evidence.cli import evidence
from m7guard.history.cli import history
from m7guard.lab.cli import lab
from m7guard.preflight.cli import preflight
from m7guard.reports.cli import report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="m7guard")
def cli() -> None:
    """Harden Data Fabric nodes on EC2 M7i and prove it with evidence."""


cli.add_command(lab)
cli.add_command(catalog)
cli.add_command(audit)
cli.add_command(report)
cli.add_command(diff_command)
cli.add_command(history)
cli.add_command(docs)
cli.add_command(preflight)
cli.add_command(evidence)


def main() -> None:
    try:
        rv = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
