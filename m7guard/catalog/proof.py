"""The proof matrix: for every rule, the tests that show its check fails where the rule is
broken and passes where it holds.

A verdict is only worth the evidence that the check can tell the two apart. The project's
test suite declares its proofs in `tests/proofs.py` (a function `proofs()` returning
`Proof`s): the mutation battery's breaks of hardened lab nodes (each a fail-proof, and a
pass-proof, since the battery breaks a rule only where the hardened audit passed it), and unit
tests for the rules whose property no lab node can carry (preflight, KMS, Data Fabric files).

`m7guard catalog proof` prints the matrix; `m7guard catalog validate` reports every rule
without a fail-proof or a pass-proof, and every proof that names a rule or a test that does
not exist. The proofs live in the test suite, not in the installed package: both commands
find `tests/` next to the policies (a checkout), or take `--tests DIR`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from m7guard.catalog.errors import CatalogError, Problem
from m7guard.catalog.model import Catalog

KINDS = ("fail", "error", "pass")
PROOFS_FILE = "proofs.py"


@dataclass(frozen=True)
class Proof:
    """One test that shows a rule's check giving `kind` on a broken (fail, error) or a holding
    (pass) host."""

    rule: str
    kind: str  # "fail" or "error": the rule broken; "pass": the rule holding
    what: str  # the property broken (or the state that holds), in a few words
    test: str  # the pytest node id that shows it: tests/.../test_x.py::test_name
    where: str  # what the test runs on: "lab data nodes", "lab vm1", "unit"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Proof.kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def breaks(self) -> bool:
        return self.kind in ("fail", "error")


def find_tests_dir(policies: Path, explicit: Path | None = None) -> Path:
    """The test suite that holds proofs.py: explicit, else tests/ beside the policies."""
    candidates = [explicit] if explicit is not None else [policies.resolve().parent / "tests"]
    for candidate in candidates:
        if candidate is not None and (candidate / PROOFS_FILE).is_file():
            return candidate.resolve()
    where = explicit if explicit is not None else policies.resolve().parent / "tests"
    raise CatalogError(Problem(
        str(where), PROOFS_FILE,
        "no proofs: the test suite that proves the rules was not found (run from a checkout, "
        "give --tests DIR, or --no-proof to validate without proofs, which is reported)"))


def load_proofs(tests_dir: Path) -> list[Proof]:
    """The proofs tests_dir/proofs.py declares. The suite's own modules (battery/) are
    imported from tests_dir, as pytest's pythonpath does."""
    path = tests_dir / PROOFS_FILE
    added = str(tests_dir) not in sys.path
    if added:
        sys.path.insert(0, str(tests_dir))
    try:
        spec = importlib.util.spec_from_file_location("_m7guard_proofs", path)
        if spec is None or spec.loader is None:
            raise CatalogError(Problem(str(path), "", "cannot be loaded"))
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
            found = list(module.proofs())
        except Exception as exc:  # a broken proofs file is a clear error, not a traceback
            raise CatalogError(Problem(str(path), "proofs()",
                                       f"cannot be read: {type(exc).__name__}: {exc}")) from exc
    finally:
        if added:
            sys.path.remove(str(tests_dir))
    wrong = [p for p in found if not isinstance(p, Proof)]
    if wrong:
        raise CatalogError(Problem(str(path), "proofs()",
                                   f"returns {type(wrong[0]).__name__}, not Proof"))
    return found


@cache
def _functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return frozenset(node.name for node in tree.body
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def node_id_problem(test: str, project: Path) -> str | None:
    """None when the node id names a test function defined in its file, else what is wrong."""
    file, sep, rest = test.partition("::")
    name = rest.split("[", 1)[0]
    path = project / file
    if not sep or not name:
        return "is not a pytest node id (file::function)"
    if not path.is_file():
        return f"{file} does not exist"
    if name not in _functions(path.resolve()):
        return f"{file} defines no function {name}"
    return None


def proof_problems(catalog: Catalog, proofs: Iterable[Proof], tests_dir: Path) -> list[Problem]:
    """Rules without a fail-proof or a pass-proof; proofs naming a rule the catalog does not
    have or a test that does not exist."""
    project = tests_dir.parent
    shown = f"{tests_dir.name}/{PROOFS_FILE}"
    problems: list[Problem] = []
    by_rule: dict[str, list[Proof]] = {}
    for proof in proofs:
        by_rule.setdefault(proof.rule, []).append(proof)
        if proof.rule not in catalog.rules:
            problems.append(Problem(shown, proof.rule,
                                    f"a proof of a rule the catalog does not have ({proof.test})"))
        wrong = node_id_problem(proof.test, project)
        if wrong:
            problems.append(Problem(shown, proof.rule, f"proof {proof.test!r}: {wrong}"))
    for rule in sorted(catalog.rules.values(), key=lambda r: r.id):
        mine = by_rule.get(rule.id, [])
        if not any(p.breaks for p in mine):
            problems.append(Problem(shown, rule.id, "no fail-proof: no test breaks the rule and "
                                    "requires its check to give fail or error"))
        if not any(p.kind == "pass" for p in mine):
            problems.append(Problem(shown, rule.id, "no pass-proof: no test requires the check "
                                    "to pass where the rule holds"))
    return problems


@dataclass(frozen=True)
class MatrixRow:
    rule: str
    title: str
    fail: tuple[Proof, ...]
    passing: tuple[Proof, ...]

    @property
    def proven(self) -> bool:
        return bool(self.fail) and bool(self.passing)


def matrix(catalog: Catalog, proofs: Iterable[Proof]) -> list[MatrixRow]:
    """One row per rule of the catalog, in id order."""
    by_rule: dict[str, list[Proof]] = {}
    for proof in proofs:
        by_rule.setdefault(proof.rule, []).append(proof)
    rows = []
    for rule in sorted(catalog.rules.values(), key=lambda r: r.id):
        mine = by_rule.get(rule.id, [])
        rows.append(MatrixRow(rule.id, rule.title, tuple(p for p in mine if p.breaks),
                              tuple(p for p in mine if p.kind == "pass")))
    return rows


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(test: str) -> str:
    return test.split("/", 1)[1] if test.startswith("tests/") else test


def markdown(rows: list[MatrixRow], header: str = "") -> str:
    """The matrix as a Markdown page (docs/reference/proof.md)."""
    proven = sum(row.proven for row in rows)
    breaks = sum(len(row.fail) for row in rows)
    lines = [header, "# Proof matrix", "",
             f"{proven} of {len(rows)} rules have a fail-proof and a pass-proof; {breaks} "
             "fail-proofs in all. A fail-proof breaks one property of the rule and requires "
             "its check to give `fail` (or `error`, where the break takes the evidence away); a "
             "pass-proof requires `pass` where the rule holds. The battery's breaks (tests/"
             "battery/) run on hardened lab nodes: each is a pass-proof too, since a rule is "
             "broken only where the hardened audit passed it. `m7guard catalog proof` prints "
             "this matrix; `m7guard catalog validate` fails on a rule without a proof.", "",
             "| rule | title | broken properties (fail-proofs) | fail-proof tests | "
             "pass-proof tests |",
             "|---|---|---|---|---|"]
    for row in rows:
        whats = "; ".join(f"{p.what} (error)" if p.kind == "error" else p.what
                          for p in row.fail) or "**none**"
        failing = ", ".join(sorted({_short(p.test) for p in row.fail})) or "**none**"
        passing = ", ".join(sorted({_short(p.test) for p in row.passing})) or "**none**"
        lines.append(f"| {row.rule} | {_md(row.title)} | {len(row.fail)}: {_md(whats)} | "
                     f"{_md(failing)} | {_md(passing)} |")
    lines += ["", "Fail-proof tests and the rules each proves:", ""]
    by_test: dict[str, set[str]] = {}
    for row in rows:
        for proof in row.fail:
            by_test.setdefault(proof.test, set()).add(row.rule)
    for test in sorted(by_test):
        count = len(by_test[test])
        lines.append(f"- `{test}`: {count} rule{'' if count == 1 else 's'}")
    lines.append("")
    return "\n".join(lines)
