"""audit_logging's journald drop-in, rendered the way the role renders it."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "audit_logging"


def render(container: bool) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    return env.get_template("journald.conf.j2").render(
        ansible_managed="Ansible managed", __audit_logging_container=container, **defaults
    )


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_own_kernel_keeps_kernel_auditing_on_when_journald_restarts() -> None:
    assert "Audit=yes" in lines(render(container=False))


def test_container_leaves_the_audit_switch_alone() -> None:
    assert not [ln for ln in lines(render(container=True)) if ln.startswith("Audit=")]
    assert "Storage=persistent" in lines(render(container=True))
