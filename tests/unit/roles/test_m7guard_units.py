"""The collection's m7guard_units module (plugins/modules) against a recorded systemctl: one
read of every unit, then enable and start only what needs it; unknown units fail before any
change."""

from __future__ import annotations

from typing import Any

import modulekit
from kernel_tuning_kit import ROOT, load_module
from modulekit import Done, FakeModule

units_mod = load_module("m7guard_units",
                        ROOT / "plugins/modules/m7guard_units.py")

SHOW = {
    "acct.service": "Id=acct.service\nLoadState=loaded\nUnitFileState=disabled\n"
                    "ActiveState=inactive\n",
    "sysstat.service": "Id=sysstat.service\nLoadState=loaded\nUnitFileState=enabled\n"
                       "ActiveState=active\n",
    "sysstat-collect.timer": "Id=sysstat-collect.timer\nLoadState=loaded\n"
                             "UnitFileState=enabled\nActiveState=inactive\n",
    "static.service": "Id=static.service\nLoadState=loaded\nUnitFileState=static\n"
                      "ActiveState=active\n",
    "missing.timer": "Id=missing.timer\nLoadState=not-found\nUnitFileState=\n"
                     "ActiveState=inactive\n",
}


class Systemctl(FakeModule):
    """Records every systemctl command; `show` answers from SHOW."""

    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        super().__init__({"daemon_reload": False, **params}, check_mode)
        self.commands: list[list[str]] = []

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return f"/usr/bin/{name}"

    def run_command(self, argv: list[str], check_rc: bool = False) -> tuple[int, str, str]:
        self.commands.append(argv[1:])
        if argv[1] == "show":
            names = argv[argv.index("--") + 1:]
            return 0, "\n".join(SHOW[n] for n in names), ""
        return 0, "", ""


def run(units: list[str], check_mode: bool = False, **params: Any) -> tuple[Done, Systemctl]:
    module = Systemctl({"units": units, **params}, check_mode)
    return modulekit.run(units_mod, module), module


def test_only_what_needs_it_is_enabled_and_started() -> None:
    done, module = run(["acct.service", "sysstat.service", "sysstat-collect.timer",
                        "static.service"])
    assert not done.failed and done.result["changed"]
    assert done.result["enabled"] == ["acct.service"]
    assert done.result["started"] == ["acct.service", "sysstat-collect.timer"]
    assert module.commands[1:] == [["enable", "--", "acct.service"],
                                   ["start", "--", "acct.service", "sysstat-collect.timer"]]
    assert len(module.commands) == 3  # one read, one enable, one start


def test_nothing_to_do_is_one_read_and_no_change() -> None:
    done, module = run(["sysstat.service", "static.service"], daemon_reload=True)
    assert done.result["changed"] is False
    assert [c[0] for c in module.commands] == ["daemon-reload", "show"]


def test_check_mode_reports_and_changes_nothing() -> None:
    done, module = run(["acct.service"], check_mode=True, daemon_reload=True)
    assert done.result["changed"] and done.result["enabled"] == ["acct.service"]
    assert [c[0] for c in module.commands] == ["show"]
    assert "acct.service: disabled, inactive" in done.result["diff"]["before"]


def test_an_unknown_unit_fails_before_any_change() -> None:
    done, module = run(["acct.service", "missing.timer"])
    assert done.failed and "missing.timer: systemd does not know it" in done.result["msg"]
    assert [c[0] for c in module.commands] == ["show"]
