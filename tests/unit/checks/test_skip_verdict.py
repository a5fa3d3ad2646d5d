"""A skip is notapplicable only with the reason not_applicable() records; any other skip (a
library's own, an empty reason) is an error, since nothing says why the rule would not apply."""

from __future__ import annotations

import pytest

from m7guard.checks.support.verdict import NOTAPPLICABLE, not_applicable, skip_verdict


def test_a_recorded_reason_is_notapplicable():
    with pytest.raises(pytest.skip.Exception) as skipped:
        not_applicable("no NVMe block device on this host")
    assert skip_verdict(skipped.value.msg) == ("notapplicable", "no NVMe block device on this host")


@pytest.mark.parametrize("message", ["", "unsupported platform", NOTAPPLICABLE, "notapplicable"])
def test_a_skip_without_a_recorded_reason_is_an_error(message):
    state, text = skip_verdict(message)
    assert state == "error"
    assert text.startswith("the check skipped without a recorded reason")


def test_an_empty_reason_is_refused():
    with pytest.raises(ValueError, match="positive reason"):
        not_applicable("  ")
