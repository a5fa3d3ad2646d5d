"""Action plugin: stop a role on a system it is not tested on (the module's documentation is
plugins/modules/platform_guard.py).

The systems a role is tested on are the ones its meta/main.yml lists (galaxy_info.platforms):
one definition, which Galaxy shows and this plugin enforces. The node's distribution and
release come from its facts, gathered here (subset min) when the play did not gather them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# the one variable that lets every role run on a system it is not tested on
OVERRIDE = "m7guard_untested_platform_ok"


def tested_platforms(meta: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """galaxy_info.platforms of a role's meta/main.yml: distribution -> releases."""
    platforms = (meta.get("galaxy_info") or {}).get("platforms") or []
    out: dict[str, tuple[str, ...]] = {}
    for item in platforms:
        if not isinstance(item, dict) or not item.get("name"):
            raise ValueError(f"a platform without a name: {item!r}")
        out[str(item["name"])] = tuple(str(v) for v in item.get("versions") or ())
    if not out:
        raise ValueError("galaxy_info.platforms lists no platform")
    return out


def judge(role: str, host: str, facts: dict[str, Any],
          tested: dict[str, tuple[str, ...]]) -> str | None:
    """None when the node runs a tested system, else what is untested, said plainly."""
    name = facts.get("distribution") or "an unknown system"
    release = facts.get("distribution_release") or ""
    version = facts.get("distribution_version") or ""
    listed = "; ".join(f"{d} {', '.join(v) or 'any release'}" for d, v in sorted(tested.items()))
    if name in tested and (not tested[name] or release in tested[name]):
        return None
    running = f"{name} {version} ({release})" if release else f"{name} {version}".strip()
    return (f"{role} is not tested on {host}'s system, {running}: it is tested on {listed} "
            f"(the role's meta/main.yml, docs/platforms.md)")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset()

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        role = self._task._role
        if role is None:
            raise AnsibleActionFail("platform_guard runs inside a role (it reads the role's "
                                    "meta/main.yml)")
        name = role.get_name(include_role_fqcn=False)
        meta_path = Path(role._role_path) / "meta" / "main.yml"
        try:
            tested = tested_platforms(yaml.safe_load(meta_path.read_text()) or {})
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise AnsibleActionFail(f"{meta_path}: {exc}") from exc
        facts = dict(task_vars.get("ansible_facts") or {})
        if "distribution_release" not in facts:
            gathered = self._execute_module(
                module_name="ansible.builtin.setup",
                module_args={"gather_subset": ["!all", "min"]},
                task_vars=task_vars,
            )
            if gathered.get("failed"):
                raise AnsibleActionFail(f"cannot read the node's system: "
                                        f"{gathered.get('msg', 'setup failed')}")
            # the module names its facts ansible_*, as the play's ansible_facts does not
            facts.update({k.removeprefix("ansible_"): v
                          for k, v in (gathered.get("ansible_facts") or {}).items()})
        host = task_vars.get("inventory_hostname", "the node")
        untested = judge(name, host, facts, tested)
        value = self._templar.template(task_vars.get(OVERRIDE, False))
        try:
            allowed = boolean(value, strict=True)
        except TypeError:
            raise AnsibleActionFail(f"{OVERRIDE}: {value!r} is not a boolean (true or false); "
                                    "nothing was changed") from None
        result.update(changed=False, tested=untested is None,
                      distribution=facts.get("distribution"),
                      release=facts.get("distribution_release"))
        if untested is None:
            return result
        if not allowed:
            result.update(failed=True, msg=f"{untested}. Nothing was changed. To run it "
                          f"anyway, unsupported, set {OVERRIDE}: true")
            return result
        result["warnings"] = [f"{untested}; running anyway, unsupported, because {OVERRIDE} "
                              "is true"]
        return result
