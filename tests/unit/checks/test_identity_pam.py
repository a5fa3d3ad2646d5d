"""PAM stacks: parsing with includes and the walk through libpam's control semantics."""

from __future__ import annotations

import pytest
from pamkit import MFA_AUTH

from m7guard.checks.support.pam import (
    ModuleModel,
    PamError,
    first_violation,
    outcomes,
    read_stack,
    successes,
)

ADMINS = frozenset({"m7admins"})

# The stack kerberos_mfa writes for sshd and sudo.
MFA = MFA_AUTH + "account required pam_unix.so\n"

# Debian 12 after installing libpam-krb5 (pam-auth-update).
DEBIAN_COMMON_AUTH = """\
auth	[success=2 default=ignore]	pam_krb5.so minimum_uid=1000
auth	[success=1 default=ignore]	pam_unix.so nullok try_first_pass
auth	requisite			pam_deny.so
auth	required			pam_permit.so
"""


def stack(text: str, **extra: str) -> list:
    files = {"/etc/pam.d/svc": text, **{f"/etc/pam.d/{k}": v for k, v in extra.items()}}
    return read_stack("svc", "auth", files)


def oath_ok(path) -> bool:
    return "success" in path.result_of("pam_oath")


def krb5_ok(path) -> bool:
    return "success" in path.result_of("pam_krb5")


def test_mfa_stack_requires_both_factors_for_admins_and_kerberos_for_everyone() -> None:
    lines = stack(MFA)
    assert [line.name for line in lines][:2] == ["pam_faillock", "pam_krb5"]
    admin = outcomes(lines, ModuleModel(True, ADMINS))
    user = outcomes(lines, ModuleModel(False, ADMINS))
    assert successes(admin) and successes(user)
    assert first_violation(admin, oath_ok) is None
    assert first_violation(admin, krb5_ok) is None
    assert first_violation(user, krb5_ok) is None
    # users outside the admin groups never reach pam_oath
    assert all(not p.result_of("pam_oath") for p in user)


def test_every_failed_factor_goes_through_authfail_and_a_lock_is_fatal() -> None:
    paths = outcomes(stack(MFA), ModuleModel(True, ADMINS))
    for path in paths:
        failed = any(r != "success" for m in ("pam_krb5", "pam_oath") for r in path.result_of(m))
        if failed:
            assert any("authfail" in line.args for line, _ in path.executed), path.describe()
            assert not path.success
        pre = [r for line, r in path.executed if "preauth" in line.args]
        if pre == ["fail"]:
            assert not path.success


def test_oath_sufficient_or_optional_is_a_bypass() -> None:
    for control in ("sufficient", "optional"):
        text = (
            "auth required pam_krb5.so\n"
            f"auth {control} pam_oath.so\n"
            "auth required pam_permit.so\n"
        )
        bad = first_violation(outcomes(stack(text), ModuleModel(True, ADMINS)), oath_ok)
        assert bad is not None, control
        assert bad.result_of("pam_oath") != ["success"]


def test_a_die_after_the_code_keeps_a_sufficient_oath_safe() -> None:
    # In the role's stack a failed code falls through to `[default=die] pam_faillock authfail`,
    # so even `sufficient` there would not let an administrator in without the code.
    text = MFA.replace("[success=1 default=bad]     pam_oath", "sufficient pam_oath")
    assert first_violation(outcomes(stack(text), ModuleModel(True, ADMINS)), oath_ok) is None


def test_debian_default_stack_lets_local_passwords_in() -> None:
    lines = stack("@include common-auth\n", **{"common-auth": DEBIAN_COMMON_AUTH})
    assert [line.name for line in lines] == ["pam_krb5", "pam_unix", "pam_deny", "pam_permit"]
    paths = outcomes(lines, ModuleModel(False))
    bad = first_violation(paths, krb5_ok)
    assert bad is not None
    assert bad.result_of("pam_unix") == ["success"]


def test_ignore_of_the_first_factor_does_not_pass_as_success() -> None:
    # root is below minimum_uid: pam_krb5 returns PAM_IGNORE, which is "bad" here
    lines = stack(MFA)
    paths = outcomes(lines, ModuleModel(False, ADMINS))
    assert not [p for p in successes(paths) if p.result_of("pam_krb5") == ["ignore"]]
    # ... while a plain `required` would let an ignoring module through to pam_permit
    loose = stack("auth required pam_krb5.so\nauth required pam_permit.so\n")
    ignored = [p for p in successes(outcomes(loose, ModuleModel(False))) if not krb5_ok(p)]
    assert ignored


def test_sufficient_done_and_jumps() -> None:
    lines = stack("auth sufficient pam_permit.so\nauth required pam_deny.so\n")
    assert all(p.success for p in outcomes(lines, ModuleModel(False)))
    past_end = stack("auth [success=5 default=bad] pam_permit.so\nauth required pam_permit.so\n")
    assert not successes(outcomes(past_end, ModuleModel(False)))


def test_include_substack_optional_type_and_line_continuations() -> None:
    files = {
        "/etc/pam.d/svc": "auth include part\n-auth optional pam_gnome_keyring.so\n"
        "account required pam_unix.so\n",
        "/etc/pam.d/part": "auth substack deep\n",
        "/etc/pam.d/deep": "auth required \\\n  pam_krb5.so # comment\n",
    }
    lines = read_stack("svc", "auth", files)
    assert [line.name for line in lines] == ["pam_krb5", "pam_gnome_keyring"]
    assert lines[0].source == "/etc/pam.d/deep"


def test_missing_service_and_include_loops_are_errors() -> None:
    with pytest.raises(PamError, match="does not exist"):
        read_stack("nothere", "auth", {})
    with pytest.raises(PamError, match="nest"):
        read_stack("a", "auth", {"/etc/pam.d/a": "@include a\n"})
    with pytest.raises(PamError, match="unclosed"):
        read_stack("a", "auth", {"/etc/pam.d/a": "auth [success=1 pam_x.so\n"})


def test_succeed_if_group_tests_follow_the_modelled_user() -> None:
    lines = stack("auth [success=done default=die] pam_succeed_if.so quiet user ingroup m7admins\n")
    assert successes(outcomes(lines, ModuleModel(True, ADMINS)))
    assert not successes(outcomes(lines, ModuleModel(False, ADMINS)))
    other = stack("auth [success=done default=die] pam_succeed_if.so uid >= 1000\n")
    results = {p.success for p in outcomes(other, ModuleModel(False))}
    assert results == {True, False}
