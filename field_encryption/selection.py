"""Compiled field selections: parsed paths with precomputed AAD parts, overlap checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from field_encryption import aad, blind_index, paths
from field_encryption.errors import PathError
from field_encryption.paths import Concrete, FieldSpec


@dataclass(frozen=True)
class Target:
    steps: Concrete
    canonical: str
    path_part: bytes
    deterministic: bool
    scope: str | None
    index: str | None  # blind index normaliser
    index_name: str | None
    parent: Concrete = ()
    last: str | int = ""


class Plan:
    """Compiled field selection: parsed paths, precomputed AAD parts, overlap checked."""

    __slots__ = ("fixed", "has_deterministic", "has_index", "specs", "wild")

    def __init__(self, specs: Sequence[FieldSpec], record_id_field: str | None) -> None:
        self.specs = tuple(specs)
        check_static_overlap(self.specs)
        self.fixed: list[tuple[FieldSpec, Target]] = []
        self.wild: list[FieldSpec] = []
        names: set[str] = set()
        for spec in self.specs:
            if record_id_field is not None and spec.steps and spec.steps[0] == record_id_field:
                raise PathError(
                    f"field {spec.path} is the record id field ({record_id_field!r}); the id "
                    "binds the ciphertexts to the record and cannot itself be encrypted"
                )
            if spec.has_wildcard:
                if spec.blind_index is not None:
                    raise PathError(f"field {spec.path}: blind indexes need a path without [*]")
                self.wild.append(spec)
            else:
                steps: Concrete = tuple(spec.steps)  # type: ignore[arg-type]
                target = make_target(steps, spec)
                if target.index_name is not None:
                    if target.index_name in names:
                        raise PathError(
                            f"two fields share the blind index name {target.index_name}"
                        )
                    names.add(target.index_name)
                self.fixed.append((spec, target))
        self.has_deterministic = any(s.deterministic for s in self.specs)
        self.has_index = bool(names)


def make_target(steps: Concrete, spec: FieldSpec) -> Target:
    canonical = paths.canonical(steps)
    name = None
    if spec.blind_index is not None:
        name = blind_index.index_name(paths.display(steps))
    return Target(
        steps,
        canonical,
        aad.path_part(canonical),
        spec.deterministic,
        spec.join_scope,
        spec.blind_index,
        name,
        steps[:-1],
        steps[-1],
    )


def compatible(a: paths.PatternStep, b: paths.PatternStep) -> bool:
    if a == b and type(a) is type(b):
        return True
    wild_a = isinstance(a, paths._Wildcard)
    wild_b = isinstance(b, paths._Wildcard)
    return (wild_a and (wild_b or type(b) is int)) or (wild_b and type(a) is int)


def check_static_overlap(specs: Sequence[FieldSpec]) -> None:
    for i, first in enumerate(specs):
        for second in specs[i + 1 :]:
            short, long = sorted((first.steps, second.steps), key=len)
            if all(compatible(x, y) for x, y in zip(short, long)):
                raise PathError(
                    f"fields {first.path!r} and {second.path!r} can select the same value "
                    "(one contains or equals the other); select one of them"
                )


MISSING: Any = object()


def walk(record: Any, steps: Sequence[Any]) -> Any:
    """The value at concrete ``steps``, or ``MISSING`` (keys only in dicts, indexes in lists)."""
    node = record
    for step in steps:
        if type(step) is str:
            if type(node) is not dict:
                return MISSING
            node = node.get(step, MISSING)
            if node is MISSING:
                return MISSING
        elif type(node) is list and step < len(node):
            node = node[step]
        else:
            return MISSING
    return node
