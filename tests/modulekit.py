"""Running a role's Ansible module in-process: a stand-in for AnsibleModule that records what
the module would return, for the unit tests of the roles' modules (tests/unit/roles)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


class Done(Exception):
    """The module ended: `failed` and the result it returned."""

    def __init__(self, failed: bool, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg", ""))
        self.failed = failed
        self.result = result


class FakeModule:
    """What the modules' run() uses of AnsibleModule: params, check and diff mode, exit."""

    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self._diff = True

    def exit_json(self, **result: Any) -> None:
        raise Done(False, result)

    def fail_json(self, **result: Any) -> None:
        raise Done(True, result)


def run(mod: ModuleType, module: FakeModule) -> Done:
    """Run the module's run(module) to its end."""
    with pytest.raises(Done) as info:
        mod.run(module)
    return info.value
