"""Field paths: parsing, matching against a record, and copy-on-write updates.

Syntax: ``key``, ``a.b.c``, ``items[0]``, ``items[*].number``, ``["odd.key"].x``.
A key is any run of characters other than ``.``, ``[``, ``]`` and ``"``; a key that
contains them is written in brackets as a JSON string. ``[*]`` matches every element
of a list. A trailing ``?`` marks a path as optional (matching nothing is not an error).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Union

from field_encryption.aad import canonical_path
from field_encryption.errors import PathError

Step = Union[str, int]
Concrete = tuple[Step, ...]


class _Wildcard:
    __slots__ = ()

    def __repr__(self) -> str:
        return "[*]"


WILDCARD: Final = _Wildcard()
PatternStep = Union[str, int, _Wildcard]

Normaliser = Literal["text", "digits", "exact"]


def parse(text: str) -> tuple[PatternStep, ...]:
    """Parse a path (without its optional ``?``) into steps."""
    if not text:
        raise PathError("empty field path; name a field such as 'ssn' or 'address.zip'")
    steps: list[PatternStep] = []
    i, n = 0, len(text)
    expect_key = True
    while i < n:
        ch = text[i]
        if ch == "[":
            end = _bracket_end(text, i)
            inner = text[i + 1 : end]
            steps.append(_bracket_step(text, inner))
            i = end + 1
            expect_key = False
        elif ch == ".":
            if expect_key:
                raise PathError(f"field path {text!r}: empty key before '.' at offset {i}")
            i += 1
            expect_key = True
            if i == n:
                raise PathError(f"field path {text!r}: ends with '.'")
        else:
            if not expect_key:
                raise PathError(f"field path {text!r}: expected '.' or '[' at offset {i}")
            j = i
            while j < n and text[j] not in '.[]"':
                j += 1
            if j == i:
                raise PathError(f"field path {text!r}: unexpected {text[i]!r} at offset {i}")
            steps.append(text[i:j])
            i = j
            expect_key = False
    return tuple(steps)


def _bracket_end(text: str, start: int) -> int:
    if text.startswith('["', start):
        j = start + 2
        while j < len(text):
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == '"':
                if j + 1 < len(text) and text[j + 1] == "]":
                    return j + 1
                break
            j += 1
        raise PathError(f"field path {text!r}: unterminated quoted key at offset {start}")
    end = text.find("]", start)
    if end < 0:
        raise PathError(f"field path {text!r}: '[' at offset {start} is never closed")
    return end


def _bracket_step(text: str, inner: str) -> PatternStep:
    if inner == "*":
        return WILDCARD
    if inner.startswith('"'):
        try:
            key = json.loads(inner)
        except ValueError:
            raise PathError(f"field path {text!r}: bad quoted key {inner}") from None
        if not isinstance(key, str):
            raise PathError(f"field path {text!r}: bad quoted key {inner}")
        return key
    if inner.isdigit() and inner.isascii():
        return int(inner)
    raise PathError(f"field path {text!r}: [{inner}] is not a list index; use [0], [1], ... or [*]")


def display(steps: tuple[PatternStep, ...]) -> str:
    """Human-readable form of parsed or concrete steps (round-trips through parse)."""
    out: list[str] = []
    for step in steps:
        if isinstance(step, _Wildcard):
            out.append("[*]")
        elif isinstance(step, int):
            out.append(f"[{step}]")
        elif step and not any(c in step for c in '.[]"?') and step.strip() == step:
            out.append(("." if out else "") + step)
        else:
            out.append("[" + json.dumps(step, ensure_ascii=False) + "]")
    return "".join(out)


@dataclass(frozen=True)
class FieldSpec:
    """One selected field and how to protect it.

    ``deterministic`` uses AES-SIV so equal values give equal ciphertexts (joins);
    ``blind_index`` adds a keyed HMAC of the normalised value for equality search;
    ``join_scope`` lets deterministic fields in different tables or paths match.
    """

    path: str
    optional: bool = False
    deterministic: bool = False
    blind_index: Normaliser | None = None
    join_scope: str | None = None
    steps: tuple[PatternStep, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        path = self.path
        optional = self.optional
        if path.endswith("?"):
            path, optional = path[:-1], True
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "optional", optional)
        object.__setattr__(self, "steps", parse(path))
        if self.blind_index not in (None, "text", "digits", "exact"):
            raise PathError(
                f"field {path}: blind_index must be 'text', 'digits' or 'exact', "
                f"not {self.blind_index!r}"
            )
        if self.join_scope is not None and not self.deterministic:
            raise PathError(f"field {path}: join_scope only applies to deterministic fields")

    @property
    def has_wildcard(self) -> bool:
        return any(isinstance(s, _Wildcard) for s in self.steps)


def as_spec(item: str | FieldSpec) -> FieldSpec:
    if isinstance(item, FieldSpec):
        return item
    if isinstance(item, str):
        return FieldSpec(item)
    raise PathError(f"a field must be a path string or a FieldSpec, not {type(item).__name__}")


def expand(record: Any, steps: tuple[PatternStep, ...]) -> list[Concrete]:
    """All concrete paths in ``record`` that the pattern matches."""
    out: list[Concrete] = []
    _expand(record, steps, 0, (), out)
    return out


def _expand(node: Any, steps: tuple[PatternStep, ...], i: int, done: Concrete, out: list) -> None:
    if i == len(steps):
        out.append(done)
        return
    step = steps[i]
    if isinstance(step, str):
        if type(node) is dict and step in node:
            _expand(node[step], steps, i + 1, (*done, step), out)
    elif isinstance(step, int):
        if type(node) is list and step < len(node):
            _expand(node[step], steps, i + 1, (*done, step), out)
    elif type(node) is list:
        for index, item in enumerate(node):
            _expand(item, steps, i + 1, (*done, index), out)


def get(record: Any, steps: Concrete) -> Any:
    node = record
    for step in steps:
        node = node[step]
    return node


def check_no_overlap(paths: list[Concrete], where: str = "") -> None:
    """Reject selections where one field contains another (or is selected twice)."""
    if len(paths) < 2:
        return
    ordered = sorted(paths, key=len)
    seen: set[Concrete] = set()
    for p in ordered:
        for k in range(1, len(p) + 1):
            if p[:k] in seen:
                raise PathError(
                    f"{where}field {display(p)} is inside or equal to the selected field "
                    f"{display(p[:k])}; select one of them"
                )
        seen.add(p)


def writable(root: Any, parent: Concrete, mine: set[int]) -> Any:
    """The container at ``parent`` in ``root``, copying on the way every container whose id
    is not in ``mine`` (the copies already made, to which each new copy is added)."""
    node = root
    for step in parent:
        child = node[step]
        if id(child) not in mine:
            child = child.copy()
            node[step] = child
            mine.add(id(child))
        node = child
    return node


def iter_strings(node: Any, prefix: Concrete = ()) -> Iterator[tuple[Concrete, Any]]:
    """Every scalar leaf of a document with its concrete path (used by ``verify``)."""
    if type(node) is dict:
        for key, value in node.items():
            yield from iter_strings(value, (*prefix, key))
    elif type(node) is list:
        for index, value in enumerate(node):
            yield from iter_strings(value, (*prefix, index))
    else:
        yield prefix, node


def canonical(steps: Concrete) -> str:
    return canonical_path(steps)
