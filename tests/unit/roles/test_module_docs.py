"""Every module of the collection documents itself in the form ansible-doc reads: its
DOCUMENTATION (and RETURN, where given) is YAML, names the module after its file, and every
option its argument spec takes is documented with a description, and none it does not take.
A module whose DOCUMENTATION does not parse is missing from `ansible-doc m7guard.hardening.*`
and from the collection's documentation."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted((ROOT / "plugins" / "modules").glob("*.py"))


def _constants(path: Path) -> dict[str, Any]:
    """The module's string constants and its argument spec (a dict literal passed as
    argument_spec=, or a module-level ARGUMENT_SPEC), read without importing it."""
    tree = ast.parse(path.read_text())
    out: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("DOCUMENTATION", "RETURN", "EXAMPLES"):
                out[name] = ast.literal_eval(node.value)
            elif name == "ARGUMENT_SPEC":
                out["spec"] = node.value
        if isinstance(node, ast.keyword) and node.arg == "argument_spec" and isinstance(
                node.value, ast.Dict):
            out["spec"] = node.value
    spec = out.get("spec")
    out["options"] = ({ast.literal_eval(k) for k in spec.keys}
                      if isinstance(spec, ast.Dict) else None)
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_each_module_documents_itself_for_ansible_doc(path: Path) -> None:
    found = _constants(path)
    assert "DOCUMENTATION" in found, f"{path.name} has no DOCUMENTATION"
    doc = yaml.safe_load(found["DOCUMENTATION"])
    assert isinstance(doc, dict) and doc["module"] == path.stem, doc
    assert isinstance(doc.get("short_description"), str) and doc["short_description"]
    assert doc.get("description"), f"{path.name}: no description"
    # the release notes list a module as new in the release its version_added names
    assert doc.get("version_added"), f"{path.name}: no version_added"
    options = doc.get("options") or {}
    for name, option in options.items():
        assert isinstance(option, dict) and option.get("description"), (
            f"{path.name}: option {name} has no description")
    if found["options"] is not None:
        assert set(options) == found["options"], (
            f"{path.name}: documented {sorted(options)}, takes {sorted(found['options'])}")
    if "RETURN" in found:
        assert isinstance(yaml.safe_load(found["RETURN"]), dict), f"{path.name}: RETURN"
