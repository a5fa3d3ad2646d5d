"""Data Fabric checks: the DF-* rules of policies/rules/data_fabric/.

Most of these rules read the cluster, not the node: `maprcli ... -json` on one CLDB node of
each cluster. They are cluster rules (`scope: cluster`): the audit runs each once per cluster
and reports it under the cluster's name (m7guard.checks.support.cluster). DF-007 reads files
of every Data Fabric node, DF-008 its NFSv3 gateway: they are node rules. The JSON shapes are
those HPE Ezmeral Data Fabric 7.x documents for dashboard info, volume list and acl show; an
error reply, a missing field or a value the check cannot read is `error`, never `pass`.

Which volumes are regulated, who may administer the cluster and which operations a volume
audits are the data_fabric role's variables, read from the inventory (else the role's
defaults), and judged with the role's own functions (m7guard.checks.support.data_fabric): the
check and the remediation cannot disagree on them.
"""

from __future__ import annotations

import re
from typing import Any

from m7guard.checks import rule
from m7guard.checks.support.data_fabric import maprcli, role_module, setting
from m7guard.checks.support.files import read_files
from m7guard.checks.support.netplan import inventory_services
from m7guard.checks.support.verdict import EvidenceError, conclude
from m7guard.checks.zero_trust_network import inventory_zones


def _regulated(host: Any, evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The regulated volumes (maprcli volume list), with what decided which they are."""
    patterns = setting(host, "regulated_volumes")
    volumes = maprcli(host, evidence, "volume", "list")
    module = role_module()
    try:
        chosen = module.regulated(volumes, patterns)
    except module.DataFabricError as exc:
        raise EvidenceError(str(exc)) from None
    evidence["regulated_volumes"] = {
        "patterns": patterns if patterns is not None else "every volume but mapr.*",
        "volumes": [v["volumename"] for v in chosen],
        "all_volumes": sorted(str(v.get("volumename")) for v in volumes),
    }
    if not chosen:  # a pattern that matches nothing is a mistake, not a cluster without risk
        raise EvidenceError(
            "no volume of the cluster is regulated (data_fabric_regulated_volumes: "
            f"{patterns if patterns is not None else 'every volume but mapr.*'}; volumes: "
            f"{', '.join(evidence['regulated_volumes']['all_volumes']) or 'none'}): "
            "nothing to judge")
    return chosen


@rule("DF-001")
def test_df_001(host: Any, evidence: dict[str, Any]) -> None:
    """The cluster runs secure and has encryption at rest on (maprcli dashboard info)."""
    data = maprcli(host, evidence, "dashboard", "info")
    cluster = data[0].get("cluster") if len(data) == 1 else None
    if not isinstance(cluster, dict):
        raise EvidenceError("maprcli dashboard info has no cluster entry")
    evidence["cluster"] = {k: cluster.get(k) for k in ("name", "id", "secure", "dare")}
    flag = role_module().flag
    failures, unknowns = [], []
    for key, what in (("secure", "secure"), ("dare", "encrypting data at rest (dare)")):
        value = flag(cluster, key)
        if value is None:
            unknowns.append(f"dashboard info gives no usable {key!r}: {cluster.get(key)!r}")
        elif not value:
            failures.append(f"the cluster is not {what}")
    conclude(failures, unknowns)


@rule("DF-002")
def test_df_002(host: Any, evidence: dict[str, Any]) -> None:
    """Every regulated volume has DARE and wire security on."""
    flag = role_module().flag
    failures, unknowns = [], []
    for volume in _regulated(host, evidence):
        name = volume["volumename"]
        for key in ("dare", "wiresecurityenabled"):
            value = flag(volume, key)
            if value is None:
                unknowns.append(f"volume {name}: no usable {key!r} ({volume.get(key)!r})")
            elif not value:
                failures.append(f"volume {name}: {key} is off")
    conclude(failures, unknowns)


@rule("DF-003")
def test_df_003(host: Any, evidence: dict[str, Any]) -> None:
    """No regulated volume grants read or write access to everyone (`p`)."""
    module = role_module()
    failures, unknowns = [], []
    shown = evidence.setdefault("aces", {})
    for volume in _regulated(host, evidence):
        name = volume["volumename"]
        for key, ace in module.aces(volume).items():
            shown.setdefault(name, {})[key] = ace
            if not isinstance(ace, str):
                unknowns.append(f"volume {name}: no {key}")
                continue
            public = module.ace_is_public(ace)
            if public is None:
                unknowns.append(f"volume {name}: {key} {ace!r} cannot be parsed")
            elif public:
                failures.append(f"volume {name}: {key} {ace!r} grants everyone (p)")
    conclude(failures, unknowns)


@rule("DF-004")
def test_df_004(host: Any, evidence: dict[str, Any]) -> None:
    """Every regulated volume is audited for the declared data operations."""
    module = role_module()
    wanted = list(setting(host, "audit_operations"))
    evidence["audit_operations"] = wanted
    failures, unknowns = [], []
    for volume in _regulated(host, evidence):
        name = volume["volumename"]
        audited = module.flag(volume, "audited")
        if audited is None:
            unknowns.append(f"volume {name}: no usable 'audited' ({volume.get('audited')!r})")
            continue
        if not audited:
            failures.append(f"volume {name} is not audited")
            continue
        missing = module.audit_ops_missing(volume, wanted)
        if missing is None:
            unknowns.append(f"volume {name}: no enableddataauditoperations")
        elif missing:
            failures.append(f"volume {name} does not audit {', '.join(missing)}")
    conclude(failures, unknowns)


@rule("DF-005")
def test_df_005(host: Any, evidence: dict[str, Any]) -> None:
    """Only the declared administrators hold fc or a in the cluster's ACL."""
    module = role_module()
    admins = list(setting(host, "cluster_admins"))
    entries = maprcli(host, evidence, "acl", "show", "-type", "cluster")
    try:
        holders = module.acl_holders(entries)
    except module.DataFabricError as exc:
        raise EvidenceError(str(exc)) from None
    evidence["admins"] = {"declared": admins, "holders": holders}
    conclude([f"{p} holds {', '.join(perms)} without being a declared administrator"
              for p, perms in sorted(holders.items()) if p not in admins])


@rule("DF-006")
def test_df_006(host: Any, evidence: dict[str, Any]) -> None:
    """The required security policies exist and are armed, and every regulated volume
    enforces them with its own ACEs (enforcement mode PolicyAceAndDataAce)."""
    module = role_module()
    names = setting(host, "security_policies")
    policies = maprcli(host, evidence, "security", "policy", "list")
    try:
        required, missing = module.policy_state(policies, names)
    except module.DataFabricError as exc:
        raise EvidenceError(str(exc)) from None
    evidence["security_policies"] = {
        "required": names if names is not None else "every policy of the cluster",
        "access_control": required}
    failures, unknowns = [], []
    if names is None and not required:
        failures.append("the cluster has no security policy")
    elif names is not None and not module.names_of(names, "data_fabric_security_policies"):
        evidence["security_policies"]["note"] = (
            "data_fabric_security_policies is []: no security policy is required")
    failures += [f"security policy {n} does not exist" for n in missing]
    for name, state in required.items():
        if state not in module.ACCESS_CONTROL:
            unknowns.append(f"security policy {name}: no usable accesscontrol ({state!r})")
        elif state not in module.ENFORCING:
            failures.append(f"security policy {name} is {state}: its ACEs are not enforced")
    modes = evidence.setdefault("enforcement_modes", {})
    for volume in _regulated(host, evidence):
        name, mode = volume["volumename"], volume.get("enforcementmode")
        modes[name] = mode
        if mode not in module.MODES:
            unknowns.append(f"volume {name}: no usable enforcementmode ({mode!r})")
        elif mode == module.PERMISSIVE:
            failures.append(f"volume {name} is in the permissive mode {mode}: policy "
                            "violations are audited, not refused")
        elif mode != module.ENFORCED:
            failures.append(f"volume {name} is in enforcement mode {mode}, not "
                            f"{module.ENFORCED}")
    conclude(failures, unknowns)


_GLOB = re.compile(r"^[A-Za-z0-9_./*?\[\]-]+$")


@rule("DF-007")
def test_df_007(host: Any, evidence: dict[str, Any]) -> None:
    """No key or trust store password in clear text in the node's Hadoop ssl-server.xml and
    ssl-client.xml (release 7.0 keeps them in credential stores)."""
    module = role_module("data_fabric_ssl_passwords")
    patterns = list(setting(host, "ssl_configuration"))
    bad = [p for p in patterns if not isinstance(p, str) or not _GLOB.match(p)]
    if bad:
        raise EvidenceError(f"data_fabric_ssl_configuration: {bad[0]!r} is not a path pattern")
    files = read_files(host, " ".join(patterns))
    evidence["patterns"] = patterns
    evidence["files"] = sorted(files)
    if not files:
        raise EvidenceError(f"no SSL configuration file matches {' '.join(patterns)}: a Data "
                            "Fabric node has its Hadoop ssl-server.xml and ssl-client.xml")
    failures, found = [], {}
    for path, text in sorted(files.items()):
        try:
            names = module.clear_text_passwords(text, path)
        except module.SslConfigError as exc:
            raise EvidenceError(str(exc)) from None
        found[path] = names  # the names only: a value never reaches the evidence
        failures += [f"{path}: {name} holds a clear-text password" for name in names]
    evidence["clear_text_properties"] = found
    conclude(failures)


NFS_ROLE = "/opt/mapr/roles/nfs"
NFS_PID = "/opt/mapr/pid/nfsserver.pid"
EXPORTS = "/opt/mapr/conf/exports"
_GATEWAY = (f'[ -e {NFS_ROLE} ] && echo role; p=$(cat {NFS_PID} 2>/dev/null); '
            'if [ -n "$p" ] && [ -d "/proc/$p" ]; then echo "running $p"; fi; echo end')


def _nfs_admitted(host: Any) -> tuple[list[str], dict[str, Any]]:
    """The networks zero_trust_network admits to the nfs service on this host, computed from
    the inventory as the role computes them (zones of the service, their networks)."""
    zones, why = inventory_zones(host)
    if zones is None:
        raise EvidenceError("the networks zero_trust_network admits to NFS on this node cannot "
                            f"be computed ({why}): audit with the inventory")
    services = inventory_services(host.backend.get_variables(), zones)
    nfs = services.get("nfs")
    nets = sorted({n for z in (nfs or {}).get("zones", []) for n in zones.get(z, [])})
    return nets, {"nfs_service": bool(nfs), "zones": (nfs or {}).get("zones", [])}


@rule("DF-008")
def test_df_008(host: Any, evidence: dict[str, Any]) -> None:
    """An NFSv3 gateway (no authentication, no encryption) exports only to the declared
    clients (data_fabric_nfs_clients), which zero_trust_network admits to NFS; no gateway
    at all passes."""
    module = role_module("data_fabric_nfs_exports")
    probe = host.run("sh -c %s", _GATEWAY).stdout.splitlines()
    if not probe or probe[-1] != "end":
        raise EvidenceError("the NFSv3 gateway probe did not complete")
    role, running = "role" in probe, [p for p in probe if p.startswith("running ")]
    evidence["gateway"] = {"role_file": role, "process": running[0][8:] if running else None}
    if not role:
        if running:
            conclude([f"an NFSv3 gateway runs (pid {running[0][8:]}, {NFS_PID}) though "
                      f"{NFS_ROLE} is absent"])
        evidence["gateway"]["verdict"] = f"no NFSv3 gateway on this node (no {NFS_ROLE})"
        return
    files = read_files(host, EXPORTS)
    if EXPORTS not in files:
        raise EvidenceError(f"{NFS_ROLE} is present but {EXPORTS} cannot be read")
    admitted_nets, zt = _nfs_admitted(host)
    try:
        lines = module.exports(files[EXPORTS], EXPORTS)
        clients = setting(host, "nfs_clients")
        declared = module.networks([] if clients is None else clients)
        admitted = module.networks(admitted_nets, "zero_trust_network_zones")
    except module.ExportsError as exc:
        raise EvidenceError(str(exc)) from None
    evidence["exports"] = [{"line": e.lineno, "path": e.path, "access": e.entries}
                           for e in lines]
    evidence["declared_clients"] = ([str(n) for n in declared] if clients is not None else
                                    "none: data_fabric_nfs_clients is not set")
    evidence["zero_trust_nfs"] = {**zt, "networks": admitted_nets}
    failures, unknowns = [], []
    for export in lines:
        for hosts, opts in export.entries:
            if not hosts:
                failures.append(f"{EXPORTS} line {export.lineno}: {export.path} is exported "
                                f"to every host ({opts})")
            for client in hosts:
                if module.within(client, declared) is None:
                    unknowns.append(f"{EXPORTS} line {export.lineno}: {client} is a host "
                                    "name, not judged")
                    continue
                if not module.within(client, declared):
                    failures.append(f"{EXPORTS} line {export.lineno}: {export.path} is "
                                    f"exported to {client}, not a declared NFS client")
                if not module.within(client, admitted):
                    failures.append(f"{EXPORTS} line {export.lineno}: {export.path} is "
                                    f"exported to {client}, which zero_trust_network does "
                                    "not admit to NFS on this node")
    conclude(failures, unknowns)


@rule("DF-009")
def test_df_009(host: Any, evidence: dict[str, Any]) -> None:
    """Every Data Fabric ticket file on the node (by default the user tickets
    /tmp/maprticket_*) holds tickets whose lifetime and renewal limit are within the policy,
    read with `maprlogin print`."""
    module = role_module("data_fabric_tickets")
    patterns = list(setting(host, "ticket_files"))
    bad = [p for p in patterns if not isinstance(p, str) or not _GLOB.match(p)]
    if bad:
        raise EvidenceError(f"data_fabric_ticket_files: {bad[0]!r} is not a path pattern")
    limits = (int(setting(host, "ticket_max_lifetime_days")),
              int(setting(host, "ticket_max_renewal_days")))
    evidence["policy"] = {"max_lifetime_days": limits[0], "max_renewal_days": limits[1]}
    listing = host.run("sh -c %s", f'for f in {" ".join(patterns)}; do [ -f "$f" ] && '
                                   'echo "file $f"; done; echo end').stdout.splitlines()
    if not listing or listing[-1] != "end":
        raise EvidenceError("the listing of ticket files did not complete")
    files = [line[5:] for line in listing if line.startswith("file ")]
    evidence["ticket_files"] = files
    if not files:
        evidence["verdict"] = f"no ticket file matches {' '.join(patterns)}"
        return
    failures, unknowns, seen = [], [], {}
    for path in files:
        run = host.run("env MAPR_TICKETFILE_LOCATION=%s %s print", path,
                       setting(host, "maprlogin"))
        if run.rc != 0:
            unknowns.append(f"{path}: maprlogin print failed: "
                            f"{(run.stderr or run.stdout).strip()[:300]}")
            continue
        try:
            seen[path] = module.tickets(run.stdout, path)
        except module.TicketError as exc:
            unknowns.append(str(exc))
            continue
        for ticket in seen[path]:
            over = module.over_policy(ticket, *limits)
            if over:
                failures.append(f"{path}: the ticket of {ticket['user']} for "
                                f"{ticket['cluster']} {' and '.join(over)}")
    evidence["tickets"] = seen
    conclude(failures, unknowns)
