"""The choices the roles make from a node's release, evaluated as Ansible evaluates them, for
the facts of each Debian release the lab runs (docs/platforms.md): the OpenSSH of Debian 11
(8.4), 12 (9.2) and 13 (10.0), as `ssh -Q` printed them on lab nodes of those releases
(tests/fixtures/openssh/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "kerberos_mfa"
OPENSSH = ROOT / "tests" / "fixtures" / "openssh"
RELEASES = ("bullseye", "bookworm", "trixie")
CLASSIC = ["curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group18-sha512",
           "diffie-hellman-group16-sha512", "diffie-hellman-group-exchange-sha256"]


def _trusted(value: Any) -> Any:
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


def _openssh(release: str, what: str) -> list[str]:
    return (OPENSSH / f"{release}-{what}.txt").read_text().split()


def kerberos_mfa(release: str, **inventory: Any) -> Templar:
    """The role's defaults and vars, the inventory's values over them, on a node of RELEASE."""
    variables = {**yaml.safe_load((ROLE / "defaults/main.yml").read_text()),
                 **yaml.safe_load((ROLE / "vars/main.yml").read_text()), **inventory}
    variables = _trusted(variables)
    variables["__kerberos_mfa_node_kex"] = _openssh(release, "kex")
    return Templar(loader=DataLoader(), variables=variables)


def kex(release: str, **inventory: Any) -> list[str]:
    return list(kerberos_mfa(release, **inventory).template(
        trust_as_template("{{ __kerberos_mfa_kex }}")))


def test_the_fixtures_are_each_releases_openssh() -> None:
    assert "sntrup761x25519-sha512@openssh.com" not in _openssh("bullseye", "kex")
    assert "mlkem768x25519-sha256" in _openssh("trixie", "kex")
    assert "mlkem768x25519-sha256" not in _openssh("bookworm", "kex")


@pytest.mark.parametrize(("release", "offered"), [
    ("bullseye", CLASSIC),
    ("bookworm", ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", *CLASSIC]),
    ("trixie", ["mlkem768x25519-sha256", "sntrup761x25519-sha512",
                "sntrup761x25519-sha512@openssh.com", *CLASSIC]),
])
def test_unset_the_key_exchanges_are_the_best_the_nodes_openssh_knows(
    release: str, offered: list[str]
) -> None:
    assert kex(release) == offered


@pytest.mark.parametrize("release", RELEASES)
def test_a_list_from_the_inventory_is_used_as_it_is(release: str) -> None:
    wanted = ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"]
    # preflight.yml refuses it on a node that lacks one (bullseye): it is never filtered
    assert kex(release, kerberos_mfa_sshd_kex_algorithms=wanted) == wanted


@pytest.mark.parametrize(("release", "offered"), [
    ("bullseye", []),
    ("bookworm", ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]),
    ("trixie", ["mlkem768x25519-sha256", "sntrup761x25519-sha512",
                "sntrup761x25519-sha512@openssh.com"]),
])
def test_post_quantum_only_keeps_the_hybrids_the_node_knows(release: str,
                                                            offered: list[str]) -> None:
    # bullseye's empty list is refused by preflight.yml, naming the OpenSSH versions needed
    assert kex(release, kerberos_mfa_sshd_post_quantum_only=True) == offered


@pytest.mark.parametrize("release", RELEASES)
def test_every_default_cipher_and_mac_is_known_on_each_release(release: str) -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert set(defaults["kerberos_mfa_sshd_ciphers"]) <= set(_openssh(release, "cipher"))
    assert set(defaults["kerberos_mfa_sshd_macs"]) <= set(_openssh(release, "mac"))


def test_the_audit_allows_every_key_exchange_the_role_can_offer() -> None:
    rule = yaml.safe_load((ROOT / "policies/rules/kerberos_mfa/IDN-008.yml").read_text())
    allowed = set(rule["parameters"]["allowed_kex_algorithms"]["default"])
    for release in RELEASES:
        assert set(kex(release)) <= allowed, release


OPENSSH_VERSION = {"bullseye": "8.4", "bookworm": "9.2", "trixie": "10.0"}


def sshd_config(release: str) -> str:
    templar = kerberos_mfa(release)
    templar.available_variables = {
        **templar.available_variables,
        **_trusted(yaml.safe_load((ROLE / "vars/Debian.yml").read_text())),
        "__kerberos_mfa_openssh": OPENSSH_VERSION[release],
        "inventory_hostname": "node1",
        "ansible_managed": "Ansible managed",
    }
    template = (ROLE / "templates/sshd_config.j2").read_text()
    return str(templar.template(trust_as_template(template)))


@pytest.mark.parametrize("release", RELEASES)
def test_sshd_gets_channeltimeout_where_its_openssh_knows_it(release: str) -> None:
    lines = sshd_config(release).splitlines()
    timeouts = [ln for ln in lines if ln.startswith(("ChannelTimeout", "UnusedConnection"))]
    if release == "bullseye":  # OpenSSH 8.4: the read-only TMOUT ends idle shells
        assert timeouts == []
        assert "# OpenSSH 8.4 has no ChannelTimeout (9.2 and later): the read-only" in lines
    else:
        assert timeouts == ["ChannelTimeout session:shell=900", "UnusedConnectionTimeout 900"]
    assert f"KexAlgorithms {','.join(kex(release))}" in lines


@pytest.mark.parametrize("release", RELEASES)
def test_sha1_rsa_signatures_are_refused_where_openssh_still_accepts_them(release: str) -> None:
    lines = sshd_config(release).splitlines()
    removed = [ln for ln in lines if ln.endswith(" -ssh-rsa,ssh-rsa-cert-v01@openssh.com")]
    if release == "bullseye":  # OpenSSH 8.4: before 8.5 the user-key list has its old name
        assert removed == ["HostKeyAlgorithms -ssh-rsa,ssh-rsa-cert-v01@openssh.com",
                           "PubkeyAcceptedKeyTypes -ssh-rsa,ssh-rsa-cert-v01@openssh.com"]
    else:  # 8.8 and later refuse them by default
        assert removed == []


# --- field_encryption: where the library's dependencies come from ---------------------------

FIELD_ENCRYPTION = ROOT / "roles" / "field_encryption"
# dpkg-query's lines for the two packages, with the versions Debian's archive gave lab nodes
# of each release (tests/fixtures/debian/)
DEBIAN = ROOT / "tests" / "fixtures" / "debian"
FLOORS = {"cryptography": "38", "boto3": "1.26"}  # the wheel's Requires-Dist (test_wheel_module)


def too_old(release: str, floors: dict[str, str] = FLOORS, lines: list[str] | None = None,
            ) -> Any:
    variables = _trusted({
        **yaml.safe_load((FIELD_ENCRYPTION / "defaults/main.yml").read_text()),
        **yaml.safe_load((FIELD_ENCRYPTION / "vars/main.yml").read_text()),
    })
    variables["__field_encryption_dpkg"] = {
        "stdout_lines": (DEBIAN / f"{release}-dpkg.txt").read_text().splitlines()
        if lines is None else lines}
    variables["__field_encryption_wheel"] = {"requires_floors": floors}
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template("{{ __field_encryption_too_old }}"))


@pytest.mark.parametrize(("release", "old"), [
    ("bullseye", ["python3-cryptography 3.3.2 (cryptography>=38)",
                  "python3-boto3 1.13.14 (boto3>=1.26)"]),
    ("bookworm", []),  # 38.0.4 and 1.26.27: the floors are Debian 12's own
    ("trixie", []),
])
def test_only_debian_11_takes_the_librarys_dependencies_from_wheels(release: str,
                                                                    old: list[str]) -> None:
    assert too_old(release) == old


def test_the_floor_is_compared_as_a_version_and_an_absent_package_is_not_judged() -> None:
    # 1.26.27 is above 1.3 as a version, though below it as text
    assert too_old("bookworm", {"cryptography": "38.1", "boto3": "1.3"}) == [
        "python3-cryptography 38.0.4 (cryptography>=38.1)"]
    # packages dpkg does not list (check mode on a new node), a floor the wheel does not state
    assert too_old("bullseye", lines=[]) == []
    assert too_old("bullseye", lines=["python3-boto3 1.13.14-1"]) == [
        "python3-boto3 1.13.14 (boto3>=1.26)"]
    assert too_old("bullseye", {"boto3": "1.26"}) == ["python3-boto3 1.13.14 (boto3>=1.26)"]
    assert too_old("bullseye", {}) == []
