"""The layers of m7guard, bottom to top, and the test that no import goes up or round in a circle.

Each module of the m7guard package belongs to one layer (the longest matching prefix in
LAYERS; every `*.cli` module, the package's CLIs, belongs to the top layer). A module may import
from its own layer and the layers below it, never from a layer above. Imports are read from the
source (module level, inside functions and under TYPE_CHECKING alike), so a lazy import does not
hide a dependency. Between modules no import cycle is allowed, whatever their layers.

docs/architecture.md explains what each layer holds and why.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "m7guard"
# the field-encryption distribution: below every layer of m7guard, and importing none of it
LIBRARY = "field_encryption"

# bottom to top; a module is in the layer of its longest matching prefix
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("m7guard", "m7guard.errors")),
    ("catalog and inventory", ("m7guard.catalog", "m7guard.inventory")),
    ("results", ("m7guard.results",)),
    ("checks and their toolkit", ("m7guard.checks", "m7guard.netpolicy")),
    (
        "engines",
        ("m7guard.audit", "m7guard.preflight", "m7guard.validate", "m7guard.history",
         "m7guard.lab"),
    ),
    ("reports and evidence", ("m7guard.reports", "m7guard.evidence")),
    # evidence.audit: the evidence options of `m7guard audit`
    (
        "commands",
        ("m7guard.cli", "m7guard.__main__", "m7guard.diff", "m7guard.docsgen",
         "m7guard.evidence.audit"),
    ),
)
TOP = len(LAYERS) - 1


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    if module.rsplit(".", 1)[-1] == "cli":
        return TOP
    best, level = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), index
    if level is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return level


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    file: Path
    line: int


def imports(root: Path) -> Iterator[Import]:
    """Every import of a module of the two packages by another, read from the files under root."""
    files = {
        module_name(p, root): p
        for package in (PACKAGE, LIBRARY)
        for p in sorted((root / package).rglob("*.py"))
    }
    for source, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = source.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod
                names = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            else:
                continue
            for name in names:
                while name and name not in files:  # `import pkg.mod.attr` style references
                    name = name.rpartition(".")[0]
                if name and name != source:
                    yield Import(source, name, path, node.lineno)


def upward(root: Path) -> list[str]:
    found = []
    for imp in imports(root):
        if imp.source.split(".")[0] == LIBRARY or imp.target.split(".")[0] == LIBRARY:
            if imp.source.split(".")[0] == LIBRARY and imp.target.split(".")[0] == PACKAGE:
                found.append(
                    f"{imp.file.relative_to(root)}:{imp.line}: {imp.source} imports "
                    f"{imp.target}: the {LIBRARY} library must not depend on {PACKAGE}"
                )
            continue
        low, high = layer_of(imp.source), layer_of(imp.target)
        if high > low:
            found.append(
                f"{imp.file.relative_to(root)}:{imp.line}: {imp.source} ({LAYERS[low][0]}) "
                f"imports {imp.target} ({LAYERS[high][0]}), a layer above it"
            )
    return sorted(set(found))


def cycles(root: Path) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in imports(root):
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_in_a_layer():
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        layer_of(module_name(path, ROOT))


def test_no_import_goes_up_a_layer():
    assert upward(ROOT) == []


def test_no_import_cycle():
    assert cycles(ROOT) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for package in (PACKAGE, LIBRARY):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def _add(root: Path, module: str, line: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _added():\n    {line}\n")


def test_an_upward_import_is_found(copy: Path):
    assert upward(copy) == []
    _add(copy, "m7guard.results", "from m7guard.reports import render  # noqa")
    found = upward(copy)
    assert len(found) == 1
    assert found[0].startswith("m7guard/results.py:")
    assert "m7guard.results (results) imports m7guard.reports (reports and evidence)" in found[0]


def test_an_upward_relative_import_is_found(copy: Path):
    _add(copy, "m7guard.catalog.loader", "from ..checks import CHECKS_DIR  # noqa")
    assert [f.split(": ", 1)[1] for f in upward(copy)] == [
        "m7guard.catalog.loader (catalog and inventory) imports m7guard.checks "
        "(checks and their toolkit), a layer above it"
    ]


def test_a_cycle_within_a_layer_is_found(copy: Path):
    assert cycles(copy) == []
    # reports.html imports reports.junit's module; junit importing html back closes a circle
    _add(copy, "m7guard.reports.html", "import m7guard.reports.junit  # noqa")
    _add(copy, "m7guard.reports.junit", "from m7guard.reports import html  # noqa")
    assert ["m7guard.reports.html", "m7guard.reports.junit"] in cycles(copy)


def test_a_module_outside_every_layer_is_refused():
    with pytest.raises(LookupError, match=r"m7guard_extra\.tool is in no layer"):
        layer_of("m7guard_extra.tool")


def test_the_library_importing_m7guard_is_found(copy: Path):
    _add(copy, "field_encryption.cli", "from m7guard.errors import M7guardError  # noqa")
    assert [f.split(": ", 1)[1] for f in upward(copy)] == [
        "field_encryption.cli imports m7guard.errors: the field_encryption library must not "
        "depend on m7guard"
    ]


def test_a_cycle_in_the_library_is_found(copy: Path):
    # the client and the module it delegated rotation to imported each other
    _add(copy, "field_encryption.client", "from field_encryption import cli  # noqa")
    found = cycles(copy)
    assert len(found) == 1
    assert {"field_encryption.cli", "field_encryption.client"} <= set(found[0])


def test_the_architecture_page_shows_these_layers():
    """docs/architecture.md shows LAYERS as a table: same layers, same order, same modules."""
    rows = [
        line.split("|")[1:3]
        for line in (ROOT / "docs" / "architecture.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| layer ")
    ]
    shown = [
        (name.strip(), tuple(re.findall(r"`(m7guard[\w.]*)`", modules))) for name, modules in rows
    ]
    assert shown == [(name, prefixes) for name, prefixes in LAYERS]
