"""The M7i size of a checked host and the tuning values that size calls for.

The size table lives once, in m7guard.m7i, which the m7i_profile role's filters use too; the
tuning derivations live once, in the kernel_tuning filters of the collection's plugins
(plugins/filter/kernel_tuning.py), which the checks load from the plugins beside the roles
m7guard ships (m7guard.locate: the source tree's, or the installed package's copy), or beside
$M7GUARD_ROLES; so the check and the remediation can never disagree on a number.

A host's instance type is the inventory's `m7i_instance_type` when the audit has an Ansible
inventory, else the profile m7i_profile recorded on the host
(/etc/ansible/facts.d/m7i_profile.fact, e.g. when the type came from IMDSv2).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from m7guard import m7i
from m7guard.locate import import_file, shipped

ROLES_ENV = "M7GUARD_ROLES"
PROFILE_FACT = "/etc/ansible/facts.d/m7i_profile.fact"
_PLUGINS = {
    "kernel_tuning": "filter/kernel_tuning.py",
}


class SizingUnavailableError(RuntimeError):
    """The roles' size table cannot be found, so size-derived values cannot be judged."""


def roles_dir() -> Path:
    explicit = os.environ.get(ROLES_ENV)
    return Path(explicit) if explicit else shipped("roles")


def plugins_dir() -> Path:
    """The collection's plugins/, beside the roles directory."""
    return roles_dir().parent / "plugins"


@cache
def plugin(name: str) -> ModuleType:
    """The filter plugin module `name` of the collection's plugins, imported once."""
    path = plugins_dir() / _PLUGINS[name]
    if not path.is_file():
        raise SizingUnavailableError(
            f"{path} not found: m7guard's roles are missing from this installation; set "
            f"{ROLES_ENV} to an m7guard roles/ directory"
        )
    try:
        return import_file(f"_m7guard_sizing_{name}", path)
    except ImportError as exc:
        raise SizingUnavailableError(str(exc)) from exc


def inventory_type(host: Any) -> str:
    """The host's m7i_instance_type from the Ansible inventory ('' without one)."""
    backend = host.backend
    if getattr(backend, "NAME", "") != "ansible":
        return ""
    value = backend.get_variables().get("m7i_instance_type") or ""
    return str(value).strip().lower()


def recorded_profile(host: Any) -> dict[str, Any] | None:
    """The profile m7i_profile recorded on the host, or None."""
    result = host.run("cat %s", PROFILE_FACT)
    if result.rc != 0:
        return None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "network_baseline_gbps" in data else None


def host_profile(host: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(profile, how it was found) of a host; profile is None when its size is unknown."""
    pinned = inventory_type(host)
    recorded = recorded_profile(host)
    how: dict[str, Any] = {
        "inventory_type": pinned or None,
        "recorded_type": recorded.get("instance_type") if recorded else None,
    }
    if pinned:
        how["source"] = "inventory"
        try:
            return m7i.profile(pinned, "inventory"), how
        except ValueError as exc:
            how["error"] = str(exc)
            return None, how
    if recorded:
        how["source"] = PROFILE_FACT
        return recorded, how
    how["source"] = None
    return None, how


def network_targets(profile: dict[str, Any], rtt_ms: float) -> dict[str, int]:
    """Minimum socket buffer sizes and netdev backlog for the profile's bandwidth."""
    tuning = plugin("kernel_tuning")
    gbps = float(profile["network_baseline_gbps"])
    buffers = tuning.network_buffers(gbps, float(rtt_ms))
    return {
        "bandwidth_gbps": gbps,
        "rtt_ms": float(rtt_ms),
        "bdp_bytes": buffers["bdp_bytes"],
        "rmem_max": buffers["tcp_rmem_max"],
        "wmem_max": buffers["tcp_wmem_max"],
        "netdev_max_backlog": tuning.netdev_backlog(gbps),
    }
