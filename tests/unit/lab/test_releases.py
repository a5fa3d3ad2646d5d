"""Lab nodes per Debian release (`m7guard lab up --release R | --matrix`): the spec, the image
recipe of each release, and the releases a lab keeps between commands. Building and booting
the images is the lab's own tests' part (tests/integration/test_lab_lifecycle.py); here the
builds are recorded stand-ins, to test their order alone."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from m7guard.errors import LabError
from m7guard.lab import manager
from m7guard.lab.image import ImageCache, Recipe
from m7guard.lab.manager import Lab, LabPaths
from m7guard.lab.spec import DEFAULT_RELEASE, MATRIX, RELEASES, spec_for


def test_the_matrix_puts_one_data_node_on_each_release_and_the_vm_on_the_newest() -> None:
    releases = spec_for(0).with_releases(MATRIX).releases_of()
    data_nodes = {n.name for n in spec_for(0).containers if "m7_nodes" in n.groups}
    assert {releases[n] for n in data_nodes} == set(RELEASES)
    assert releases["vm1"] == RELEASES[-1] == "trixie"
    assert {releases[n] for n in releases if n not in MATRIX} == {DEFAULT_RELEASE}


@pytest.mark.parametrize(("releases", "why"), [
    ({"node9": "trixie"}, "no lab node node9"),
    ({"node1": "sid"}, "release 'sid' is not one of bullseye, bookworm, trixie"),
])
def test_an_unknown_node_or_release_is_refused(releases: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        spec_for(0).with_releases(releases)


def test_each_release_has_its_own_recipe_and_the_default_keeps_its_cached_images(
    tmp_path: Path,
) -> None:
    digests = {r: Recipe(suite=r).digest() for r in RELEASES}
    assert len(set(digests.values())) == len(RELEASES)
    assert digests[DEFAULT_RELEASE] == Recipe().digest()
    caches = {r: ImageCache(tmp_path, Recipe(suite=r)) for r in RELEASES}
    assert len({c.image_tag for c in caches.values()}) == len(RELEASES)
    assert len({c.base_tar for c in caches.values()}) == len(RELEASES)


def _paths(tmp_path: Path) -> LabPaths:
    return LabPaths(root=tmp_path, cache=tmp_path / "cache", lab_id=7)


def test_a_lab_keeps_the_releases_it_was_brought_up_with(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert set(Lab(paths).spec.releases_of().values()) == {DEFAULT_RELEASE}
    paths.state.mkdir(parents=True)
    paths.releases.write_text(json.dumps(spec_for(7).with_releases(MATRIX).releases_of()))
    lab = Lab(paths)
    assert lab.spec.releases_of()["node3"] == "trixie"
    assert lab.image_cache("trixie").recipe.suite == "trixie"
    assert lab.images.recipe.suite == "trixie"  # the VM's


def test_an_unreadable_releases_file_is_a_lab_error(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.state.mkdir(parents=True)
    paths.releases.write_text("{not json")
    with pytest.raises(LabError, match=r"releases\.json: unreadable"):
        Lab(paths)
    paths.releases.write_text('{"node1": "sid"}')
    with pytest.raises(LabError, match=r"lab releases: node1: release .sid."):
        Lab(paths)


def test_up_with_other_releases_while_nodes_run_asks_for_lab_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = _paths(tmp_path)
    paths.state.mkdir(parents=True)
    paths.releases.write_text(json.dumps(spec_for(7).releases_of()))
    monkeypatch.setattr(manager.podman, "container_state", lambda name: {"State": {}})
    lab = Lab(paths, releases=dict(MATRIX))
    with pytest.raises(LabError, match=r"the lab is up with other releases .*lab down"):
        lab._check_releases()
    # the same releases again, or nothing running: no objection
    Lab(paths, releases=spec_for(7).releases_of())._check_releases()
    monkeypatch.setattr(manager.podman, "container_state", lambda name: None)
    monkeypatch.setattr(lab.vm, "running", lambda: False)
    lab._check_releases()


class _Builds:
    """Stand-ins for ImageCache's two builds that record when each starts and ends; every
    release's first build waits at a barrier until all releases have started one, so they
    pass only when the releases are built side by side."""

    def __init__(self, releases: int, fail: str | None = None) -> None:
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(releases, timeout=10)
        self.fail = fail

    def _note(self, text: str) -> None:
        with self.lock:
            self.log.append(text)

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        builds = self

        def container(cache: ImageCache, say: object) -> tuple[str, bool]:
            suite = cache.recipe.suite
            builds._note(f"start node {suite}")
            builds.barrier.wait()
            if suite == builds.fail:
                raise LabError(f"debootstrap of {suite} failed")
            builds._note(f"end node {suite}")
            return f"localhost/m7guard-node:{suite}", True

        def vm(cache: ImageCache, say: object) -> tuple[str, bool]:
            builds._note(f"vm {cache.recipe.suite}")
            return f"disk of {cache.recipe.suite}", True

        monkeypatch.setattr(ImageCache, "ensure_container_image", container)
        monkeypatch.setattr(ImageCache, "ensure_vm_image", vm)


def test_up_builds_the_releases_side_by_side_and_a_release_s_vm_disk_after_its_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = _Builds(len(RELEASES))
    builds.patch(monkeypatch)
    lab = Lab(_paths(tmp_path), releases=dict(MATRIX), say=lambda text: None)
    report = manager.UpReport()
    tags, vm_image = lab._ensure_images(True, report)
    assert tags == {r: f"localhost/m7guard-node:{r}" for r in RELEASES}
    assert vm_image == "disk of trixie"
    # all three started before any ended (the barrier), and the VM disk came after trixie's
    assert set(builds.log[:3]) == {f"start node {r}" for r in RELEASES}
    assert builds.log.index("vm trixie") > builds.log.index("end node trixie")
    # the report lists them in release order, whatever order they ended in
    assert report.built_images == [*(f"localhost/m7guard-node:{r}" for r in sorted(RELEASES)),
                                   f"VM disk {lab.images.vm_dir} (Debian trixie)"]


def test_a_failed_release_build_fails_up_after_the_others_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = _Builds(len(RELEASES), fail="bullseye")
    builds.patch(monkeypatch)
    lab = Lab(_paths(tmp_path), releases=dict(MATRIX), say=lambda text: None)
    with pytest.raises(LabError, match="debootstrap of bullseye failed"):
        lab._ensure_images(True, manager.UpReport())
    assert {"end node bookworm", "end node trixie", "vm trixie"} <= set(builds.log)


def test_one_release_builds_its_node_image_then_its_vm_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = _Builds(1)
    builds.patch(monkeypatch)
    lab = Lab(_paths(tmp_path), say=lambda text: None)
    report = manager.UpReport()
    tags, vm_image = lab._ensure_images(True, report)
    assert tags == {DEFAULT_RELEASE: f"localhost/m7guard-node:{DEFAULT_RELEASE}"}
    assert vm_image == f"disk of {DEFAULT_RELEASE}"
    assert builds.log == [f"start node {DEFAULT_RELEASE}", f"end node {DEFAULT_RELEASE}",
                          f"vm {DEFAULT_RELEASE}"]
    # without the VM (lab up --no-vm) no disk is built
    builds.log.clear()
    assert lab._ensure_images(False, manager.UpReport())[1] is None
    assert "vm" not in " ".join(builds.log)
