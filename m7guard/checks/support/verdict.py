"""How a check ends when it cannot decide: `error`, never `pass`.

A check fails with an assertion (`fail`) and is notapplicable with
`pytest.skip("notapplicable: <positive reason>")`. Anything else it raises is reported as
`error`. `EvidenceError` is that exception for the checks: the evidence a rule needs is
missing, unreadable or in a form the check cannot evaluate, so the rule is undecided.
"""

from __future__ import annotations

from collections.abc import Iterable


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
