#!/usr/bin/python3
"""STAND-IN for HPE Ezmeral Data Fabric's `maprcli`: not Data Fabric, which cannot be installed
here. Tests install it as /opt/mapr/bin/maprcli on lab nodes; `make demo` does too, and says so.

It answers the commands m7guard's roles and checks use from a JSON state file, so that a role
run changes what the next read sees, and it appends each call's argv (one JSON list per line)
to CALLS. Replies follow the shapes of the Data Fabric 7.x documentation (ReferenceGuide pages
dashboard-info, volume-info, volume-modify, volume-audit, acl-show, acl-set, acl-edit,
audit-info, audit-cluster, audit-data, config-load, config-save, nfsmgmt-refreshexports;
SecurityGuide pages DetermineClusterSecurity, VerifyOperations, IncludeExcludeOperations): the
envelope
{"timestamp", "timeofday", "status": "OK", "total", "data": [...]}; `dashboard info` with
data[0].cluster.secure and .dare as booleans; volume records with `volumename`, `mountdir`,
`volumeAces` {readAce, writeAce}, `audited` 0/1, `enableddataauditoperations` and
`disableddataauditoperations` as comma-separated strings; ACL entries {"Principal": "User
mapr", "Allowed actions": [...]}; `audit info` values as strings. Two volume fields are not
shown in any documented sample seen: `dare` and `wiresecurityenabled` (named after the
`volume create` options, given as 0/1 like `audited`); neither is a volume's
`enforcementmode` (named after the `volume modify` option; its four values are the
documented ones, SecurityGuide pages EnforcingSecurityPolicies, SecurityPolicyEnforcement),
nor the fields of a security policy record (`name`, the documented column name, and the
`security policy create` options `accesscontrol`, `allowtagging`, `auditenabled`,
`wiresecurityenabled`; ReferenceGuide pages policy-create, policy-modify, policy-info).

  maprcli dashboard info [-json]
  maprcli volume list [-columns ...] [-json]
  maprcli volume info -name V [-json]
  maprcli volume modify -name V [-readAce E] [-writeAce E] [-wiresecurityenabled true|false]
                        [-enforcementmode PolicyAceAndDataAce|PolicyAceOnly|DataAceOnly|
                                          PolicyAceAuditAndDataAce]
  maprcli volume audit -name V [-enabled true|false] [-dataauditops +op,-op,...]
  maprcli security policy list [-json]
  maprcli security policy info -name P [-json]
  maprcli security policy modify -name P [-accesscontrol Armed|Disarmed|Denied]
  maprcli acl show -type cluster [-json]
  maprcli acl set -type cluster [-user "NAME:perm,perm NAME:perm"] [-group "..."]
  maprcli acl edit -type cluster [-user "NAME:perm,..."] [-group "..."]
  maprcli config load -keys KEY[,KEY] [-json]
  maprcli config save -values '{"KEY":"VALUE"}'
  maprcli nfsmgmt refreshexports [-json]
  maprcli audit info [-json]
  maprcli audit cluster -enabled true|false
  maprcli audit data [-enabled true|false] [-maxsize GB] [-retention DAYS]

`volume modify` takes no `-dare`: the documentation lists it for `volume create` only. A
command named in the state's "errors" ({"volume list": "description"}) answers with the
documented error envelope ({"status": "ERROR", "errors": [{"id", "desc"}]}) and exit 1, as
does anything else (unknown command or option). What it does not do: authenticate (no
ticket is checked), enforce an ACE or audit anything.
"""

from __future__ import annotations

import json
import os
import sys
import time

DIR = os.environ.get("DATAFABRIC_STANDIN_DIR", "/var/lib/datafabric-standin")  # unit tests: tmp
CALLS = os.path.join(DIR, "calls.jsonl")
STATE = os.path.join(DIR, "state.json")
CLUSTERS_CONF = "/opt/mapr/conf/mapr-clusters.conf"
AUDIT_OPS = [
    "getattr", "setattr", "chown", "chperm", "chgrp", "getxattr", "listxattr", "setxattr",
    "removexattr", "read", "write", "create", "delete", "mkdir", "readdir", "rmdir", "createsym",
    "lookup", "rename", "createdev", "truncate", "tablecfcreate", "tablecfdelete",
    "tablecfmodify", "tablecfScan", "tableget", "tableput", "tablescan", "tablecreate",
    "tableinfo", "tablemodify", "getperm",
]
VOLUME_OPTIONS = {"name", "readAce", "writeAce", "wiresecurityenabled", "enforcementmode"}
ENFORCEMENT_MODES = ("PolicyAceAndDataAce", "PolicyAceOnly", "DataAceOnly",
                     "PolicyAceAuditAndDataAce")
ACCESS_CONTROL = ("Armed", "Disarmed", "Denied")


def _volume(name: str, mountdir: str, dare: int, wire: int, ace: str, audited: int,
            mode: str = "PolicyAceAndDataAce") -> dict:
    return {"volumename": name, "mountdir": mountdir, "mounted": 1, "volumetype": 0,
            "creator": "mapr", "aename": "mapr", "aetype": "0", "dare": dare,
            "wiresecurityenabled": wire, "volumeAces": {"readAce": ace, "writeAce": ace},
            "audited": audited, "coalesceInterval": 60,
            "enableddataauditoperations": ",".join(AUDIT_OPS),
            "disableddataauditoperations": "", "enforcementmode": mode}


def initial() -> dict:
    """A fresh stand-in: a secure cluster with DARE, as installed, whose data volumes were
    created encrypted at rest but left with the defaults for the rest (ACE p, no wire
    security, not audited; cards still in the permissive enforcement mode of a migration),
    a security policy created but never armed, and an ETL account that was given full
    control."""
    return {
        "config": {"mfs.feature.audit.support": "0"},
        "audit": {
            "cluster": {"enabled": "0", "maxSizeGB": "NA", "retentionDays": "NA"},
            "data": {"enabled": "0", "maxSizeGB": "32", "retentionDays": "90"},
        },
        "cluster": {"name": cluster_name(), "secure": True, "dare": True, "ip": "127.0.0.1",
                    "id": "7259083162958021514", "nodesUsed": 1, "totalNodesAllowed": -1},
        "volumes": {
            "mapr.cluster.root": _volume("mapr.cluster.root", "/", 1, 1, "p", 0),
            "mapr.var": _volume("mapr.var", "/var/mapr", 1, 1, "p", 0),
            "cards": _volume("cards", "/data/cards", 1, 0, "p", 0, "PolicyAceAuditAndDataAce"),
            "patients": _volume("patients", "/data/patients", 1, 0, "p", 0),
        },
        "acl": [
            {"Principal": "User mapr", "Allowed actions": ["login", "ss", "cv", "a", "fc", "cp"]},
            {"Principal": "User etl", "Allowed actions": ["login", "cv", "fc"]},
            {"Principal": "Group analysts", "Allowed actions": ["login"]},
        ],
        "policies": [
            {"name": "pci-cardholder", "accesscontrol": "Disarmed", "allowtagging": "false",
             "auditenabled": "true", "wiresecurityenabled": "true"},
        ],
        "errors": {},
    }


def cluster_name() -> str:
    try:
        with open(CLUSTERS_CONF, encoding="utf-8") as fh:
            for line in fh:
                if line.strip() and not line.lstrip().startswith("#"):
                    return line.split()[0]
    except OSError:
        pass
    return "standin.cluster"


def load() -> dict:
    try:
        with open(STATE, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return initial()


def save(state: dict) -> None:
    tmp = STATE + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, sort_keys=True, indent=1)
    os.replace(tmp, STATE)


def options(args: list[str]) -> dict[str, str]:
    out = {}
    i = 0
    while i < len(args):
        if args[i].startswith("-") and args[i] != "-json":
            out[args[i][1:]] = args[i + 1] if i + 1 < len(args) else ""
            i += 2
        else:
            i += 1
    return out


def _envelope(status: str, **rest: object) -> dict:
    now = time.time()
    return {"timestamp": int(now * 1000),
            "timeofday": time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime(now)),
            "status": status, **rest}


def reply(data: list) -> None:
    print(json.dumps(_envelope("OK", total=len(data), data=data), indent=1))


def fail(message: str, json_out: bool) -> None:
    if json_out:
        print(json.dumps(_envelope("ERROR", errors=[{"id": 10003, "desc": message}])))
    else:
        print(f"ERROR (10003) -  {message}", file=sys.stderr)
    raise SystemExit(1)


def flag(value: str, name: str, json_out: bool) -> str:
    if value not in ("true", "false", "1", "0"):
        fail(f"Invalid value for {name}: {value}", json_out)
    return "1" if value in ("true", "1") else "0"


def _principals(text: str, kind: str) -> list[dict]:
    out = []
    for part in text.split():
        name, _, perms = part.partition(":")
        out.append({"Principal": f"{kind} {name}",
                    "Allowed actions": [p for p in perms.split(",") if p]})
    return out


def _volume_of(state: dict, opts: dict[str, str], json_out: bool) -> dict:
    name = opts.get("name", "")
    if name not in state["volumes"]:
        fail(f"Volume lookup failed for volume {name}: No such file or directory", json_out)
    return state["volumes"][name]


def main(argv: list[str]) -> None:
    os.makedirs(DIR, exist_ok=True)
    with open(CALLS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(argv) + "\n")
    state = load()
    json_out = "-json" in argv
    size = 3 if argv[:1] == ["security"] else 2
    words = [a for a in argv if not a.startswith("-")][:size]
    opts = options(argv[size:])
    command = " ".join(words)
    if command in state.get("errors", {}):
        fail(state["errors"][command], json_out)
    if words == ["dashboard", "info"]:
        reply([{"version": "7.8.0.0 (stand-in)", "cluster": state["cluster"]}])
    elif words == ["volume", "list"]:
        reply([state["volumes"][n] for n in sorted(state["volumes"])])
    elif words == ["volume", "info"]:
        reply([_volume_of(state, opts, json_out)])
    elif words == ["volume", "modify"]:
        volume = _volume_of(state, opts, json_out)
        unknown = sorted(set(opts) - VOLUME_OPTIONS)
        if unknown:
            fail(f"Invalid parameter: {unknown[0]}", json_out)
        for key in ("readAce", "writeAce"):
            if key in opts:
                volume["volumeAces"][key] = opts[key]
        if "wiresecurityenabled" in opts:
            volume["wiresecurityenabled"] = int(flag(opts["wiresecurityenabled"],
                                                     "wiresecurityenabled", json_out))
        if "enforcementmode" in opts:
            if opts["enforcementmode"] not in ENFORCEMENT_MODES:
                fail(f"Invalid value for enforcementmode: {opts['enforcementmode']}", json_out)
            volume["enforcementmode"] = opts["enforcementmode"]
        save(state)
        reply([])
    elif words == ["security", "policy", "list"]:
        reply(state.get("policies", []))
    elif words in (["security", "policy", "info"], ["security", "policy", "modify"]):
        found = [p for p in state.get("policies", []) if p["name"] == opts.get("name")]
        if not found:
            fail(f"Security policy {opts.get('name', '')} does not exist", json_out)
        if words[2] == "modify":
            unknown = sorted(set(opts) - {"name", "accesscontrol"})
            if unknown:
                fail(f"Invalid parameter: {unknown[0]}", json_out)
            if "accesscontrol" in opts:
                if opts["accesscontrol"] not in ACCESS_CONTROL:
                    fail(f"Invalid value for accesscontrol: {opts['accesscontrol']}", json_out)
                found[0]["accesscontrol"] = opts["accesscontrol"]
            save(state)
            reply([])
        else:
            reply(found)
    elif words == ["volume", "audit"]:
        volume = _volume_of(state, opts, json_out)
        if "enabled" in opts:
            volume["audited"] = int(flag(opts["enabled"], "enabled", json_out))
        if "dataauditops" in opts:
            enabled = [o for o in volume["enableddataauditoperations"].split(",") if o]
            for item in opts["dataauditops"].split(","):
                op = item.lstrip("+-")
                if op not in AUDIT_OPS:
                    fail(f"Invalid data audit operation: {item}", json_out)
                if item.startswith("-"):
                    enabled = [o for o in enabled if o != op]
                elif op not in enabled:
                    enabled.append(op)
            volume["enableddataauditoperations"] = ",".join(o for o in AUDIT_OPS if o in enabled)
            volume["disableddataauditoperations"] = ",".join(
                o for o in AUDIT_OPS if o not in enabled)
        save(state)
        reply([])
    elif words == ["acl", "show"]:
        if opts.get("type") != "cluster":
            fail("the stand-in answers acl show -type cluster only", json_out)
        reply(state["acl"])
    elif words in (["acl", "set"], ["acl", "edit"]):
        if opts.get("type") != "cluster":
            fail("the stand-in answers acl set|edit -type cluster only", json_out)
        given = (_principals(opts.get("user", ""), "User")
                 + _principals(opts.get("group", ""), "Group"))
        if words[1] == "set":
            state["acl"] = given
        else:
            names = {e["Principal"] for e in given}
            state["acl"] = [e for e in state["acl"] if e["Principal"] not in names] + given
        save(state)
        reply([])
    elif words == ["config", "load"]:
        keys = opts.get("keys", "").split(",")
        reply([{k: state["config"].get(k, "") for k in keys if k}])
    elif words == ["config", "save"]:
        state["config"].update({k: str(v) for k, v in json.loads(opts["values"]).items()})
        save(state)
        reply([])
    elif words == ["nfsmgmt", "refreshexports"]:  # ReferenceGuide: nfsmgmt refreshexports
        reply([])
    elif words == ["audit", "info"]:
        reply([state["audit"]])
    elif words == ["audit", "cluster"]:
        if "enabled" not in opts:
            fail("Missing required parameter: enabled", json_out)
        state["audit"]["cluster"]["enabled"] = flag(opts["enabled"], "enabled", json_out)
        save(state)
        reply([])
    elif words == ["audit", "data"]:
        data = state["audit"]["data"]
        if "enabled" in opts:
            data["enabled"] = flag(opts["enabled"], "enabled", json_out)
        for opt, key in (("maxsize", "maxSizeGB"), ("retention", "retentionDays")):
            if opt in opts:
                if not opts[opt].isdigit():
                    fail(f"Invalid value for {opt}: {opts[opt]}", json_out)
                data[key] = opts[opt]
        save(state)
        reply([])
    else:
        fail(f"Unknown command: {' '.join(argv)}", json_out)


if __name__ == "__main__":
    main(sys.argv[1:])
