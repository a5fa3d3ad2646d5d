"""DF-009 and the data_fabric role's module data_fabric_tickets, against the maprlogin stand-in.

Ticket files are the stand-in's (JSON, not tickets) in a temporary directory; `maprlogin
print` is the stand-in itself (tests/standin/maprlogin.py), run for the check's fake host and
for the module (in-process, tests/modulekit.py), so both parse the output shape the Data
Fabric documentation shows. A 90-day ticket fails, the module removes its file and the check
passes; the ticket maprcli uses is never removed; unreadable output is `error`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import modulekit
import pytest
from modulekit import FakeModule

from m7guard.checks import data_fabric as checks
from m7guard.checks.support.data_fabric import role_module

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "standin" / "maprlogin.py"
DAY = 86400
LIMITS = {"ticket_max_lifetime_days": 14, "ticket_max_renewal_days": 30}


def ticket(user: str, uid: int, days: float, renewal: float, cluster: str = "my.cluster.com"
           ) -> dict[str, Any]:
    created = int(time.time()) - DAY
    return {"cluster": cluster, "user": user, "uid": uid, "gids": [uid, 0, 5001],
            "created": created, "expires": created + int(days * DAY),
            "renewal": created + int(renewal * DAY), "impersonate": False}


def maprlogin(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(STANDIN), "print"], capture_output=True,
                          text=True, env={"MAPR_TICKETFILE_LOCATION": path}, check=False)


class Module(FakeModule):
    def run_command(self, argv: list[str], environ_update: dict[str, str]) -> tuple:
        assert argv[1:] == ["print"]
        done = maprlogin(environ_update["MAPR_TICKETFILE_LOCATION"])
        return done.returncode, done.stdout, done.stderr


class Node:
    def __init__(self, where: Path, fake_host: Any, out: Any) -> None:
        self.where = where
        self.pattern = str(where / "maprticket_*")

        def answer(command: str) -> Any:
            argv = shlex.split(command)
            if argv[0] == "env":  # env MAPR_TICKETFILE_LOCATION=F maprlogin print
                done = maprlogin(argv[1].split("=", 1)[1])
                return out(done.returncode, done.stdout, done.stderr)
            done = subprocess.run(command, shell=True, capture_output=True, text=True,
                                  check=False)
            return out(done.returncode, done.stdout, done.stderr)

        self.host = fake_host({"": answer})

    def write(self, name: str, *tickets: dict[str, Any]) -> Path:
        path = self.where / name
        path.write_text(json.dumps(list(tickets)))
        return path

    def role(self, check_mode: bool = False, environ: dict[str, str] | None = None
             ) -> modulekit.Done:
        params = {"maprlogin": "maprlogin", "files": [self.pattern], "max_lifetime_days": 14,
                  "max_renewal_days": 30, "acting_ticket": ""}
        module = role_module("data_fabric_tickets")
        with pytest.raises(modulekit.Done) as info:
            module.run(Module(params, check_mode), environ=environ or {}, uid=0)
        return info.value


@pytest.fixture
def node(tmp_path: Path, fake_host: Any, out: Any, monkeypatch: Any) -> Node:
    node = Node(tmp_path, fake_host, out)
    settings = {"ticket_files": [node.pattern], "maprlogin": "maprlogin", **LIMITS}
    monkeypatch.setattr(checks, "setting", lambda _host, name: settings[name])
    return node


def test_a_long_ticket_fails_and_the_role_removes_its_file(node: Node, expect: Any) -> None:
    node.write("maprticket_1000", ticket("juser", 1000, 14, 30))  # the documented defaults
    long = node.write("maprticket_1001", ticket("etl", 1001, 90, 365))
    message = expect.fail(checks.test_df_009, node.host, evidence={})
    assert message == (f"{long}: the ticket of etl for my.cluster.com lasts 90.0 days "
                       "(policy: 14) and can be renewed for 365.0 days (policy: 30)")
    dry = node.role(check_mode=True)
    assert dry.result["removed"] == [str(long)] and long.exists()
    done = node.role()
    assert not done.failed and done.result["removed"] == [str(long)] and not long.exists()
    assert not node.role().result["changed"]
    evidence: dict[str, Any] = {}
    expect.run(checks.test_df_009, node.host, evidence=evidence)
    assert evidence["ticket_files"] == [str(node.where / "maprticket_1000")]


@pytest.mark.parametrize(("days", "renewal", "words"), [
    (15, 30, "lasts 15.0 days (policy: 14)"),
    (14, 31, "can be renewed for 31.0 days (policy: 30)"),
])
def test_one_limit_exceeded_fails(node: Node, expect: Any, days: float, renewal: float,
                                  words: str) -> None:
    node.write("maprticket_1000", ticket("juser", 1000, 14, 30),
               ticket("juser", 1000, days, renewal, "other.cluster.com"))
    assert words in expect.fail(checks.test_df_009, node.host, evidence={})


def test_no_ticket_file_passes(node: Node, expect: Any) -> None:
    evidence: dict[str, Any] = {}
    expect.run(checks.test_df_009, node.host, evidence=evidence)
    assert evidence["verdict"].startswith("no ticket file matches")


def test_the_ticket_maprcli_uses_is_not_removed(node: Node) -> None:
    acting = node.write("maprticket_5000", ticket("mapr", 5000, 30, 90))
    refused = node.role(environ={"MAPR_TICKETFILE_LOCATION": str(acting)})
    assert refused.failed and "is the ticket maprcli uses here" in refused.result["msg"]
    assert acting.exists()


def test_a_service_ticket_is_refused_not_removed(node: Node, monkeypatch: Any) -> None:
    """A ticket file that is not a user ticket (maprticket_<uid>) is judged by the check, but
    the role does not remove it: a service may depend on it."""
    service = node.write("maprticket_service", ticket("spark", 2000, 30, 90))
    refused = node.role()
    assert refused.failed and "is not a user ticket" in refused.result["msg"]
    assert service.exists()


def test_a_ticket_printed_from_another_file_or_running_backwards_is_an_error(
        node: Node, expect: Any, fake_host: Any, out: Any, monkeypatch: Any) -> None:
    """maprlogin must have read the file judged (Opening keyfile names it), and a ticket
    cannot expire before it was created: otherwise `error`, never a pass."""
    path = node.write("maprticket_1000", ticket("juser", 1000, 14, 30))
    other = maprlogin(str(node.write("elsewhere", ticket("juser", 1000, 1, 1)))).stdout
    host = fake_host({"MAPR_TICKETFILE_LOCATION": out(0, other, ""),
                      "sh -c": out(0, f"file {path}\nend\n", "")})
    assert "was not followed" in expect.error(checks.test_df_009, host, evidence={})
    node.write("maprticket_1000", ticket("juser", 1000, -1, 30))
    assert "expires or renews before it was created" in expect.error(
        checks.test_df_009, node.host, evidence={})


def test_unreadable_tickets_are_an_error_and_refused(node: Node, expect: Any) -> None:
    garbage = node.where / "maprticket_1002"
    garbage.write_text("\x00 not a ticket")
    assert "maprlogin print failed" in expect.error(checks.test_df_009, node.host, evidence={})
    refused = node.role()
    assert refused.failed and "nothing was changed" in refused.result["msg"]
    assert garbage.exists()


@pytest.mark.parametrize(("output", "words"), [
    ("Opening keyfile /tmp/maprticket_1000\n", "shows no ticket"),
    ("c: user = u, created = 'yesterday', expires = 'x', RenewalTill = 'y'\n",
     "a ticket date of unknown form"),
    ("c: user = u, uid = 0\n", "a line of unknown form"),
])
def test_output_of_another_shape_is_an_error(fake_host: Any, out: Any, expect: Any,
                                             monkeypatch: Any, output: str,
                                             words: str) -> None:
    host = fake_host({"MAPR_TICKETFILE_LOCATION": out(0, output, ""),
                      "sh -c": out(0, "file /tmp/maprticket_1000\nend\n", "")})
    monkeypatch.setattr(checks, "setting", lambda _host, name: {
        "ticket_files": ["/tmp/maprticket_*"], "maprlogin": "maprlogin", **LIMITS}[name])
    assert words in expect.error(checks.test_df_009, host, evidence={})


def test_the_documented_sample_parses() -> None:
    """The sample of the documentation (maprlogin Command Examples), gids with commas."""
    module = role_module("data_fabric_tickets")
    sample = ("Opening keyfile /tmp/maprticket_5000\n"
              "test.cluster.com: user = mapr, created = 'Mon Sep 17 09:18:19 PDT 2018', "
              "expires = 'Mon Oct 01 09:18:19 PDT 2018', RenewalTill = 'Wed Oct 17 09:18:19 "
              "PDT 2018', uid = 5000, gids = 5000, 0, 5001, CanImpersonate = true\n")
    [t] = module.tickets(sample, "/tmp/maprticket_5000")
    assert (t["cluster"], t["user"], t["lifetime_s"] / DAY, t["renewal_s"] / DAY) == (
        "test.cluster.com", "mapr", 14, 30)
    assert module.over_policy(t, 14, 30) == []
