"""PAM stacks as Linux-PAM runs them: parsing /etc/pam.d services and walking their outcomes.

`read_stack()` expands a service's lines of one type (`auth`, `account`, ...) through
`@include`, `include` and `substack`. `outcomes()` then walks the stack the way
libpam's dispatcher does (control keywords and `[value=action]` lists: ok, done, bad, die,
ignore, reset and jumps) for every combination of results the modules could return, so a
check can state properties such as "no path to success skips pam_oath".

Module results are modelled as three classes: success, ignore (PAM_IGNORE) and fail (any
other error). A module's possible results come from `ModuleModel`; pam_succeed_if group
tests are decided from the user being modelled (administrator or not).
"""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

PAM_DIR = "/etc/pam.d"
RESULTS = ("success", "ignore", "fail")
KEYWORDS: dict[str, dict[str, str]] = {
    "required": {"success": "ok", "ignore": "ignore", "default": "bad"},
    "requisite": {"success": "ok", "ignore": "ignore", "default": "die"},
    "sufficient": {"success": "done", "default": "ignore"},
    "optional": {"success": "ok", "default": "ignore"},
}
MAX_LINES = 64
MAX_PATHS = 200_000


# libpam's return-value names that a `[value=action]` control may name (pam.conf(5)).
PAM_CODES = frozenset({
    "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err",
    "perm_denied", "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown",
    "maxtries", "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail",
    "cred_expired", "cred_err", "no_module_data", "conv_err", "authtok_err",
    "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging", "try_again",
    "ignore", "abort", "authtok_expired", "module_unknown", "bad_item", "conv_again",
    "incomplete", "default",
})
ERROR_CODES = PAM_CODES - {"success", "ignore", "default"}
ACTIONS = frozenset({"ok", "done", "bad", "die", "ignore", "reset"})


class PamError(ValueError):
    """A service file that cannot be read or expanded."""


class PamUnknownError(PamError):
    """A construct of a PAM line that this walk does not evaluate (so it cannot decide)."""


@dataclass(frozen=True)
class PamLine:
    type: str
    control: str
    module: str
    args: tuple[str, ...]
    source: str
    dash: bool = False  # `-auth`: libpam skips the line when the module cannot be loaded

    @property
    def name(self) -> str:
        """Module name without directory and .so: pam_krb5."""
        base = posixpath.basename(self.module)
        return base[:-3] if base.endswith(".so") else base

    def _table(self) -> dict[str, str]:
        if self.control in KEYWORDS:
            return dict(KEYWORDS[self.control])
        table = {}
        for item in self.control.strip("[]").split():
            key, _, value = item.partition("=")
            key, value = key.lower(), value.lower()
            if key not in PAM_CODES:
                raise PamUnknownError(f"{self.source}: {self}: unknown return value {key!r}")
            if value not in ACTIONS and not value.isdigit():
                raise PamUnknownError(f"{self.source}: {self}: unknown action {value!r}")
            table[key] = value
        return table

    def actions(self) -> dict[str, str]:
        """Action per result class (success, ignore, fail: for an authentication error)."""
        table = self._table()
        default = table.get("default", "bad")
        fail = table.get("auth_err", table.get("perm_denied", default))
        return {
            "success": table.get("success", default),
            "ignore": table.get("ignore", default),
            "fail": fail,
        }

    def fail_actions(self) -> tuple[str, ...]:
        """Every action a failing module can trigger: each error code may have its own."""
        table = self._table()
        default = table.get("default", "bad")
        return tuple(sorted({table.get(code, default) for code in ERROR_CODES}))

    def arg(self, key: str) -> str | None:
        """Value of `key=value` among the module arguments."""
        for item in self.args:
            name, sep, value = item.partition("=")
            if sep and name == key:
                return value
        return None

    def __str__(self) -> str:
        return f"{self.type} {self.control} {self.module} {' '.join(self.args)}".strip()


def _split(line: str) -> list[str]:
    """Fields of a PAM line; a bracketed control stays one field."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return []
    head, _, rest = line.partition(" ")
    rest = rest.strip()
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise PamError(f"unclosed control in: {line}")
        return [head, rest[: end + 1], *rest[end + 1 :].split()]
    return line.split()


def read_stack(service: str, kind: str, files: Mapping[str, str], depth: int = 0) -> list[PamLine]:
    """The expanded lines of type `kind` of a service; `files` maps paths to contents."""
    path = service if service.startswith("/") else posixpath.join(PAM_DIR, service)
    if depth > 8:
        raise PamError(f"{path}: includes nest too deeply")
    if path not in files:
        raise PamError(f"{path} does not exist")
    lines: list[PamLine] = []
    for raw in files[path].replace("\\\n", " ").splitlines():
        fields = _split(raw.replace("\t", " "))
        if not fields:
            continue
        if fields[0] == "@include":
            lines += read_stack(fields[1], kind, files, depth + 1) if len(fields) > 1 else []
            continue
        ltype = fields[0].lstrip("-").lower()
        if ltype != kind or len(fields) < 3:
            continue
        control = fields[1].lower()
        if control in ("include", "substack"):
            lines += read_stack(fields[2], kind, files, depth + 1)
            continue
        if not control.startswith("[") and control not in KEYWORDS:
            raise PamUnknownError(f"{path}: unknown control {control!r} in: {raw.strip()}")
        line = PamLine(ltype, control, fields[2], tuple(fields[3:]), path,
                       fields[0].startswith("-"))
        line.fail_actions()  # an unknown value or action in the control is an error now
        lines.append(line)
    if len(lines) > MAX_LINES:
        raise PamError(f"{path}: more than {MAX_LINES} {kind} lines")
    return lines


@dataclass(frozen=True)
class ModuleModel:
    """Which results each module can return, for a user who is or is not an administrator."""

    admin: bool
    admin_groups: frozenset[str] = frozenset()
    fixed: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "pam_permit": ("success",),
            "pam_deny": ("fail",),
            "pam_env": ("success", "ignore"),
            "pam_group": ("success", "ignore"),
            "pam_cap": ("success", "ignore"),
            "pam_nologin": ("success", "fail"),
            "pam_faillock": ("success", "fail"),
        }
    )

    def results(self, line: PamLine) -> tuple[str, ...]:
        if line.name == "pam_succeed_if":
            decided = self._succeed_if(line.args)
            if decided is not None:
                return (decided,)
        return self.fixed.get(line.name, RESULTS)

    def _succeed_if(self, args: tuple[str, ...]) -> str | None:
        words = [
            a
            for a in args
            if "=" not in a
            and a not in ("quiet", "quiet_success", "quiet_fail", "debug", "use_uid")
        ]
        if len(words) != 3 or words[0] != "user" or words[1] not in ("ingroup", "notingroup"):
            return None
        member = self.admin and bool(set(words[2].split(":")) & self.admin_groups)
        passed = member if words[1] == "ingroup" else not member
        return "success" if passed else "fail"


@dataclass(frozen=True)
class Path:
    """One way through a stack: the result of each executed line and the stack's verdict."""

    executed: tuple[tuple[PamLine, str], ...]
    success: bool
    key: tuple[tuple[int, str], ...] = ()

    def result_of(self, name: str) -> list[str]:
        return [result for line, result in self.executed if line.name == name]

    def describe(self) -> str:
        steps = ", ".join(f"{line.name}={result}" for line, result in self.executed)
        return f"{steps} -> {'success' if self.success else 'failure'}"


def _walk(lines: list[PamLine], choice: Mapping[int, tuple[str, str]]) -> Path:
    impression, status = "undef", "fail"
    executed: list[tuple[PamLine, str]] = []
    key: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        result, action = choice[i]
        executed.append((line, result))
        key.append((i, f"{result}:{action}"))
        if result == "absent":  # a `-type` line whose module is not installed: skipped
            i += 1
            continue
        if action == "reset":
            impression, status = "undef", "fail"
        elif action in ("ok", "done"):
            open_ = impression == "undef" or (impression == "good" and status == "success")
            if open_ and result != "ignore":
                impression, status = "good", result
            if action == "done" and impression != "bad":
                break
        elif action in ("bad", "die"):
            if impression != "bad":
                impression, status = "bad", "fail"
            if action == "die":
                break
        elif action.isdigit():
            if i + int(action) >= len(lines):  # a jump past the end never succeeds
                impression = "bad"
                break
            i += int(action)
        i += 1
    return Path(tuple(executed), impression == "good" and status == "success", tuple(key))


def outcomes(lines: list[PamLine], model: ModuleModel) -> list[Path]:
    """Every distinct path through the stack for the module results the model allows."""
    options: list[list[tuple[str, str]]] = []
    for line in lines:
        acts = line.actions()
        choices = [
            (result, action)
            for result in model.results(line)
            for action in (line.fail_actions() if result == "fail" else (acts[result],))
        ]
        options.append(choices + ([("absent", "")] if line.dash else []))
    total = 1
    for opt in options:
        total *= len(opt)
    if total > MAX_PATHS:
        raise PamError(f"stack too large to analyse ({total} combinations)")
    seen: dict[tuple[tuple[int, str], ...], Path] = {}
    for combo in itertools.product(*options):
        path = _walk(lines, dict(enumerate(combo)))
        seen.setdefault(path.key, path)
    return list(seen.values())


def successes(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if p.success]


def first_violation(paths: Iterable[Path], required: Callable[[Path], bool]) -> Path | None:
    """A successful path on which `required` does not hold, if any."""
    for path in successes(paths):
        if not required(path):
            return path
    return None
