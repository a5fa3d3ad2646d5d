"""Removing a lab container survives podman's race with a container that exits meanwhile,
and still fails, naming the container, when removal keeps failing."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from m7guard.errors import LabError
from m7guard.lab import podman

KILL_RACE = (
    "Error: cannot remove container 4ab0 as it could not be stopped: sending SIGKILL to "
    "container 4ab0: `/usr/sbin/runc kill 4ab0 9` failed: exit status 1"
)


class _Podman:
    """podman as the lab calls it, answering `rm` with the given exit codes in turn; the
    container exists until an `rm` succeeds."""

    def __init__(self, rm_codes: list[int]) -> None:
        self.rm_codes = rm_codes
        self.calls: list[tuple[str, ...]] = []
        self.exists = True

    def __call__(self, *args: str, what: str, check: bool = True, **_: Any) -> Any:
        self.calls.append(args)
        if args[0] == "container":  # inspect
            return subprocess.CompletedProcess(args, 0 if self.exists else 125, '[{"Id": "4ab0"}]')
        code = self.rm_codes.pop(0)
        if code == 0:
            self.exists = False
        elif check:
            raise LabError(f"{what} failed (exit {code}):\n{KILL_RACE}")
        return subprocess.CompletedProcess(args, code, "", KILL_RACE if code else "")


def _rm_calls(fake: _Podman) -> int:
    return sum(1 for call in fake.calls if call[0] == "rm")


def test_a_failed_rm_of_a_container_that_still_exists_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _Podman([1, 0])
    monkeypatch.setattr(podman, "podman", fake)
    podman.remove_container("m7g-client1", pause=0)
    assert _rm_calls(fake) == 2
    assert not fake.exists


def test_a_failed_rm_of_a_container_already_gone_counts_as_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _Podman([1])
    fake.exists = False  # it went away while podman was stopping it
    monkeypatch.setattr(podman, "podman", fake)
    podman.remove_container("m7g-client1", pause=0)
    assert _rm_calls(fake) == 1


def test_removal_that_keeps_failing_raises_naming_the_container(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _Podman([1, 1, 1])
    monkeypatch.setattr(podman, "podman", fake)
    with pytest.raises(LabError, match=r"removing container m7g-client1 failed \(exit 1\)"):
        podman.remove_container("m7g-client1", pause=0)
    assert _rm_calls(fake) == 3
