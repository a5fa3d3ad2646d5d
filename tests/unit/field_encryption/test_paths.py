"""Field path syntax, matching and the checks on selections."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from field_encryption import paths
from field_encryption.errors import PathError
from field_encryption.paths import WILDCARD, FieldSpec


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("ssn", ("ssn",)),
        ("personal_info.email", ("personal_info", "email")),
        ("items[0]", ("items", 0)),
        ("items[*].number", ("items", WILDCARD, "number")),
        ('["odd.key"].x', ("odd.key", "x")),
        ('a["b[c]"][2][*]', ("a", "b[c]", 2, WILDCARD)),
        ("a.0", ("a", "0")),
    ],
)
def test_parse(text: str, steps: tuple) -> None:
    assert paths.parse(text) == steps


@pytest.mark.parametrize(
    "text", ["", ".a", "a.", "a..b", "a[", "a[x]", "a[-1]", "a]b", '["unterminated', "a[0]b"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(PathError):
        paths.parse(text)


def test_trailing_question_mark_marks_optional() -> None:
    spec = FieldSpec("personal_info.phone?")
    assert spec.optional and spec.path == "personal_info.phone"


def test_expand_wildcards() -> None:
    doc = {"cards": [{"n": 1}, {"x": 2}, {"n": 3}], "m": {"k": [5]}}
    assert paths.expand(doc, paths.parse("cards[*].n")) == [("cards", 0, "n"), ("cards", 2, "n")]
    assert paths.expand(doc, paths.parse("m.k[0]")) == [("m", "k", 0)]
    assert paths.expand(doc, paths.parse("m.k[1]")) == []
    assert paths.expand(doc, paths.parse("m[0]")) == []  # index into a dict matches nothing


def test_blind_index_rejects_unknown_normaliser() -> None:
    with pytest.raises(PathError):
        FieldSpec("ssn", blind_index="soundex")  # type: ignore[arg-type]


def test_join_scope_needs_deterministic() -> None:
    with pytest.raises(PathError):
        FieldSpec("ssn", join_scope="people")


keys = st.text(min_size=0, max_size=8)
steps_strategy = st.lists(st.one_of(keys, st.integers(0, 50)), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(steps_strategy)
def test_display_round_trips_through_parse(steps: list) -> None:
    concrete = tuple(steps)
    assert paths.parse(paths.display(concrete)) == concrete


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_parse_fuzz_only_path_errors(text: str) -> None:
    with contextlib.suppress(PathError):
        paths.parse(text)
