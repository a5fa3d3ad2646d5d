"""Node images of the lab: one debootstrap tree, a podman image and a bootable VM disk.

Both images are cached under the cache directory, keyed by a hash of the recipe (suite,
packages, the files the lab writes into the tree, the build steps' version). A second
`lab up` finds them and builds nothing. The Debian mirror is taken from the host's own
apt sources at build time; none is written into the project.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from m7guard.errors import LabError
from m7guard.lab import podman
from m7guard.lab.runner import run

RECIPE_VERSION = 3
IMAGE_REPO = "localhost/m7guard-node"

BASE_PACKAGES: tuple[str, ...] = (
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "openssh-server",
    "iproute2",
    "procps",
    "sudo",
    "ca-certificates",
    "kmod",
)

VM_PACKAGES: tuple[str, ...] = ("linux-image-amd64", "udev")

# Files written into every node's tree (path -> (mode, content)).
COMMON_FILES: dict[str, tuple[int, str]] = {
    "etc/ssh/sshd_config.d/10-m7guard-lab.conf": (
        0o644,
        "# Lab node: the controller logs in as root with the lab's key.\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n",
    ),
    "etc/machine-id": (0o444, ""),
}

# Files written only into the VM's tree.
VM_FILES: dict[str, tuple[int, str]] = {
    "etc/fstab": (0o644, "LABEL=m7g-root / ext4 defaults,errors=remount-ro 0 1\n"),
    "etc/resolv.conf": (0o644, "nameserver 10.0.2.3\n"),
    "etc/systemd/network/10-lab.network": (
        0o644,
        "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n",
    ),
    # virtio only in the initramfs: nvme_core and the rest load from the root file
    # system, where /etc/modprobe.d applies (kernel tuning sets nvme_core options there).
    "etc/initramfs-tools/conf.d/m7guard-lab.conf": (0o644, "MODULES=list\n"),
    "etc/initramfs-tools/modules": (0o644, "virtio_pci\nvirtio_blk\next4\n"),
    "etc/systemd/system/m7guard-lab-seed.service": (
        0o644,
        "[Unit]\n"
        "Description=Copy this lab node's seed (host key, authorized key, hostname)\n"
        "DefaultDependencies=no\n"
        "After=local-fs.target\n"
        "Before=ssh.service systemd-networkd.service\n"
        "ConditionPathExists=/dev/disk/by-label/m7g-seed\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/bin/mkdir -p /run/m7guard-seed\n"
        "ExecStart=/bin/mount -o ro /dev/disk/by-label/m7g-seed /run/m7guard-seed\n"
        "ExecStart=/bin/cp -a /run/m7guard-seed/files/. /\n"
        "ExecStart=/bin/sh -c 'hostname \"$(cat /etc/hostname)\"'\n"
        "ExecStart=/bin/umount /run/m7guard-seed\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n",
    ),
}

VM_ENABLE_UNITS: tuple[str, ...] = ("systemd-networkd.service", "m7guard-lab-seed.service")

# Units masked in every node's tree. binfmt_misc is not namespaced: a privileged container
# that mounts it and runs systemd-binfmt would change the host's registrations, and a
# container whose automount of it hangs stalls its own boot.
MASKED_UNITS: tuple[str, ...] = ("systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
                                 "proc-sys-fs-binfmt_misc.mount")


@dataclass(frozen=True)
class Recipe:
    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = BASE_PACKAGES
    vm_packages: tuple[str, ...] = VM_PACKAGES
    files: dict[str, tuple[int, str]] = field(default_factory=lambda: dict(COMMON_FILES))
    vm_files: dict[str, tuple[int, str]] = field(default_factory=lambda: dict(VM_FILES))
    vm_units: tuple[str, ...] = VM_ENABLE_UNITS
    masked_units: tuple[str, ...] = MASKED_UNITS
    version: int = RECIPE_VERSION

    def digest(self) -> str:
        """A stable hash of everything that decides the images' content."""
        doc = {
            "suite": self.suite,
            "variant": self.variant,
            "packages": sorted(self.packages),
            "vm_packages": sorted(self.vm_packages),
            "files": {k: [m, c] for k, (m, c) in sorted(self.files.items())},
            "vm_files": {k: [m, c] for k, (m, c) in sorted(self.vm_files.items())},
            "vm_units": sorted(self.vm_units),
            "masked_units": sorted(self.masked_units),
            "version": self.version,
        }
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class VmImage:
    root: Path
    kernel: Path
    initrd: Path


Step = Callable[[str], None]


def host_mirror(sources_dir: Path = Path("/etc/apt")) -> str | None:
    """The first Debian archive URI of the host's apt sources, or None for debootstrap's default."""
    candidates: list[str] = []
    deb822 = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in deb822:
        for stanza in path.read_text(errors="replace").split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and any(
                s in ("bookworm", "stable") for s in suites.group(1).split()
            ):
                candidates.append(uris.group(1))
    legacy = [sources_dir / "sources.list"]
    legacy += sorted((sources_dir / "sources.list.d").glob("*.list"))
    for path in legacy:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(bookworm|stable)\s", line)
            if m:
                candidates.append(m.group(1))
    for uri in candidates:
        if "security" not in uri:
            return uri
    return None


class ImageCache:
    """Builds and finds the lab's images under `cache_dir`."""

    def __init__(self, cache_dir: Path, recipe: Recipe | None = None) -> None:
        self.cache_dir = cache_dir
        self.recipe = recipe or Recipe()
        self.digest = self.recipe.digest()
        # The podman image belongs to this cache: another cache directory (a test run's, say)
        # builds and purges its own image without touching this one.
        owner = hashlib.sha256(str(cache_dir.resolve()).encode()).hexdigest()[:6]
        self.tag_suffix = f"-c{owner}"
        self.image_tag = f"{IMAGE_REPO}:{self.digest}{self.tag_suffix}"

    @property
    def base_tar(self) -> Path:
        return self.cache_dir / f"base-{self.digest}.tar"

    @property
    def vm_dir(self) -> Path:
        return self.cache_dir / f"vm-{self.digest}"

    def vm_image(self) -> VmImage:
        return VmImage(
            self.vm_dir / "root.img", self.vm_dir / "vmlinuz", self.vm_dir / "initrd.img"
        )

    @contextmanager
    def locked(self, step: Step) -> Iterator[None]:
        """One image build at a time on this machine, whichever lab asks for it."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.cache_dir, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                step(f"another lab is building images in {self.cache_dir}: waiting for it")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def has_container_image(self) -> bool:
        return podman.image_exists(self.image_tag)

    def has_vm_image(self) -> bool:
        img = self.vm_image()
        return img.root.exists() and img.kernel.exists() and img.initrd.exists()

    # -- building -------------------------------------------------------------

    def _work_dir(self, name: str) -> Path:
        path = self.cache_dir / f".build-{name}-{self.digest}"
        if path.exists():
            shutil.rmtree(path)  # left by an interrupted build
        path.mkdir(parents=True)
        return path

    def ensure_base(self, step: Step) -> Path:
        if self.base_tar.exists():
            return self.base_tar
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        work = self._work_dir("base")
        rootfs = work / "rootfs"
        mirror = host_mirror()
        step(
            "debootstrap: building the Debian "
            f"{self.recipe.suite} node tree (about a minute; mirror from the host's apt sources)"
        )
        cmd = [
            "debootstrap",
            f"--variant={self.recipe.variant}",
            f"--include={','.join(self.recipe.packages)}",
            self.recipe.suite,
            str(rootfs),
        ]
        if mirror:
            cmd.append(mirror)
        run(cmd, what="debootstrap of the node tree", timeout=1800)
        step("customising the node tree")
        for name in ("ssh_host_rsa_key", "ssh_host_ecdsa_key", "ssh_host_ed25519_key"):
            for suffix in ("", ".pub"):
                (rootfs / "etc/ssh" / f"{name}{suffix}").unlink(missing_ok=True)
        _write_files(rootfs, self.recipe.files)
        _mask_units(rootfs, self.recipe.masked_units)
        (rootfs / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
        run(["chroot", str(rootfs), "apt-get", "clean"], what="apt-get clean in the node tree")
        tmp_tar = work / "base.tar"
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp_tar), "."],
            what="packing the node tree")
        os.replace(tmp_tar, self.base_tar)
        shutil.rmtree(work)
        return self.base_tar

    def ensure_container_image(self, step: Step) -> tuple[str, bool]:
        """Return (tag, built): built is False when the cached image was reused."""
        tag = self.image_tag
        if self.has_container_image():
            return tag, False
        base = self.ensure_base(step)
        step(f"importing the node image into podman as {tag}")
        podman.import_tar(base, tag)
        return tag, True

    def ensure_vm_image(self, step: Step) -> tuple[VmImage, bool]:
        if self.has_vm_image():
            return self.vm_image(), False
        base = self.ensure_base(step)
        work = self._work_dir("vm")
        rootfs = work / "rootfs"
        rootfs.mkdir()
        step("unpacking the node tree for the VM disk")
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-xf", str(base)],
            what="unpacking the node tree")
        _write_files(rootfs, self.recipe.vm_files)
        step("installing Debian's kernel into the VM tree (about 30 s)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["chroot", str(rootfs), "apt-get", "update", "-q"], what="apt-get update in VM tree",
            env=env, timeout=600)
        run(
            ["chroot", str(rootfs), "apt-get", "install", "-y", "-q", "--no-install-recommends",
             *self.recipe.vm_packages],
            what="installing the kernel into the VM tree", env=env, timeout=1200,
        )
        for unit in self.recipe.vm_units:
            run(["chroot", str(rootfs), "systemctl", "enable", unit], what=f"enabling {unit}")
        run(["chroot", str(rootfs), "apt-get", "clean"], what="apt-get clean in the VM tree")
        out = work / "out"
        out.mkdir()
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise LabError("the VM tree has no kernel in /boot after installing linux-image-amd64")
        shutil.copy2(kernels[-1], out / "vmlinuz")
        shutil.copy2(initrds[-1], out / "initrd.img")
        step("writing the VM's root disk (ext4 from the tree)")
        run(["mkfs.ext4", "-q", "-F", "-L", "m7g-root", "-d", str(rootfs), str(out / "root.img"),
             "4G"], what="mkfs.ext4 of the VM root disk")
        shutil.rmtree(rootfs)
        if self.vm_dir.exists():
            shutil.rmtree(self.vm_dir)
        os.replace(out, self.vm_dir)
        shutil.rmtree(work)
        return self.vm_image(), True

    def purge(self) -> list[str]:
        removed: list[str] = []
        for tag in podman.images(IMAGE_REPO):
            if not tag.endswith(self.tag_suffix):
                continue  # another cache directory's image
            if podman.image_in_use(tag):
                continue  # another lab's containers still run on it: it stays
            podman.remove_image(tag)
            removed.append(tag)
        if self.cache_dir.exists():
            shutil.rmtree(self.cache_dir)
            removed.append(str(self.cache_dir))
        return removed


def _mask_units(rootfs: Path, units: tuple[str, ...]) -> None:
    """`systemctl mask` without running systemctl: a link to /dev/null in /etc."""
    unit_dir = rootfs / "etc/systemd/system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    for unit in units:
        link = unit_dir / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def _write_files(rootfs: Path, files: dict[str, tuple[int, str]]) -> None:
    for rel, (mode, content) in files.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_text(content)
        path.chmod(mode)


def seed_image(seed_dir: Path, image: Path) -> None:
    """An ext4 image labelled m7g-seed holding `seed_dir/files` for the VM's seed unit."""
    image.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "m7g-seed", "-d", str(seed_dir), str(image), "8M"],
        what="mkfs.ext4 of the VM seed disk")
