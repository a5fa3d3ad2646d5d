"""The few podman operations the lab needs, always with the runc runtime.

crun, podman's default runtime, fails on hosts with hybrid cgroups; runc works on them and
everywhere else, so every call names it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from m7guard.errors import LabError, PrerequisiteError
from m7guard.lab.runner import run

RUNC = "/usr/sbin/runc"


def base_cmd() -> list[str]:
    return ["podman", "--runtime", RUNC]


def check_installed() -> None:
    if shutil.which("podman") is None:
        raise PrerequisiteError(
            "podman is not installed: run `make deps` (or `apt-get install podman runc`)"
        )
    if not Path(RUNC).exists():
        raise PrerequisiteError(
            f"runc is not installed at {RUNC}: run `make deps` (or `apt-get install runc`)"
        )


def podman(*args: str, what: str, timeout: float = 300, check: bool = True,
           input_bytes: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return run([*base_cmd(), *args], what=what, timeout=timeout, check=check,
               input_bytes=input_bytes)


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, what="podman image exists", check=False).returncode == 0


def images(repo: str) -> list[str]:
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", repo, what="podman images")
    return [line for line in out.stdout.split() if line.startswith(repo)]


def remove_image(tag: str) -> None:
    podman("rmi", tag, what=f"removing image {tag}")


def image_in_use(tag: str) -> bool:
    out = podman("ps", "-a", "--filter", f"ancestor={tag}", "--format", "{{.ID}}",
                 what="podman ps")
    return bool(out.stdout.strip())


def import_tar(tar: Path, tag: str) -> None:
    podman("import", "--change", "CMD=/sbin/init", "--change", "LABEL=m7guard.image=node",
           str(tar), tag, what=f"podman import of {tag}", timeout=900)


def labelled(kind: str, label: str) -> list[dict[str, Any]]:
    """Containers (kind='container') or networks (kind='network') carrying `label`."""
    if kind == "container":
        out = podman("ps", "-a", "--filter", f"label={label}", "--format", "json",
                     what="podman ps")
        return json.loads(out.stdout or "[]")
    out = podman("network", "ls", "--filter", f"label={label}", "--format", "json",
                 what="podman network ls")
    return json.loads(out.stdout or "[]")


def inspect_network(name: str) -> dict[str, Any] | None:
    out = podman("network", "inspect", name, what="podman network inspect", check=False)
    if out.returncode != 0:
        return None
    data = json.loads(out.stdout or "[]")
    return data[0] if data else None


def container_state(name: str) -> dict[str, Any] | None:
    out = podman("container", "inspect", name, what="podman inspect", check=False)
    if out.returncode != 0:
        return None
    data = json.loads(out.stdout or "[]")
    return data[0] if data else None


def exec_in(name: str, *cmd: str, check: bool = True, timeout: float = 60,
            input_bytes: bytes | None = None) -> subprocess.CompletedProcess[str]:
    args = ["exec", "-i", name, *cmd] if input_bytes is not None else ["exec", name, *cmd]
    return podman(*args, what=f"{' '.join(cmd)} in {name}", check=check, timeout=timeout,
                  input_bytes=input_bytes)


def remove_container(name: str, attempts: int = 3, pause: float = 1.0) -> None:
    """`podman rm -f`, again if it failed on a container that was exiting meanwhile (runc's
    kill then fails, and the next call finds the container exited and removes it). The last
    attempt's failure is raised."""
    for attempt in range(1, attempts + 1):
        out = podman("rm", "-f", "-t", "2", name, what=f"removing container {name}",
                     timeout=120, check=attempt == attempts)
        if out.returncode == 0 or container_state(name) is None:
            return
        time.sleep(pause)


def remove_network(name: str) -> None:
    podman("network", "rm", "-f", name, what=f"removing network {name}", timeout=120)


def raise_on_missing(name: str) -> None:
    if container_state(name) is None:
        raise LabError(f"container {name} does not exist: run `m7guard lab up`")
