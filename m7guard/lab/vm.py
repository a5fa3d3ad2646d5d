"""The lab's VM node: qemu under software emulation, with an emulated NVMe drive.

Nested KVM does not work on these machines, so qemu runs with TCG, single-threaded: with one
host thread per virtual CPU (multi-threaded TCG), Debian 13's kernel was seen to panic at boot
on an `int3` left by its own code patching (a static key flipped while `sched_clock` was
marked stable), which the other virtual CPU still executed. One thread runs both virtual CPUs
in turn, so the guest never runs code another CPU is rewriting, and vm1 takes at most one of
the host's cores.

The VM boots the cached kernel and a per-lab copy-on-write overlay of the cached root disk; a
small seed disk hands it this lab's SSH host key, the controller's public key and its
hostname. SSH reaches it through a port forward on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from m7guard.errors import LabError
from m7guard.lab.image import VmImage, seed_image
from m7guard.lab.runner import run
from m7guard.lab.spec import VmNode


class VmProcess:
    def __init__(self, node: VmNode, state_dir: Path) -> None:
        self.node = node
        self.dir = state_dir
        self.pidfile = state_dir / "qemu.pid"
        self.console = state_dir / "console.log"
        self.overlay = state_dir / "root.qcow2"
        self.nvme = state_dir / "nvme.img"
        self.seed = state_dir / "seed.img"

    def pid(self) -> int | None:
        """The pid of this lab's qemu, only if that process is really ours."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if str(self.pidfile).encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def processes(self) -> list[int]:
        """Every live process started for this lab's VM (its command line names our pid file),
        including one whose pid file was lost with an interrupted run."""
        found: list[int] = []
        needle = str(self.pidfile).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in args and _alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def start(self, image: VmImage, seed_dir: Path) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stop()  # a qemu of ours that lost its pid file would hold the port
        port = self.node.ssh_port
        if not port_free(port):
            raise LabError(
                f"port {port} on 127.0.0.1 is taken by another program, so vm1's SSH forward "
                "cannot use it: stop that program or run `m7guard lab up --no-vm`. If it is "
                "the vm1 of a lab run from another checkout with the same M7GUARD_LAB_ID, run "
                "`m7guard lab down` there, or give this one another M7GUARD_LAB_ID"
            )
        if not self.overlay.exists():
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.root),
                 str(self.overlay)], what="creating vm1's disk overlay")
        if not self.nvme.exists():
            with self.nvme.open("wb") as fh:
                fh.truncate(self.node.nvme_size_mib * 1024 * 1024)
        seed_image(seed_dir, self.seed)
        self.console.unlink(missing_ok=True)
        cmd = [
            "qemu-system-x86_64",
            "-name", f"m7guard-{self.node.name}",
            "-accel", "tcg,thread=single",  # see the module's docstring
            "-m", str(self.node.memory_mib),
            "-smp", str(self.node.cpus),
            "-display", "none",
            "-daemonize",
            "-pidfile", str(self.pidfile),
            "-serial", f"file:{self.console}",
            "-kernel", str(image.kernel),
            "-initrd", str(image.initrd),
            "-append", "console=ttyS0 root=LABEL=m7g-root rw net.ifnames=0",
            "-drive", f"file={self.overlay},if=virtio,format=qcow2",
            "-drive", f"file={self.seed},if=virtio,format=raw,readonly=on",
            "-drive", f"file={self.nvme},if=none,id=nv0,format=raw",
            "-device", f"nvme,serial={self.node.nvme_serial},drive=nv0",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=n0,romfile=",
        ]
        run(cmd, what="starting vm1 (qemu)", timeout=60)
        if not self.running():
            raise LabError(f"qemu for vm1 exited at once; its console log is {self.console}")

    def stop(self, timeout: float = 15) -> bool:
        pids = self.processes()
        for pid in pids:
            self._stop_pid(pid, timeout)
        self.pidfile.unlink(missing_ok=True)
        return bool(pids)

    def _stop_pid(self, pid: int, timeout: float) -> None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                raise LabError(f"qemu (pid {pid}) for {self.node.name} did not exit after SIGKILL")

    def console_tail(self, lines: int = 15) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except FileNotFoundError:
            return "(no console output)"
        return "\n".join(text.strip().splitlines()[-lines:])


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def port_free(port: int) -> bool:
    """True when qemu can listen on 127.0.0.1:PORT. Its port forward binds with SO_REUSEADDR,
    as this probe does: the connections a stopped vm1 still had (an SSH master open to it)
    keep qemu's end of each on the port for a while (FIN-WAIT-2, then TIME_WAIT), which does
    not keep the next qemu from listening; only another listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
