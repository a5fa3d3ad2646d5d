"""Signed evidence bundles: an audit's results, reports and context in one tar.gz, with a
manifest and an in-toto Statement signed in a DSSE envelope (see docs/evidence.md)."""

from m7guard.errors import M7guardError


class EvidenceError(M7guardError):
    """A bundle could not be made, or a key or option is unusable (exit code 1)."""


class VerificationError(M7guardError):
    """A bundle failed verification (exit code 2); problems names each check that failed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))
