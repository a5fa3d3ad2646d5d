"""How a check ends when it cannot decide: `error`, never `pass`.

A check fails with an assertion (`fail`) and is notapplicable through `not_applicable(reason)`,
which records a positive reason. Anything else it raises is reported as `error`, a skip without
such a reason included (a library's own skip says nothing about the rule). `EvidenceError` is
the exception for the checks: the evidence a rule needs is missing, unreadable or in a form the
check cannot evaluate, so the rule is undecided.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import pytest

# how a skip carries its reason; anything else that skips is an error (skip_verdict)
NOTAPPLICABLE = "notapplicable: "


class EvidenceError(Exception):
    """The evidence a rule needs is missing, unreadable or cannot be evaluated (`error`)."""


def conclude(failures: Iterable[str], unknowns: Iterable[str] = ()) -> None:
    """End a check: `fail` on any failure (naming what could not be evaluated as well),
    else `error` on anything that could not be evaluated, else `pass`."""
    __tracebackhide__ = True
    failures, unknowns = list(failures), list(unknowns)
    if failures:
        also = f"; not evaluated: {'; '.join(unknowns)}" if unknowns else ""
        raise AssertionError("; ".join(failures) + also)
    if unknowns:
        raise EvidenceError("; ".join(unknowns))


def not_applicable(reason: str) -> NoReturn:
    """End a check as notapplicable, for a positive reason that the result records."""
    __tracebackhide__ = True
    if not reason.strip():
        raise ValueError("notapplicable needs a positive reason")
    pytest.skip(f"{NOTAPPLICABLE}{reason}")


def skip_verdict(message: str) -> tuple[str, str]:
    """(state, message) of a check that skipped with `message`: notapplicable with its reason
    when not_applicable() raised it, else error (nothing recorded why the rule would not apply)."""
    if message.startswith(NOTAPPLICABLE) and message[len(NOTAPPLICABLE):].strip():
        return "notapplicable", message[len(NOTAPPLICABLE):]
    return "error", f"the check skipped without a recorded reason: {message or '(no message)'}"
