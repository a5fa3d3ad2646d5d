"""Bringing the lab up, describing it and taking it down."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from m7guard.errors import LabError, PrerequisiteError
from m7guard.lab import podman
from m7guard.lab.image import ImageCache, Recipe, VmImage
from m7guard.lab.inventory import build_inventory, known_hosts_lines, render_inventory
from m7guard.lab.runner import run
from m7guard.lab.spec import LAB_LABEL, ContainerNode, LabSpec, Network, spec_for
from m7guard.lab.vm import VmProcess

Say = Callable[[str], None]

DEFAULT_CACHE_DIR = Path("/var/cache/m7guard")


@dataclass
class LabPaths:
    root: Path
    cache: Path
    lab_id: int = 0

    @property
    def suffix(self) -> str:
        return "" if self.lab_id == 0 else f"-{self.lab_id}"

    @property
    def state(self) -> Path:
        return self.root / f".lab{self.suffix}"

    @property
    def ssh(self) -> Path:
        return self.state / "ssh"

    @property
    def key(self) -> Path:
        return self.ssh / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh / "known_hosts"

    @property
    def marker(self) -> Path:
        """Present while a `lab up` runs; left behind only by a run that was killed."""
        return self.state / "up-in-progress"

    @property
    def releases(self) -> Path:
        """Each node's Debian release, as the last `lab up` was given it."""
        return self.state / "releases.json"

    @property
    def inventory(self) -> Path:
        return self.root / "inventories" / "lab" / f"hosts{self.suffix}.yml"

    def node_dir(self, name: str) -> Path:
        return self.state / "nodes" / name


@dataclass
class UpReport:
    built_images: list[str] = field(default_factory=list)
    reused_images: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.built_images or self.created or self.cleaned)


@dataclass
class NodeStatus:
    name: str
    kind: str
    state: str
    address: str
    release: str


def lab_id_from_env() -> int:
    raw = os.environ.get("M7GUARD_LAB_ID", "0") or "0"
    try:
        lab_id = int(raw)
    except ValueError:
        raise LabError(f"M7GUARD_LAB_ID must be a number from 0 to 9, not {raw!r}") from None
    if not 0 <= lab_id <= 9:
        raise LabError(f"M7GUARD_LAB_ID must be a number from 0 to 9, not {raw!r}")
    return lab_id


def inotify_hint() -> str:
    """systemd in every node takes inotify instances from root's per-user limit; when the
    limit is used up, new nodes die at once (exit 255). Say so when that is the case."""
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    except (OSError, ValueError):
        return ""
    used = 0
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            used += sum(1 for fd in fd_dir.iterdir() if os.readlink(fd) == "anon_inode:inotify")
        except OSError:
            continue
    if used < limit - 8:
        return ""
    return (f"; root uses {used} inotify instances of fs.inotify.max_user_instances={limit}: "
            "stop other labs or containers (`M7GUARD_LAB_ID=N m7guard lab down`), or raise "
            "the limit on this host (sysctl fs.inotify.max_user_instances=512)")


def default_paths(root: Path | None = None) -> LabPaths:
    cache = Path(os.environ.get("M7GUARD_CACHE_DIR", str(DEFAULT_CACHE_DIR)))
    return LabPaths(root=(root or Path.cwd()).resolve(), cache=cache, lab_id=lab_id_from_env())


def check_prerequisites(with_vm: bool) -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "the lab needs root (podman networks with fixed subnets, debootstrap): "
            "run it as root, e.g. `sudo make demo`"
        )
    podman.check_installed()
    tools = {
        "debootstrap": "debootstrap",
        "ssh": "openssh-client",
        "ssh-keygen": "openssh-client",
        "mkfs.ext4": "e2fsprogs",
        "tar": "tar",
    }
    if with_vm:
        tools |= {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils"}
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise PrerequisiteError(
                f"{tool} is not installed: run `make deps` (or `apt-get install {package}`)"
            )


class Lab:
    def __init__(self, paths: LabPaths, spec: LabSpec | None = None, say: Say = print,
                 releases: dict[str, str] | None = None) -> None:
        """RELEASES (node -> Debian release) for `lab up`; without it, those the lab was
        brought up with (paths.releases), or every node on the default release."""
        self.paths = paths
        self.requested_releases = releases
        base = spec or spec_for(paths.lab_id)
        try:
            self.spec = base.with_releases(releases if releases is not None else self._saved())
        except ValueError as exc:
            raise LabError(f"lab releases: {exc}") from exc
        self.say = say
        self._caches: dict[str, ImageCache] = {}
        self.images = self.image_cache(self.spec.vm.release)
        self.label = f"{LAB_LABEL}={self.spec.name}"
        self.vm = VmProcess(self.spec.vm, paths.node_dir(self.spec.vm.name))

    def _saved(self) -> dict[str, str]:
        try:
            data = json.loads(self.paths.releases.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabError(f"{self.paths.releases}: unreadable ({exc}): run `m7guard lab down`"
                           ) from exc
        if not isinstance(data, dict):
            raise LabError(f"{self.paths.releases}: not a map of node to release")
        return {str(k): str(v) for k, v in data.items()}

    def image_cache(self, release: str) -> ImageCache:
        """The images of one Debian release (one recipe each, cached side by side)."""
        if release not in self._caches:
            self._caches[release] = ImageCache(self.paths.cache, Recipe(suite=release))
        return self._caches[release]

    # -- locking and interrupted runs ------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One command at a time per lab (the lock dies with its process)."""
        # One lock per lab (name), not per checkout: numbered labs do not wait for each other.
        lock_dir = Path("/run/lock")
        if not lock_dir.is_dir():
            lock_dir = self.paths.cache
            lock_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_dir / f"m7guard-lab-{self.spec.name}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.say("another m7guard lab command is running here: waiting for it")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _interrupted_run(self) -> int | None:
        try:
            return int(self.paths.marker.read_text().strip() or "0")
        except (FileNotFoundError, ValueError):
            return None

    # -- up -------------------------------------------------------------------

    def up(self, with_vm: bool = True) -> UpReport:
        check_prerequisites(with_vm)
        report = UpReport()
        with self.locked():
            stale = self._interrupted_run()
            if stale is not None:
                self.say(
                    f"a previous `lab up` (pid {stale}) was interrupted: removing what it left"
                )
                report.cleaned += self._teardown(keep_keys=True)
            self._check_releases()
            self.paths.state.mkdir(parents=True, exist_ok=True)
            self.paths.marker.write_text(str(os.getpid()))
            self._ensure_keys()
            self.paths.releases.write_text(json.dumps(self.spec.releases_of(), indent=2) + "\n")

            tags, vm_image = self._ensure_images(with_vm or self.vm.running(), report)

            # vm1 first: its boot under emulation is the longest wait of `lab up`, and it
            # needs none of the podman networks, so the containers start while it boots
            if vm_image is not None:
                if self.vm.running():
                    report.unchanged.append(self.spec.vm.name)
                else:
                    self.say(f"{self.spec.vm.name}: starting qemu (software emulation)")
                    self.vm.start(vm_image, self.paths.node_dir(self.spec.vm.name) / "seed")
                    report.created.append(self.spec.vm.name)
            self._ensure_networks(report)
            for node in self.spec.containers:
                self._ensure_container(node, tags[node.release], report)

            self._wait_ready(report)
            self._write_inventory()
            self.paths.marker.unlink()
        return report

    def _ensure_images(self, want_vm: bool, report: UpReport) -> tuple[dict[str, str],
                                                                       VmImage | None]:
        """Each release's node image, and vm1's disk when WANT_VM, built where the cache lacks
        them. Releases are built side by side: debootstrap waits on the archive much of the
        time. A release's node image and VM disk come from its one tree, so they are built in
        turn. The cache is locked once for them all: one lab builds at a time on a machine."""
        container_releases = {n.release for n in self.spec.containers}
        releases = sorted(container_releases | ({self.spec.vm.release} if want_vm else set()))

        def build(release: str) -> tuple[tuple[str, bool] | None, tuple[VmImage, bool] | None]:
            cache = self.image_cache(release)
            say = self.say if len(releases) == 1 else (
                lambda text: self.say(f"[Debian {release}] {text}"))
            node = cache.ensure_container_image(say) if release in container_releases else None
            vm = (cache.ensure_vm_image(say) if want_vm and release == self.spec.vm.release
                  else None)
            return node, vm

        with self.images.locked(self.say):
            with ThreadPoolExecutor(max_workers=len(releases)) as pool:
                futures = [(release, pool.submit(build, release)) for release in releases]
            # every build has ended here; the first release that failed raises its error
            built = [(release, future.result()) for release, future in futures]
        tags: dict[str, str] = {}
        vm_image = None
        for release, (node, vm) in built:
            if node is not None:
                tags[release], fresh = node
                (report.built_images if fresh else report.reused_images).append(tags[release])
                self.say(("built" if fresh else "reusing cached")
                         + f" node image {tags[release]} (Debian {release})")
            if vm is not None:
                vm_image, fresh = vm
                what = f"VM disk {self.images.vm_dir} (Debian {release})"
                (report.built_images if fresh else report.reused_images).append(what)
                self.say(("built" if fresh else "reusing cached") + f" {what}")
        return tags, vm_image

    def _check_releases(self) -> None:
        """A lab that is up keeps its nodes' releases: another set needs `lab down` first
        (a running VM would otherwise keep the disk of its old release)."""
        saved = self._saved()
        if self.requested_releases is None or not saved:
            return
        if saved != self.spec.releases_of() and (self.vm.running() or any(
                podman.container_state(self.spec.container_name(n)) is not None
                for n in self.spec.containers)):
            now = ", ".join(f"{k} {v}" for k, v in sorted(saved.items()))
            raise LabError(f"the lab is up with other releases ({now}): run `m7guard lab down` "
                           "first")

    def _ensure_keys(self) -> None:
        self.paths.ssh.mkdir(parents=True, exist_ok=True)
        self.paths.ssh.chmod(0o700)
        if not self.paths.key.exists():
            comment = f"m7guard-lab-{self.spec.name}"
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                 "-f", str(self.paths.key)], what="generating the lab's SSH key")
        pub = (self.paths.key.with_suffix(".pub")).read_text()
        for name in self.spec.node_names:
            files = self.paths.node_dir(name) / "seed" / "files"
            hostkey = files / "etc/ssh/ssh_host_ed25519_key"
            if not hostkey.exists():
                hostkey.parent.mkdir(parents=True, exist_ok=True)
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                     "-f", str(hostkey)], what=f"generating {name}'s SSH host key")
            auth = files / "root/.ssh/authorized_keys"
            auth.parent.mkdir(parents=True, exist_ok=True)
            (files / "root").chmod(0o700)
            auth.parent.chmod(0o700)
            auth.write_text(pub)
            auth.chmod(0o600)
            (files / "etc/hostname").write_text(f"{name}\n")
        for node in self.spec.containers:
            write_route_unit(self.paths.node_dir(node.name) / "seed" / "files",
                             self.spec.network(node.ssh_zone))

    def _ensure_networks(self, report: UpReport) -> None:
        for net in self.spec.networks:
            name = net.podman_name(self.spec.name)
            info = podman.inspect_network(name)
            if info is not None:
                subnets = {s.get("subnet") for s in info.get("subnets", [])}
                if subnets == {str(net.ipv4), str(net.ipv6)}:
                    continue
                if info.get("labels", {}).get(LAB_LABEL) != self.spec.name:
                    raise LabError(
                        f"a podman network named {name} exists and is not this lab's: "
                        f"remove it (`podman network rm {name}`) or rename it"
                    )
                podman.remove_network(name)
            self.say(f"network {name}: {net.ipv4}, {net.ipv6}")
            podman.podman(
                "network", "create", "--label", self.label, "--ipv6",
                "--subnet", str(net.ipv4), "--gateway", str(net.gateway4),
                "--subnet", str(net.ipv6), "--gateway", str(net.gateway6),
                name, what=f"creating network {name} ({net.ipv4})",
            )
            report.created.append(f"network {name}")

    def _attachments(self, node: ContainerNode) -> list[str]:
        """podman's --network value for each of the node's zones: its addresses there."""
        return [f"{self.spec.network(zone).podman_name(self.spec.name)}:"
                f"ip={self.spec.address4(node, zone)},ip={self.spec.address6(node, zone)},"
                f"mac={self.spec.mac(node, zone)}" for zone in node.zones]

    def _ensure_container(self, node: ContainerNode, tag: str, report: UpReport) -> None:
        cname = self.spec.container_name(node)
        attachments = self._attachments(node)
        # a container made with other addresses (an older m7guard) is replaced like one of an
        # older image
        networks = hashlib.sha256("\n".join(attachments).encode()).hexdigest()[:16]
        state = podman.container_state(cname)
        if state is not None:
            labels = state.get("Config", {}).get("Labels") or {}
            running = state.get("State", {}).get("Running", False)
            if (running and labels.get("m7guard.image") == tag
                    and labels.get("m7guard.networks") == networks):
                report.unchanged.append(node.name)
                return
            self.say(f"{node.name}: replacing a stopped or outdated container")
            podman.remove_container(cname)
        self.say(f"{node.name}: starting container ({', '.join(node.zones)})")
        args = [
            "create", "--name", cname, "--hostname", node.name,
            "--label", self.label, "--label", f"m7guard.node={node.name}",
            "--label", f"m7guard.image={tag}", "--label", f"m7guard.networks={networks}",
            "--privileged", "--systemd=always",
            "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:4096",
        ]
        for attachment in attachments:
            args += ["--network", attachment]
        args += [tag, "/sbin/init"]
        podman.podman(*args, what=f"creating container {cname}")
        seed = self.paths.node_dir(node.name) / "seed" / "files"
        podman.podman("cp", f"{seed}/.", f"{cname}:/", what=f"copying {node.name}'s seed files")
        self._start(cname)
        report.created.append(node.name)

    def _start(self, cname: str, attempts: int = 4) -> None:
        """Start a container, retrying: with several labs on one machine, network set-up
        (netavark and the firewall's lock) can fail once and work a second later."""
        for attempt in range(1, attempts + 1):
            proc = podman.podman("start", cname, what=f"starting container {cname}", check=False)
            state = podman.container_state(cname) or {}
            if proc.returncode == 0 and state.get("State", {}).get("Running"):
                return
            if attempt == attempts:
                detail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                raise LabError(f"container {cname} does not start after {attempts} attempts "
                               f"({detail}){inotify_hint()}")
            self.say(f"{cname} did not start (attempt {attempt}), trying again")
            time.sleep(2 * attempt)

    def reset(self, name: str) -> None:
        """Replace one node with a fresh one from the cached image (same addresses, same keys)."""
        if name not in self.spec.node_names:
            raise LabError(f"unknown node {name!r}; the lab has {', '.join(self.spec.node_names)}")
        with self.locked():
            if not self.paths.key.exists():
                raise LabError("the lab is not up: run `m7guard lab up` first")
            if name == self.spec.vm.name:
                with self.images.locked(self.say):
                    image, _ = self.images.ensure_vm_image(self.say)
                self.vm.stop()
                self.vm.overlay.unlink(missing_ok=True)
                self.vm.nvme.unlink(missing_ok=True)
                self.say(f"{name}: booting a fresh disk")
                self.vm.start(image, self.paths.node_dir(name) / "seed")
            else:
                node = self.spec.container(name)
                cache = self.image_cache(node.release)
                with cache.locked(self.say):
                    tag, _ = cache.ensure_container_image(self.say)
                podman.remove_container(self.spec.container_name(node))
                self._ensure_container(node, tag, UpReport())
            self._wait_ready(UpReport(), only={name})
            self._write_inventory()

    def _wait_ready(self, report: UpReport, timeout: float = 600,
                    only: set[str] | None = None) -> None:
        pending = {n.name for n in self.spec.containers}
        if self.vm.running():
            pending.add(self.spec.vm.name)
        if only is not None:
            pending &= only
        started = time.monotonic()
        self.say(f"waiting for {len(pending)} nodes to boot and answer SSH")
        entries = self._known_hosts_entries()
        # replaced, never rewritten in place: SSH clients of the running lab read it meanwhile
        tmp = self.paths.known_hosts.with_suffix(".tmp")
        tmp.write_text(known_hosts_lines(entries))
        os.replace(tmp, self.paths.known_hosts)
        kicks: dict[str, int] = {}
        while pending:
            for name in sorted(pending):
                if name != self.spec.vm.name:
                    cname = self.spec.container_name(self.spec.container(name))
                    state = podman.container_state(cname) or {}
                    if not state.get("State", {}).get("Running"):
                        self._start(cname)
                    elif (time.monotonic() - started > 90 * (kicks.get(name, 0) + 1)
                          and kicks.get(name, 0) < 2 and self._boot_stalled(cname)):
                        # systemd in a container can stall its boot with every job waiting
                        # (seen with many nodes starting at once): start it again.
                        kicks[name] = kicks.get(name, 0) + 1
                        self.say(f"{name}: boot stalled, restarting it")
                        podman.podman("stop", "-t", "2", cname, what=f"stopping {cname}",
                                      check=False, timeout=120)
                        self._start(cname)
                if self._ssh_ok(name):
                    pending.discard(name)
            if not pending:
                break
            if time.monotonic() - started > timeout:
                detail = ""
                if self.spec.vm.name in pending:
                    detail = f"\nvm1 console (last lines):\n{self.vm.console_tail()}"
                raise LabError(
                    f"nodes not answering SSH after {timeout:.0f} s: {', '.join(sorted(pending))}"
                    + detail
                )
            time.sleep(2)
        self.say(f"all nodes answer SSH ({time.monotonic() - started:.0f} s)")

    def _boot_stalled(self, cname: str) -> bool:
        proc = podman.exec_in(cname, "systemctl", "is-system-running", check=False, timeout=20)
        return proc.stdout.strip() in ("initializing", "starting", "")

    def ssh_target(self, name: str) -> tuple[str, int]:
        if name == self.spec.vm.name:
            return "127.0.0.1", self.spec.vm.ssh_port
        node = self.spec.container(name)
        return str(self.spec.address4(node, node.ssh_zone)), 22

    def ssh_args(self, name: str) -> list[str]:
        host, port = self.ssh_target(name)
        return [
            "ssh", "-i", str(self.paths.key),
            "-o", f"UserKnownHostsFile={self.paths.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5", "-p", str(port), f"root@{host}",
        ]

    def _ssh_ok(self, name: str) -> bool:
        try:
            proc = subprocess.run([*self.ssh_args(name), "true"], capture_output=True,
                                  timeout=20, check=False)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0

    def _known_hosts_entries(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        for name in self.spec.node_names:
            pub = self.paths.node_dir(name) / "seed/files/etc/ssh/ssh_host_ed25519_key.pub"
            key = " ".join(pub.read_text().split()[:2])
            if name == self.spec.vm.name:
                entries[f"[127.0.0.1]:{self.spec.vm.ssh_port}"] = key
                continue
            node = self.spec.container(name)
            for zone in node.zones:
                entries[str(self.spec.address4(node, zone))] = key
                entries[str(self.spec.address6(node, zone))] = key
        return entries

    def _write_inventory(self) -> Path:
        inv = build_inventory(self.spec, self.paths.ssh, include_vm=self.vm.running())
        self.paths.inventory.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.paths.inventory.with_suffix(".tmp")
        tmp.write_text(render_inventory(inv))
        os.replace(tmp, self.paths.inventory)
        return self.paths.inventory

    def write_inventory(self) -> Path:
        if not self.paths.key.exists():
            raise LabError("the lab has no SSH key yet: run `m7guard lab up` first")
        return self._write_inventory()

    # -- status ---------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        rows: list[NodeStatus] = []
        for node in self.spec.containers:
            state = podman.container_state(self.spec.container_name(node))
            status = "absent" if state is None else state.get("State", {}).get("Status", "?")
            host, _ = self.ssh_target(node.name)
            rows.append(NodeStatus(node.name, "container", status, host, node.release))
        vm_state = "running" if self.vm.running() else "absent"
        rows.append(NodeStatus(self.spec.vm.name, "vm", vm_state,
                               f"127.0.0.1:{self.spec.vm.ssh_port}", self.spec.vm.release))
        return rows

    # -- down -----------------------------------------------------------------

    def down(self, purge: bool = False) -> list[str]:
        podman.check_installed()
        with self.locked():
            removed = self._teardown(keep_keys=False)
            if purge:
                removed += self.images.purge()
        return removed

    def _teardown(self, keep_keys: bool) -> list[str]:
        removed: list[str] = []
        for ctr in podman.labelled("container", self.label):
            name = (ctr.get("Names") or ["?"])[0]
            podman.remove_container(name)
            removed.append(f"container {name}")
        if self.vm.stop():
            removed.append(f"vm {self.spec.vm.name}")
        for net in podman.labelled("network", self.label):
            podman.remove_network(net["name"])
            removed.append(f"network {net['name']}")
        vm_dir = self.paths.node_dir(self.spec.vm.name)
        for disk in ("root.qcow2", "nvme.img", "seed.img", "console.log"):
            if (vm_dir / disk).exists():
                (vm_dir / disk).unlink()
                removed.append(f"{self.spec.vm.name} {disk}")
        self.paths.marker.unlink(missing_ok=True)
        if not keep_keys:
            if self.paths.state.exists():
                shutil.rmtree(self.paths.state)
                removed.append(str(self.paths.state))
            if self.paths.inventory.exists():
                self.paths.inventory.unlink()
                removed.append(str(self.paths.inventory))
        return removed


def state_json(rows: list[NodeStatus]) -> str:
    return json.dumps([row.__dict__ for row in rows], indent=2)


ROUTE_UNIT = "m7guard-lab-routes.service"


def route_unit(net: Network) -> str:
    """A container node's boot unit that keeps one default route per family, through the
    gateway (the controller) of the network it is reached on.

    podman gives a container a default route through every network it joins. With several
    equal ones the kernel picks the outgoing one by neighbour state, while strict reverse
    path filtering (rp_filter=1, which kernel_tuning sets) checks replies against the first:
    replies that come back on another interface are dropped. A real node has one default
    route; so has a lab node.
    """
    return (
        "[Unit]\n"
        f"Description=Lab network: one default route, through the {net.zone} network\n"
        "Before=network-online.target ssh.service\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart=/bin/sh -c 'ip -4 route flush exact 0.0.0.0/0; "
        f"ip -4 route add default via {net.gateway4}'\n"
        f"ExecStart=/bin/sh -c 'ip -6 route flush exact ::/0; "
        f"ip -6 route add default via {net.gateway6}'\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def write_route_unit(files: Path, net: Network) -> None:
    """Write the unit into a node's seed files, enabled (the seed is copied over / at start)."""
    units = files / "etc/systemd/system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (units / ROUTE_UNIT).write_text(route_unit(net))
    link = wants / ROUTE_UNIT
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(f"/etc/systemd/system/{ROUTE_UNIT}")
