"""Typed errors. Every message says what is wrong and what to do about it."""


class M7guardError(Exception):
    """Base of every error m7guard raises on purpose."""


class PrerequisiteError(M7guardError):
    """Something the command needs is missing on this machine."""


class LabError(M7guardError):
    """The local lab could not be brought up, inspected or removed."""
