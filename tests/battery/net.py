"""Breaks of the NET-* rules (network segmentation, zero_trust_network).

Every container data node runs its own network namespace, so the firewall rules are broken on
the containers themselves. The NET checks judge the live ruleset (`nft -j list ruleset`),
and NET-005 requires it to equal /etc/nftables.conf: a break of a filtering property is
therefore made the way an operator changes the firewall for good, by editing
/etc/nftables.conf and loading it with `nft -f` (the file replaces the role's table
`inet m7guard` atomically), and restored by putting the file back and loading it again.
Only NET-005's own breaks make the running and the persisted ruleset differ.

The zones and the services a node should run are taken from the inventory on the controller,
not from the declaration the node carries (/etc/ansible/facts.d/zero_trust_network.fact),
so editing that declaration changes no verdict and is no break. New rules are inserted just
before the drop log statement of the input chain, next to the role's own accept rules. The
ports used are ones no lab node declares (node exporter 9100, Hive metastore 9083,
HiveServer2 10000, the canary 4444), so no declared-service comparison (NET-004's open-to-
clients check, NET-008's IPv4/IPv6 parity) moves with them; `meta nfproto` keeps a break to
one address family where the other family is another rule's property.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from battery import Break, append, edit, put_back, saved

NFT_CONF = "/etc/nftables.conf"
TABLE = "inet m7guard"  # zero_trust_network_table (the lab keeps the default)
RELOAD = f"nft -f {NFT_CONF}"
# The input chain's drop log statement (zero_trust_network_log_prefix); the egress chain's
# prefix is "m7guard-drop-out ", which this does not match.
LOG_LINE = '/log prefix "m7guard-drop "/'



def _put_back_if_saved(path: str) -> str:
    """Shell: put path back when a copy was saved (a failed apply may not have saved one)."""
    return f"{{ [ ! -e {saved(path)} ] || {{ {put_back(path)}; }}; }}"


def _ruleset(sed: str) -> tuple[str, str]:
    """(apply, restore): edit the persisted ruleset with a sed script and load it."""
    apply, _ = edit(NFT_CONF, sed)
    return f"{apply} && {RELOAD}", f"{_put_back_if_saved(NFT_CONF)} && {RELOAD}"


def _insert(rule: str) -> tuple[str, str]:
    """(apply, restore): add a rule to the input chain before the drop log, persisted."""
    return _ruleset(f"{LOG_LINE}i {rule}")


def _listener(proto: str, port: int) -> tuple[str, str]:
    """(apply, restore): an undeclared service bound on every IPv4 address, as a transient
    systemd unit; the apply waits until `ss` shows the socket."""
    unit = f"m7guard-battery-{proto}{port}"
    kind, tail, flag = (("SOCK_STREAM", "; s.listen()", "t") if proto == "tcp"
                        else ("SOCK_DGRAM", "", "u"))
    code = (f"import socket, time; s = socket.socket(socket.AF_INET, socket.{kind}); "
            f"s.bind(('0.0.0.0', {port})){tail}; time.sleep(86400)")
    seen = f"ss -H{flag}ln | grep -q ':{port}[[:space:]]'"
    apply = (f"ok=1; systemd-run --quiet --collect --unit={unit} python3 -c "
             f"{shlex.quote(code)} && for i in $(seq 20); do "
             f"if {seen}; then ok=0; break; fi; sleep 0.5; done; [ \"$ok\" = 0 ]")
    restore = (f"systemctl stop {unit}.service 2>/dev/null; "
               f"systemctl reset-failed {unit}.service 2>/dev/null; sleep 0.5; ! {seen}")
    return apply, restore


_BAD_LINE = "tcp dport 4444 accept"  # a rule outside any table: the file no longer loads
_PERSIST_BROKEN = append(NFT_CONF, _BAD_LINE)

_BREAKS: list[Break] = [
    # NET-001: default deny. IPv4 only: an IPv6 canary opening is also NET-008's property
    # (its first check), so the IPv6 half of NET-001 cannot be broken alone; likewise a
    # missing input chain for a family.
    Break("NET-001", "IPv4 canary tcp/4444 accepted from anywhere",
          *_insert('meta nfproto ipv4 tcp dport 4444 accept comment "tcp/4444 opened"')),
    # NET-002: admin ports only from the admin networks, per family. SSH over IPv6 is also
    # NET-008's property, hence node exporter 9100 (an admin port no lab node declares).
    # "The admin networks are every address" is judged on the controller's inventory
    # zones, not on the node: no node break for it.
    Break("NET-002", "IPv4 node exporter tcp/9100 open to every address",
          *_insert('meta nfproto ipv4 tcp dport 9100 accept comment "node exporter"')),
    Break("NET-002", "IPv6 node exporter tcp/9100 open to every address",
          *_insert('meta nfproto ipv6 tcp dport 9100 accept comment "node exporter"')),
    # NET-003: cluster-internal ports only from the cluster networks, per family.
    Break("NET-003", "IPv4 Hive metastore tcp/9083 open to the client network",
          *_insert('ip saddr @zone_clients_v4 tcp dport 9083 accept comment "hive metastore"')),
    Break("NET-003", "IPv6 Hive metastore tcp/9083 open to the client network",
          *_insert('ip6 saddr @zone_clients_v6 tcp dport 9083 accept comment '
                   '"hive metastore"')),
    # NET-004: client ports never from untrusted networks (per family), and the declared
    # client services open to the clients. Those are closed over both families at once:
    # closing one family alone would also break NET-008's parity.
    Break("NET-004", "IPv4 HiveServer2 tcp/10000 open to every address",
          *_insert('meta nfproto ipv4 tcp dport 10000 accept comment "hiveserver2"')),
    Break("NET-004", "IPv6 HiveServer2 tcp/10000 open to every address",
          *_insert('meta nfproto ipv6 tcp dport 10000 accept comment "hiveserver2"')),
    Break("NET-004", "declared client services closed to the clients (IPv4 and IPv6)",
          *_ruleset(r"/saddr @zone_clients_v[46] tcp dport /d")),
    # NET-005: boot persistence. Each break leaves every filtering property as hardened.
    Break("NET-005", "nftables.service disabled at boot",
          "systemctl disable --quiet nftables.service && "
          '[ "$(systemctl is-enabled nftables.service)" = disabled ]',
          "systemctl enable --quiet nftables.service"),
    Break("NET-005", "/etc/nftables.conf no longer loads (a stray rule outside the table)",
          f"{_PERSIST_BROKEN[0]} && ! nft -c -f {NFT_CONF} 2>/dev/null",
          _put_back_if_saved(NFT_CONF)),
    Break("NET-005", "a rule added to the running ruleset only, not persisted",
          f"nft add rule {TABLE} input ip saddr 203.0.113.7 drop",
          RELOAD),
    # Stopping nftables.service flushes the ruleset (ExecStop); the operator then loads the
    # same file by hand, so only the unit's state differs. `start` loads the file again.
    Break("NET-005", "nftables.service stopped, ruleset loaded by hand",
          f"systemctl stop nftables.service && {RELOAD} && "
          "! systemctl is-active --quiet nftables.service",
          "systemctl start nftables.service"),
    # NET-006: drops logged with a prefix and a rate limit, for each family.
    Break("NET-006", "IPv6 drops not logged (log statement limited to IPv4)",
          *_ruleset(f"{LOG_LINE}s/limit rate/meta nfproto ipv4 limit rate/")),
    Break("NET-006", "IPv4 drops not logged (log statement limited to IPv6)",
          *_ruleset(f"{LOG_LINE}s/limit rate/meta nfproto ipv6 limit rate/")),
    Break("NET-006", "drop log without a prefix",
          *_ruleset(f'{LOG_LINE}s/log prefix "m7guard-drop " level/log level/')),
    Break("NET-006", "drop log without a rate limit",
          *_ruleset(f"{LOG_LINE}s/limit rate [^ ]* burst [0-9]* packets //")),
    # NET-007: no undeclared listener (the firewall still drops the port: only NET-007).
    Break("NET-007", "undeclared TCP listener on 0.0.0.0:4444", *_listener("tcp", 4444)),
    Break("NET-007", "undeclared UDP socket on 0.0.0.0:4444", *_listener("udp", 4444)),
    # NET-008: its canary and SSH-over-IPv6 properties are shared with NET-001 and NET-002
    # (see above); the IPv4/IPv6 parity of the declared services is its own.
    Break("NET-008", "cluster services closed over IPv6, open over IPv4",
          *_ruleset(r"/ip6 saddr @zone_cluster_v6 tcp dport /d")),
]

# Every break but the listeners changes the ruleset (persisted, loaded or both) or the unit
# that loads it: a reload by one would carry or undo another's change, so no two share a
# round on a node.
BREAKS = [brk if brk.rule == "NET-007" else replace(brk, claims=("nftables",))
          for brk in _BREAKS]

LEFT_OUT: dict[str, str] = {
    "NET-009": "needs /opt/mapr/conf/mfs.conf: MapR is not installed on the lab nodes, so "
               "the rule is notapplicable there",
    "NET-010": "already fails on the hardened lab: egress stays open there "
               "(zero_trust_network_egress_policy accept), so a break proves nothing",
}
