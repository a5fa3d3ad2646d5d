"""The mutation battery: realistic breaks of a hardened lab node, one rule at a time.

Each Break names the rule it must turn to `fail` (or `error`, where the break removes the
evidence), a shell command that breaks exactly one property of that rule on a node hardened
by playbooks/site.yml, and a command that restores the hardened state exactly. The battery
(tests/battery/runner.py; run by test_site.py on the container data nodes and by
test_vm1.py on vm1) applies breaks in rounds, audits
the nodes, requires each broken rule to have changed as expected and every rule not broken
to be as in the hardened audit, then restores (the plan of rounds is in runner.py).

Rules with several properties (a running and a persisted value, IPv4 and IPv6, several keys)
have one Break per property. The families' breaks are in the modules of this package.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

# Where a break keeps what it moves aside, on the node.
SAVE = "/root/m7guard-battery"


@dataclass(frozen=True)
class Break:
    rule: str
    what: str  # the one property broken, in a few words
    apply: str  # shell (run as root with sh -c on the node)
    restore: str  # shell that puts the hardened state back exactly
    expect: str = "fail"  # or "error": the break takes the evidence away
    nodes: tuple[str, ...] = ("node1", "node2", "node3")  # nodes the break may run on
    # State the break changes that no SAVE file names (the running ruleset, say): breaks that
    # name the same one never share a round on a node.
    claims: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.rule}: {self.what}"

    @property
    def keeps(self) -> frozenset[str]:
        """The files under SAVE this break writes (copies, recorded values, markers of what it
        created), and its claims. Two breaks that keep the same file touch the same thing on a
        node: they never share a round there, or the second would save the first one's break
        as the hardened state. A marker of a directory the break created (made_dir_*) is not one:
        the restores of a round run in the reverse order of its applies, so the break that
        created the directory removes it last."""
        found = re.findall(re.escape(SAVE) + r"/([A-Za-z0-9_.:@+-]+)", self.apply)
        return frozenset([name for name in found if not name.startswith("made_dir_")]
                         + list(self.claims))


# Ids of the breaks that change a path AIDE watches (/etc): AUD-008 fails with them on that
# node during the round. A record for the reader: the runner counts any move of AUD-008 from
# pass to fail during a round as a witness (runner.WITNESSES), whichever break caused it.
AIDE_WATCHED: set[str] = set()


def watched(brk: Break) -> Break:
    """Record that brk changes a path AIDE watches."""
    AIDE_WATCHED.add(brk.id)
    return brk


def tag(path: str) -> str:
    """A path as one file name under SAVE."""
    return path.strip("/").replace("/", "_")


def drop(path: str, lines: str, check: str = "true") -> tuple[str, str]:
    """(apply, restore) that create a new file (and its directory where missing) holding the
    printf arguments `lines` (shell words, one line each), then require `check`. Restore
    removes only what the apply created. The marker of a created directory names the file
    too: of several breaks that drop files into one new directory in a round, only the one
    that created it removes it (its restore runs last)."""
    directory = posixpath.dirname(path)
    made_dir = f"{SAVE}/made_dir_{tag(directory)}__for_{tag(path)}"
    made = f"{SAVE}/made_{tag(path)}"
    apply = (f"mkdir -p {SAVE} && {{ [ -d {directory} ] || {{ mkdir -p {directory} && "
             f"touch {made_dir}; }}; }} && [ ! -e {path} ] && touch {made} && "
             f"printf '%s\\n' {lines} > {path} && {check}")
    restore = (f"{{ [ ! -e {made} ] || {{ rm -f {path} && rm -f {made}; }}; }} && "
               f"{{ [ ! -e {made_dir} ] || {{ rmdir {directory} && rm -f {made_dir}; }}; }}")
    return apply, restore


def saved(path: str) -> str:
    """Where save() keeps the copy of path."""
    return f"{SAVE}/{path.replace('/', '_')}"


def save(path: str) -> str:
    """Shell: keep a copy of path (mode, owner and times) under SAVE."""
    return f"mkdir -p {SAVE} && cp -a {path} {saved(path)}"


def put_back(path: str) -> str:
    """Shell: restore path from the copy save() kept."""
    return f"cp -a {saved(path)} {path} && rm -f {saved(path)}"


def edit(path: str, sed: str) -> tuple[str, str]:
    """(apply, restore) that edit path in place with a sed script (unquoted: quoted here)
    and put it back. The apply fails when the script changed nothing."""
    return (f"{save(path)} && sed -i {shlex.quote(sed)} {path} && ! cmp -s {path} "
            f"{saved(path)}", put_back(path))


def append(path: str, text: str) -> tuple[str, str]:
    """(apply, restore) that append a line (unquoted: quoted here) to path and put it back."""
    return f"{save(path)} && printf '%s\\n' {shlex.quote(text)} >> {path}", put_back(path)


def chmod(path: str, how: str) -> tuple[str, str]:
    """(apply, restore): chmod path (how: a chmod mode) and put its mode back."""
    keep = f"{SAVE}/mode_{tag(path)}"
    apply = (f"mkdir -p {SAVE} && {{ [ -s {keep} ] || stat -c %a {path} > {keep}; }} && "
             f"chmod {how} {path} && [ \"$(stat -c %a {path})\" != \"$(cat {keep})\" ]")
    restore = f"{{ [ ! -s {keep} ] || chmod \"$(cat {keep})\" {path}; }} && rm -f {keep}"
    return apply, restore


def stopped(stop: str, start: str, check: str) -> tuple[str, str]:
    """(apply, restore): run stop, require check; restore runs start."""
    return f"{stop} && {check}", start


def disabled(unit: str) -> tuple[str, str]:
    """(apply, restore): the unit no longer starts at boot (its links under /etc go)."""
    return stopped(f"systemctl disable -q {unit}", f"systemctl enable -q {unit}",
                   f"! systemctl is-enabled -q {unit}")


FAMILIES = ("net", "enc", "idn", "aud", "kernel", "osb", "df")


def _modules() -> list:
    import importlib

    return [importlib.import_module(f"battery.{name}") for name in FAMILIES]


def all_breaks() -> list[Break]:
    """Every family's breaks."""
    return [brk for module in _modules() for brk in module.BREAKS]


def left_out() -> dict[str, str]:
    """Rules no break covers, with the reason."""
    out: dict[str, str] = {}
    for module in _modules():
        out.update(module.LEFT_OUT)
    return out


@dataclass(frozen=True)
class LabRun:
    """A lab test that runs the battery, and which breaks it takes: those that may run on
    its nodes, of its rule families (all when None)."""

    test: str  # pytest node id
    where: str
    nodes: tuple[str, ...]
    families: tuple[str, ...] | None = None

    def takes(self, brk: Break) -> bool:
        return bool(set(brk.nodes) & set(self.nodes)) and (
            self.families is None or brk.rule.split("-")[0] in self.families)


DATA_NODES = ("node1", "node2", "node3")
LAB_RUNS = {
    "data nodes": LabRun("tests/integration/test_site.py::"
                         "test_mutation_battery_on_the_hardened_data_nodes",
                         "lab container data nodes", DATA_NODES),
    "vm1 audit": LabRun("tests/integration/test_vm1.py::test_mutation_battery_of_the_audit_rules",
                        "lab vm1", ("vm1",), ("AUD",)),
    # OSB-004 (kernel modules) is the only OSB rule broken on vm1: its breaks share the
    # kernel rules' rounds
    "vm1 kernel": LabRun("tests/integration/test_vm1.py::"
                         "test_mutation_battery_of_the_kernel_rules", "lab vm1", ("vm1",),
                         ("KERN", "PERF", "OSB")),
}


def breaks_of(run: str) -> list[Break]:
    """The breaks the lab run named run (a key of LAB_RUNS) takes."""
    return [brk for brk in all_breaks() if LAB_RUNS[run].takes(brk)]


def runs(brk: Break) -> bool:
    """Whether a lab test runs this break."""
    return any(run.takes(brk) for run in LAB_RUNS.values())


def not_run() -> list[str]:
    """Rules with breaks that no lab test runs (a family written but not yet wired in)."""
    run_rules = {b.rule for b in all_breaks() if runs(b)}
    return sorted({b.rule for b in all_breaks()} - run_rules)
