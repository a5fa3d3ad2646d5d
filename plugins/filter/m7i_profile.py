"""Filters of the m7i_profile role over the M7i size table.

The table and the profile derivation live once, in the m7guard package (m7guard/m7i.py), which
the checks and preflight read too; so these filters need m7guard installed in the Python that
runs ansible-playbook (the project's virtual environment has it).
"""

from __future__ import annotations

from typing import Any


def _m7i() -> Any:
    try:
        from m7guard import m7i
    except ImportError as exc:
        from ansible.errors import AnsibleFilterError

        raise AnsibleFilterError(
            "the m7i_profile filters need the m7guard Python package on the controller, in the "
            f"Python that runs ansible-playbook (pip install m7guard): {exc}"
        ) from None
    return m7i


def _filter_profile(
    instance_type: Any,
    source: str = "inventory",
    allow_generic: bool = False,
    host: dict[str, Any] | None = None,
) -> dict[str, Any]:
    m7i = _m7i()
    try:
        return m7i.profile(instance_type, source, allow_generic, host)
    except ValueError as exc:
        from ansible.errors import AnsibleFilterError

        raise AnsibleFilterError(f"m7i_profile_instance_type: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "m7i_profile_of": _filter_profile,
            "m7i_profile_known_types": lambda _ignored=None: _m7i().known_types(),
            "m7i_profile_looks_like_type": lambda value: _m7i().looks_like_type(value),
        }
