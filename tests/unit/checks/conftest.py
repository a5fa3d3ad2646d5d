"""A stand-in for testinfra's `host`: it answers the commands a check sends from a script.

`FakeHost(answers)` maps a substring of the command line (after testinfra-style quoting of
the arguments) to what the command prints; the first substring found wins. A command no
answer matches exits 127, as a missing program would. `files` serves `host.file(path)`.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Out:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class FakeFile:
    content_string: str | None = None
    mode: int = 0o640
    user: str = "root"
    group: str = "root"
    directory: bool = False

    @property
    def exists(self) -> bool:
        return self.content_string is not None or self.directory

    @property
    def is_directory(self) -> bool:
        return self.directory


@dataclass
class FakeHost:
    answers: dict[str, Out | str | Callable[[str], Out | str]] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def run(self, command: str, *args: Any) -> Out:
        if args:
            command = command % tuple(shlex.quote(str(a)) for a in args)
        self.commands.append(command)
        for needle, answer in self.answers.items():
            if needle in command:
                if callable(answer):
                    answer = answer(command)
                return answer if isinstance(answer, Out) else Out(0, answer)
        return Out(127, "", "sh: command not found")

    def file(self, path: str) -> FakeFile:
        return self.files.get(path, FakeFile())


@pytest.fixture
def fake_host() -> type[FakeHost]:
    return FakeHost


@pytest.fixture
def out() -> type[Out]:
    return Out


def call(check: Any, *args: Any, **fixtures: Any) -> Any:
    """Call a check with the fixtures it asks for by name (others are left out), as pytest
    would; so one test drives the check whatever fixtures its version takes."""
    wanted = inspect.signature(check).parameters
    return check(*args, **{k: v for k, v in fixtures.items() if k in wanted})


def error_of(check: Any, *args: Any, **kwargs: Any) -> str:
    """Run a check that must end in `error`: an exception that is neither a failed assertion
    (`fail`) nor a skip (`notapplicable`); returns its message. No exception at all (`pass`)
    fails the calling test."""
    try:
        call(check, *args, **kwargs)
    except AssertionError as exc:
        raise AssertionError(f"expected error, the check failed instead: {exc}") from None
    except pytest.skip.Exception as exc:
        raise AssertionError(f"expected error, the check was notapplicable: {exc}") from None
    except Exception as exc:
        return str(exc)
    raise AssertionError("expected error, the check passed")


def fail_of(check: Any, *args: Any, **kwargs: Any) -> str:
    """Run a check that must end in `fail`; returns the assertion message."""
    try:
        call(check, *args, **kwargs)
    except AssertionError as exc:
        return str(exc)
    except pytest.skip.Exception as exc:
        raise AssertionError(f"expected fail, the check was notapplicable: {exc}") from None
    raise AssertionError("expected fail, the check passed")


@pytest.fixture
def expect() -> Any:
    class Expect:
        error = staticmethod(error_of)
        fail = staticmethod(fail_of)
        run = staticmethod(call)

    return Expect


@pytest.fixture
def fake_file() -> type[FakeFile]:
    return FakeFile
