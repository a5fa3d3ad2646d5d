"""Helpers for tests that drive the local lab: the m7guard CLI, SSH and Ansible on its nodes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from m7guard.lab.manager import Lab, LabPaths, default_paths
from m7guard.lab.spec import MATRIX

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The tests' image cache belongs to this checkout: `lab down --purge` in one checkout's tests
# must not meet an image that another checkout's lab still runs on.
os.environ.setdefault(
    "M7GUARD_CACHE_DIR",
    f"/var/cache/m7guard-test/{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}",
)
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
# The tests' lab is the release matrix (m7guard.lab.spec.MATRIX: node1 bookworm, node2
# bullseye, node3 and vm1 trixie), so that site.yml, the audit and the mutation battery run on
# every Debian release docs/platforms.md lists: M7GUARD_LAB_MATRIX is 1 unless it is set, and
# every `m7guard lab up` of the tests, and of the processes they start, reads it.
# M7GUARD_LAB_MATRIX=0 gives a lab with every node on bookworm (a shorter run; not `make test`).
os.environ.setdefault("M7GUARD_LAB_MATRIX", "1")
MATRIX_LAB = os.environ["M7GUARD_LAB_MATRIX"].lower() in ("1", "true", "yes")


WHEELHOUSE = ROOT / "tests" / "tools" / "wheelhouse"


def wheelhouse(part: str) -> Path:
    """One directory of tests/tools/wheelhouse (downloaded by scripts/test-tools.sh): `nodes`,
    the executor extra for Debian 12's Python; `deps-cp39`, the field-encryption library's
    dependencies for Debian 11's (field_encryption_dependency_wheelhouse)."""
    if not (WHEELHOUSE / ".complete").is_file() or not (WHEELHOUSE / part).is_dir():
        pytest.fail(f"tests/tools/wheelhouse/{part} is missing: run scripts/test-tools.sh",
                    pytrace=False)
    return WHEELHOUSE / part


def nodes_of_release(release: str) -> list[str]:
    """The container nodes of the tests' lab that run RELEASE (the matrix has one of each;
    the default lab runs every node on bookworm)."""
    return [n.name for n in lab_model().spec.containers if n.release == release]


def lab_paths() -> LabPaths:
    """This checkout's lab (M7GUARD_LAB_ID selects one of several on a machine)."""
    return default_paths(ROOT)


def lab_model() -> Lab:
    """The tests' lab as `m7guard lab up` builds it, whether it is up or not."""
    return Lab(lab_paths(), say=lambda _m: None, releases=dict(MATRIX) if MATRIX_LAB else None)


@dataclass
class LabHandle:
    root: Path
    inventory: Path
    shared: bool = False
    """ssh over one connection kept open per node (`sharing`)."""

    def m7guard(self, *args: str, timeout: float = 1200, check: bool = True,
                ) -> subprocess.CompletedProcess[str]:
        return run_m7guard(*args, timeout=timeout, check=check)

    def ssh_args(self, node: str) -> list[str]:
        return lab_model().ssh_args(node)

    def sharing(self) -> LabHandle:
        """This handle with `ssh` over one connection per node, kept open by an OpenSSH master
        (ControlMaster) for five minutes after its last command: for the many short commands of
        the mutation battery and vm1's story, where each new login is a key exchange and a
        PAM session (0.3 s on a container node, about 2 s on vm1 under emulation). Never for a
        test whose claim is that a login works, or that a change leaves one possible: that
        needs a new connection, which the plain handle makes every time. Before vm1 reboots
        or is reset, `close_shared` ends its connection."""
        return LabHandle(self.root, self.inventory, shared=True)

    def _control(self) -> list[str]:
        control = lab_paths().state / "ssh-control"
        control.mkdir(mode=0o700, parents=True, exist_ok=True)
        return ["-o", "ControlMaster=auto", "-o", f"ControlPath={control}/%C",
                "-o", "ControlPersist=300", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3"]

    def close_shared(self, node: str) -> None:
        """End the kept connection to node, if there is one (`ssh -O exit`)."""
        base = self.ssh_args(node)
        subprocess.run([base[0], *self._control(), *base[1:], "-O", "exit"],
                       capture_output=True, timeout=30, check=False)

    def ssh(self, node: str, command: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        args = self.ssh_args(node)
        if self.shared:
            args = [args[0], *self._control(), *args[1:]]
        proc = subprocess.run([*args, command], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"on {node}: {command!r} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def ansible(self, pattern: str, *args: str, check: bool = True,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "ansible"), "-i", str(self.inventory), pattern, *args],
            capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ansible {pattern} {args} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def playbook(self, *args: str, check: bool = True,
                 timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.inventory), *args],
            capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ansible-playbook {args} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc


def run_m7guard(*args: str, timeout: float = 1200,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "m7guard"), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode != 0:
        pytest.fail(f"m7guard {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n"
                    f"{proc.stderr}", pytrace=False)
    return proc


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of an ansible-playbook run: host -> {ok, changed, failed, ...}."""
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def configure_collector(lab: LabHandle) -> None:
    """The collector as syslog and time server (tests/fixtures/audit_logging/collector.yml).
    Tests of both tracks of `make test` ask for it: a lock keeps two runs of the play on the
    collector from meeting."""
    lock = lab_paths().state / "collector.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        lab.playbook("tests/fixtures/audit_logging/collector.yml", timeout=900)
