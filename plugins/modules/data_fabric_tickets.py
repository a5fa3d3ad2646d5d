#!/usr/bin/python
"""Remove Data Fabric ticket files on a node whose tickets outlive the ticket policy."""

from __future__ import annotations

import glob
import os
import re
from datetime import datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: data_fabric_tickets
short_description: Remove Data Fabric ticket files whose tickets outlive the ticket policy
version_added: "0.1.0"
description:
  - A Data Fabric (MapR) ticket authenticates its holder to the cluster until it expires,
    and can be renewed until its renewal limit; both are fixed when the ticket is generated
    (C(maprlogin password), C(maprlogin generateticket -duration -renewal)), and no cluster
    setting caps them afterwards. A ticket file that outlives the policy is removed, so its
    user logs in again for a ticket within it.
  - Each ticket file (I(files), by default the user tickets C(/tmp/maprticket_*)) is read
    with C(maprlogin print), the file given in C(MAPR_TICKETFILE_LOCATION).
  - >-
    Refuses, changing nothing, a ticket file maprlogin cannot read (or whose output names
    another file), the removal of the ticket maprcli uses on this node (I(acting_ticket),
    C(MAPR_TICKETFILE_LOCATION) of the module's environment, C(/tmp/maprticket_<uid>)): that
    would cut the role and the audit off the cluster; and the removal of a file that is not
    a user ticket (C(maprticket_<uid>)), on which a service may depend. Regenerate those
    within the policy instead.
  - Removing the file does not revoke a copy of the ticket kept elsewhere.
  - The functions above run() are what m7guard's DF-009 check uses.
options:
  maprlogin:
    description: The maprlogin command.
    type: str
    default: /opt/mapr/bin/maprlogin
  files:
    description: Glob patterns of the ticket files.
    type: list
    elements: str
    default: [/tmp/maprticket_*]
  max_lifetime_days:
    description: Longest lifetime (created to expires) allowed, in days.
    type: int
    default: 14
  max_renewal_days:
    description: Longest renewal limit (created to RenewalTill) allowed, in days.
    type: int
    default: 30
  acting_ticket:
    description: >-
      The ticket file maprcli uses on the node, never removed (besides
      C(MAPR_TICKETFILE_LOCATION) of the module's environment and C(/tmp/maprticket_<uid>)).
    type: str
    default: ""
"""

RETURN = r"""
tickets:
  description: file -> the tickets read from it (cluster, user, lifetime and renewal days).
  type: dict
  returned: always
removed:
  description: The ticket files removed (in check mode, that would be).
  type: list
  returned: always
"""

# The documented shape: `CLUSTER: user = U, created = 'DATE', expires = 'DATE', RenewalTill =
# 'DATE', uid = N, gids = N, N, CanImpersonate = B`; gids hold commas, so fields are matched
# by name, not split.
_LINE = re.compile(r"^(?P<cluster>\S+): user = (?P<user>[^,]+), .*?created = '(?P<created>[^']+)'"
                   r".*?expires = '(?P<expires>[^']+)'.*?RenewalTill = '(?P<renewal>[^']+)'")
_DATE = re.compile(r"^\w{3} (\w{3}) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) \S+ (\d{4})$")
# Where Data Fabric writes a user's ticket (documented; read here, never created).
USER_TICKETS = "/tmp/maprticket_"  # noqa: S108
_USER_TICKET = re.compile(r"^maprticket_\d+$")  # the name maprlogin password gives one
DST = 3600  # a zone's daylight saving change may add an hour between two dates of a ticket
DAY = 86400


class TicketError(Exception):
    """maprlogin print output that is not the documented shape."""


def _when(text: str) -> datetime:
    """A maprlogin date (`Mon Sep 17 08:30:26 PDT 2018`); the zone is left out, as both dates
    of a ticket are in the node's zone."""
    match = _DATE.match(text.strip())
    if not match:
        raise TicketError(f"a ticket date of unknown form: {text!r}")
    return datetime.strptime(" ".join(match.groups()), "%b %d %H:%M:%S %Y")


def tickets(output: str, path: str) -> list[dict[str, Any]]:
    """The tickets of `maprlogin print` output for the ticket file path: cluster, user,
    lifetime and renewal days. Output that opened another file, or dates that run backwards,
    are TicketError: a ticket is judged only from the file it came from."""
    out, opened = [], None
    for line in output.splitlines():
        if not line.strip():
            continue
        if line.startswith("Opening keyfile"):
            opened = line[len("Opening keyfile"):].strip()
            continue
        match = _LINE.match(line.strip())
        if not match:
            raise TicketError(f"{path}: maprlogin print gave a line of unknown form: "
                              f"{line.strip()[:200]!r}")
        created = _when(match["created"])
        ticket = {
            "cluster": match["cluster"], "user": match["user"].strip(),
            "lifetime_s": (_when(match["expires"]) - created).total_seconds(),
            "renewal_s": (_when(match["renewal"]) - created).total_seconds()}
        if ticket["lifetime_s"] < 0 or ticket["renewal_s"] < 0:
            raise TicketError(f"{path}: a ticket of {ticket['user']} expires or renews before "
                              "it was created")
        out.append(ticket)
    if opened != path:
        raise TicketError(f"{path}: maprlogin print read {opened or 'no named file'}, not "
                          "this file (MAPR_TICKETFILE_LOCATION was not followed)")
    if not out:
        raise TicketError(f"{path}: maprlogin print shows no ticket")
    return out


def over_policy(ticket: dict[str, Any], max_lifetime_days: int, max_renewal_days: int
                ) -> list[str]:
    """What of the ticket exceeds the policy, in words (empty: within it)."""
    out = []
    for key, limit, what in (("lifetime_s", max_lifetime_days, "lasts"),
                             ("renewal_s", max_renewal_days, "can be renewed for")):
        if ticket[key] > limit * DAY + DST:
            out.append(f"{what} {ticket[key] / DAY:.1f} days (policy: {limit})")
    return out


def acting_tickets(declared: str, environ: dict[str, str], uid: int) -> list[str]:
    """The ticket maprcli uses on the node: the one declared, the one the module's
    environment names, and the default of its user."""
    return [t for t in (declared, environ.get("MAPR_TICKETFILE_LOCATION"),
                        f"{USER_TICKETS}{uid}") if t]


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def run(module: Any, environ: dict[str, str] | None = None, uid: int | None = None) -> None:
    params = module.params
    environ = dict(os.environ if environ is None else environ)
    uid = os.getuid() if uid is None else uid
    files = sorted({p for pattern in params["files"] for p in glob.glob(pattern)
                    if os.path.isfile(p)})
    found: dict[str, list[dict[str, Any]]] = {}
    remove, refusals = [], []
    for path in files:
        rc, out, err = module.run_command([params["maprlogin"], "print"],
                                          environ_update={"MAPR_TICKETFILE_LOCATION": path})
        if rc != 0:
            refusals.append(f"{path}: maprlogin print failed: {(err or out).strip()[:300]}")
            continue
        try:
            found[path] = tickets(out, path)
        except TicketError as exc:
            refusals.append(str(exc))
            continue
        if any(over_policy(t, params["max_lifetime_days"], params["max_renewal_days"])
               for t in found[path]):
            remove.append(path)
    for path in list(remove):
        acting = [t for t in acting_tickets(params["acting_ticket"], environ, uid)
                  if _same(path, t)]
        if acting:
            refusals.append(f"{path} is the ticket maprcli uses here and outlives the policy: "
                            "regenerate it within the policy (maprlogin password, or "
                            "generateticket with -duration and -renewal) first")
        elif not _USER_TICKET.match(os.path.basename(path)):
            refusals.append(f"{path} is not a user ticket (maprticket_<uid>) and outlives "
                            "the policy: a service may depend on it; regenerate it with "
                            "-duration and -renewal within the policy")
    if refusals:
        module.fail_json(msg="nothing was changed: " + "; ".join(refusals), tickets=found,
                         removed=[])
    if remove and not module.check_mode:
        for path in remove:
            os.unlink(path)
    module.exit_json(changed=bool(remove), tickets=found, removed=remove)


def main() -> None:
    run(AnsibleModule(
        argument_spec={
            "maprlogin": {"type": "str", "default": "/opt/mapr/bin/maprlogin"},
            "files": {"type": "list", "elements": "str", "default": [f"{USER_TICKETS}*"]},
            "max_lifetime_days": {"type": "int", "default": 14},
            "max_renewal_days": {"type": "int", "default": 30},
            "acting_ticket": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    ))


if __name__ == "__main__":
    main()
