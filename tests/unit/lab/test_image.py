"""Image recipes: the hash that decides whether a cached image can be reused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from m7guard.lab.image import COMMON_FILES, Recipe, host_mirror


def test_digest_is_stable_and_short() -> None:
    assert Recipe().digest() == Recipe().digest()
    assert len(Recipe().digest()) == 16


def test_image_tag_names_the_recipe_and_the_cache(tmp_path: Path) -> None:
    from m7guard.lab.image import ImageCache

    a = ImageCache(tmp_path / "a")
    b = ImageCache(tmp_path / "b")
    assert a.image_tag.split(":")[1].startswith(Recipe().digest())
    assert a.image_tag != b.image_tag
    assert a.image_tag == ImageCache(tmp_path / "a").image_tag


def test_digest_ignores_package_order() -> None:
    base = Recipe()
    shuffled = dataclasses.replace(base, packages=tuple(reversed(base.packages)))
    assert shuffled.digest() == base.digest()


def test_digest_changes_with_every_input() -> None:
    base = Recipe()
    variants = [
        dataclasses.replace(base, suite="trixie"),
        dataclasses.replace(base, variant="buildd"),
        dataclasses.replace(base, packages=(*base.packages, "nftables")),
        dataclasses.replace(base, vm_packages=(*base.vm_packages, "grub-pc")),
        dataclasses.replace(base, files={**COMMON_FILES, "etc/motd": (0o644, "hi\n")}),
        dataclasses.replace(
            base,
            files={k: (m, c + "# changed\n") if k.endswith(".conf") else (m, c)
                   for k, (m, c) in COMMON_FILES.items()},
        ),
        dataclasses.replace(base, vm_units=(*base.vm_units, "x.service")),
        dataclasses.replace(base, masked_units=base.masked_units[:-1]),
        dataclasses.replace(base, version=base.version + 1),
    ]
    digests = {v.digest() for v in variants}
    assert base.digest() not in digests
    assert len(digests) == len(variants)


def test_masked_units_link_to_dev_null(tmp_path: Path) -> None:
    from m7guard.lab.image import MASKED_UNITS, _mask_units

    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/systemd/system" / MASKED_UNITS[0]).write_text("[Unit]\n")  # replaced
    _mask_units(tmp_path, MASKED_UNITS)
    for unit in MASKED_UNITS:
        link = tmp_path / "etc/systemd/system" / unit
        assert link.is_symlink() and str(link.readlink()) == "/dev/null", unit
    assert "systemd-binfmt.service" in MASKED_UNITS


def test_host_mirror_reads_deb822_sources(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example.test/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.example.test/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example.test/debian"


def test_host_mirror_reads_legacy_lines_and_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\n"
        "deb http://sec.example.test/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://mirror.example.test/debian bookworm main\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example.test/debian"


def test_host_mirror_none_when_no_bookworm_source(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://mirror.example.test/ubuntu jammy main\n")
    assert host_mirror(tmp_path) is None
