#!/usr/bin/python3
"""STAND-IN for HPE Ezmeral Data Fabric's `maprlogin`: not Data Fabric, which cannot be installed
here. Tests install it as /opt/mapr/bin/maprlogin on lab nodes; `make demo` does too.

It answers one command, `maprlogin print`, for the ticket file MAPR_TICKETFILE_LOCATION names
(else /tmp/maprticket_<uid>), in the shape of the Data Fabric 7.x documentation
(SecurityGuide: maprlogin Command Examples): a line `Opening keyfile FILE`, then one line per
cluster, `CLUSTER: user = U, created = 'DATE', expires = 'DATE', RenewalTill = 'DATE', uid =
N, gids = N, N, CanImpersonate = true|false`, dates as `Mon Sep 17 08:30:26 UTC 2018`.

A stand-in ticket file is JSON, not a ticket: {"cluster", "user", "uid", "gids", "created",
"expires", "renewal" (epoch seconds), "impersonate"} or a list of them. A file it cannot read
answers an error and exit 1 (the real tool's wording is not documented). It authenticates
nothing and generates nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time

FORMAT = "%a %b %d %H:%M:%S UTC %Y"


def _date(epoch: float) -> str:
    return time.strftime(FORMAT, time.gmtime(epoch))


def main(argv: list[str]) -> None:
    if argv[:1] != ["print"]:
        print(f"the stand-in answers maprlogin print only, not {' '.join(argv)}",
              file=sys.stderr)
        raise SystemExit(1)
    path = os.environ.get("MAPR_TICKETFILE_LOCATION") or f"/tmp/maprticket_{os.getuid()}"
    try:
        with open(path, encoding="utf-8") as fh:
            tickets = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"Unable to read ticket file {path}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"Opening keyfile {path}")
    for t in tickets if isinstance(tickets, list) else [tickets]:
        print(f"{t['cluster']}: user = {t['user']}, created = '{_date(t['created'])}', "
              f"expires = '{_date(t['expires'])}', RenewalTill = '{_date(t['renewal'])}', "
              f"uid = {t['uid']}, gids = {', '.join(str(g) for g in t['gids'])}, "
              f"CanImpersonate = {'true' if t.get('impersonate') else 'false'}")


if __name__ == "__main__":
    main(sys.argv[1:])
