"""kernel_tuning's modules on a fake /proc/sys and sysctl.d: writes, check mode, conflicts."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import modulekit
import pytest
from kernel_tuning_kit import ROOT, load_module
from modulekit import Done, FakeModule

ROLE = ROOT / "roles" / "kernel_tuning"
# the modules import their helpers by the collection's name, as Ansible ships them to a node
load_module("ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio",
            ROOT / "plugins/module_utils/m7guard_fileio.py")
sysctl_mod = load_module("kernel_tuning_sysctl", ROOT / "plugins/modules/kernel_tuning_sysctl.py")


def run(mod: ModuleType, params: dict[str, Any], check_mode: bool = False) -> Done:
    return modulekit.run(mod, FakeModule(params, check_mode))


@pytest.fixture
def node(tmp_path: Path) -> dict[str, Path]:
    proc = tmp_path / "proc/sys"
    for key, value in {"vm.swappiness": "60", "net.ipv4.tcp_rmem": "4096\t131072\t6291456",
                       "kernel.kptr_restrict": "0"}.items():
        path = proc.joinpath(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    etc = tmp_path / "etc/sysctl.d"
    usr = tmp_path / "usr/lib/sysctl.d"
    etc.mkdir(parents=True)
    usr.mkdir(parents=True)
    return {"root": tmp_path, "proc": proc, "etc": etc, "usr": usr}


def _params(node: dict[str, Path], **over: Any) -> dict[str, Any]:
    base = {
        "path": str(node["etc"] / "60-m7guard-kernel-tuning.conf"),
        "settings": [
            {"key": "kernel.kptr_restrict", "value": "2", "rules": ["KERN-001"]},
            {"key": "net.ipv4.tcp_rmem", "value": "4096 131072 16777216", "rules": ["PERF-005"]},
            {"key": "vm.swappiness", "value": "1", "rules": ["PERF-001"]},
        ],
        "apply": ["kernel.kptr_restrict", "net.ipv4.tcp_rmem", "vm.swappiness"],
        "header": "Managed by a test",
        "host_path": "",
        "proc_root": str(node["proc"]),
        "config_dirs": [str(node["etc"]), str(node["usr"])],
    }
    return {**base, **over}


def _running(node: dict[str, Path], key: str) -> str:
    return node["proc"].joinpath(*key.split(".")).read_text().strip()


def test_sysctl_persists_applies_and_is_idempotent(node: dict[str, Path]) -> None:
    first = run(sysctl_mod, _params(node))
    assert not first.failed and first.result["changed"]
    assert set(first.result["runtime_changed"]) == {"kernel.kptr_restrict", "net.ipv4.tcp_rmem",
                                                    "vm.swappiness"}
    text = (node["etc"] / "60-m7guard-kernel-tuning.conf").read_text()
    assert "# KERN-001\nkernel.kptr_restrict = 2\n" in text
    assert "net.ipv4.tcp_rmem = 4096 131072 16777216" in text
    assert _running(node, "vm.swappiness") == "1"
    second = run(sysctl_mod, _params(node))
    assert second.result["changed"] is False
    assert second.result["runtime_changed"] == {}


def test_sysctl_check_mode_changes_nothing(node: dict[str, Path]) -> None:
    done = run(sysctl_mod, _params(node), check_mode=True)
    assert done.result["changed"] and done.result["file_changed"]
    assert not (node["etc"] / "60-m7guard-kernel-tuning.conf").exists()
    assert _running(node, "vm.swappiness") == "60"
    assert done.result["diff"][0]["after"].startswith("# Managed by a test")


def test_container_keeps_host_keys_out_of_sysctl_d(node: dict[str, Path]) -> None:
    host_file = node["root"] / "etc/m7guard/kernel_tuning/host-sysctl.conf"
    done = run(sysctl_mod, _params(node, apply=["net.ipv4.tcp_rmem"], host_path=str(host_file)))
    assert done.result["not_applied"] == ["kernel.kptr_restrict", "vm.swappiness"]
    assert list(done.result["runtime_changed"]) == ["net.ipv4.tcp_rmem"]
    assert _running(node, "vm.swappiness") == "60"  # the host's value is never written
    sysctl_d = (node["etc"] / "60-m7guard-kernel-tuning.conf").read_text()
    assert "vm.swappiness" not in sysctl_d and "kernel.kptr_restrict" not in sysctl_d
    assert "net.ipv4.tcp_rmem" in sysctl_d
    recorded = host_file.read_text()
    assert "vm.swappiness = 1" in recorded and "never applied" in recorded


def test_a_missing_key_fails_before_anything_is_written(node: dict[str, Path]) -> None:
    params = _params(node)
    params["settings"].append({"key": "vm.no_such_key", "value": "1"})
    done = run(sysctl_mod, params)
    assert done.failed and done.result["missing"] == ["vm.no_such_key"]
    assert "no such kernel parameter: vm.no_such_key" in done.result["msg"]
    assert not (node["etc"] / "60-m7guard-kernel-tuning.conf").exists()


@pytest.mark.parametrize(
    ("settings", "apply", "message"),
    [
        ([{"key": "vm.swappiness", "value": ""}], [], "invalid value"),
        ([{"key": "vm/../x", "value": "1"}], [], "invalid key"),
        ([{"key": "vm.swappiness", "value": "1"}] * 2, [], "set twice"),
        ([{"key": "vm.swappiness", "value": "1"}], ["kernel.kptr_restrict"], "not in settings"),
    ],
)
def test_bad_settings_are_refused(node: dict[str, Path], settings: list, apply: list,
                                  message: str) -> None:
    done = run(sysctl_mod, _params(node, settings=settings, apply=apply))
    assert done.failed and message in done.result["msg"]


def test_a_later_file_that_would_override_fails_before_writing(node: dict[str, Path]) -> None:
    (node["usr"] / "99-vendor.conf").write_text("vm.swappiness = 30\n")
    (node["usr"] / "10-early.conf").write_text("kernel.kptr_restrict = 0\n")  # ours wins
    (node["etc"] / "99-zz.conf").write_text("net.ipv4.conf.*.rp_filter = 2\n")  # globs lose
    done = run(sysctl_mod, _params(node))
    assert done.failed
    assert done.result["conflicts"] == {
        "vm.swappiness": {"value": "30", "file": str(node["usr"] / "99-vendor.conf")}
    }
    assert "vm.swappiness = 30 in" in done.result["msg"]
    assert not (node["etc"] / "60-m7guard-kernel-tuning.conf").exists()
    assert _running(node, "vm.swappiness") == "60"
    # masking the vendor file from /etc with the same name and an agreeing value clears it
    (node["etc"] / "99-vendor.conf").write_text("vm.swappiness = 1\n")
    assert not run(sysctl_mod, _params(node)).failed


def test_a_refused_runtime_value_fails(node: dict[str, Path]) -> None:
    target = node["proc"] / "vm/swappiness"
    target.chmod(0o444)
    try:
        done = run(sysctl_mod, _params(node, apply=["vm.swappiness"]))
    finally:
        target.chmod(0o644)
    if done.failed:  # as root the read-only mode does not stop the write
        assert "cannot set vm.swappiness = 1" in done.result["msg"]
    else:
        assert _running(node, "vm.swappiness") == "1"


def test_a_container_need_not_see_the_host_keys_it_records(node: dict[str, Path]) -> None:
    """A container's /proc/sys lacks some global keys (net.core.netdev_max_backlog)."""
    params = _params(node, apply=["net.ipv4.tcp_rmem"],
                     host_path=str(node["root"] / "host-sysctl.conf"))
    params["settings"].append({"key": "net.core.netdev_max_backlog", "value": "2000"})
    done = run(sysctl_mod, params)
    assert not done.failed
    assert "net.core.netdev_max_backlog = 2000" in (node["root"] / "host-sysctl.conf").read_text()


def test_forwarding_is_switched_first() -> None:
    settings = [{"key": k} for k in ("net.ipv4.conf.all.accept_redirects", "net.ipv4.ip_forward",
                                      "vm.swappiness", "net.ipv6.conf.all.forwarding")]
    order = sysctl_mod.apply_order([s["key"] for s in settings][::-1], settings)
    assert order[:2] == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
    assert order[2:] == ["net.ipv4.conf.all.accept_redirects", "vm.swappiness"]


def test_a_value_the_kernel_does_not_keep_fails(node: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing one key may change another (ip_forward resets accept_redirects): all are read
    again after the writes."""
    real_open = open

    def clobbering_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and str(path).endswith("vm/swappiness"):
            (node["proc"] / "kernel/kptr_restrict").write_text("0\n")
        return handle

    monkeypatch.setattr("builtins.open", clobbering_open)
    done = run(sysctl_mod, _params(node))
    assert done.failed
    assert "the kernel does not keep kernel.kptr_restrict = 2 (it is 0)" in done.result["msg"]
