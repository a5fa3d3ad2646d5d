"""The battery's runner on a simulated lab: a break that does not turn its rule, one that
moves another rule, a failed restore and a rule that was not passing are all reported."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from battery import Break, all_breaks, left_out, not_run, runs
from battery.runner import Cells, isolated_first, plan_rounds, run

NODES = ("node1", "node2", "node3")
RULES = ("A-1", "A-2", "A-3")


class FakeLab:
    """Nodes whose rules pass unless a break set them; breaks are shell words `break R` /
    `break R also S` (R fails, S too) and `restore`; `broken-restore` fails."""

    def __init__(self, failing_at_start: tuple[tuple[str, str], ...] = ()) -> None:
        self.broken: dict[str, set[str]] = {n: set() for n in NODES}
        self.stuck = set(failing_at_start)
        self.audits = 0

    def ssh(self, node: str, command: str) -> subprocess.CompletedProcess[str]:
        words = command.split()
        if words[0] == "break":
            self.broken[node] |= {w for w in words[1:] if w != "also"}
        elif words[0] == "restore":
            self.broken[node].clear()
        elif words[0] == "noop":
            pass
        else:
            return subprocess.CompletedProcess(command, 1, "", "no such command")
        return subprocess.CompletedProcess(command, 0, "", "")

    def audit(self, nodes: Sequence[str], tag: str) -> Cells:
        self.audits += 1
        return {(n, r): ("fail" if r in self.broken[n] or (n, r) in self.stuck else "pass", "")
                for n in nodes for r in RULES}


def test_rounds_take_one_break_per_node() -> None:
    breaks = [Break(r, "x", "break", "restore") for r in RULES * 2]
    rounds = plan_rounds(breaks, NODES)
    assert [len(r) for r in rounds] == [3, 3]
    only1 = [Break(r, "x", "break", "restore", nodes=("node1",)) for r in RULES]
    assert [[n for n, _ in r] for r in plan_rounds(only1, NODES)] == [["node1"]] * 3
    assert plan_rounds([Break("A-1", "x", "a", "r", nodes=("vm1",))], NODES) == []


def test_shared_rounds_take_one_break_per_rule_and_node() -> None:
    vm = [Break(r, f"p{i}", "break", "restore", nodes=("vm1",)) for i in (1, 2) for r in RULES]
    rounds = plan_rounds(vm, ("vm1",), share=True)
    assert [sorted(b.rule for _, b in r) for r in rounds] == [list(RULES), list(RULES)]


def test_good_breaks_give_no_problem() -> None:
    lab = FakeLab()
    breaks = [Break(r, "x", f"break {r}", "restore") for r in RULES]
    report = run(lab.ssh, lab.audit, breaks, NODES)
    assert report.problems == [] and report.breaks == 3 and report.rules == set(RULES)
    assert lab.audits == 3  # hardened, one round, restored


def test_every_misfire_is_reported() -> None:
    lab = FakeLab(failing_at_start=(("node3", "A-3"),))
    breaks = [
        Break("A-1", "does nothing", "noop", "restore", nodes=("node1",)),
        Break("A-2", "moves A-3 too", "break A-2 also A-3", "restore", nodes=("node2",)),
        Break("A-3", "not passing when hardened", "break A-3", "restore", nodes=("node3",)),
        Break("A-1", "cannot restore", "break A-1", "broken-restore", nodes=("node1",)),
        Break("A-2", "cannot apply", "unknown", "restore", nodes=("node2",)),
    ]
    report = run(lab.ssh, lab.audit, breaks, NODES)
    text = "\n".join(report.problems)
    assert "A-1: does nothing on node1: pass (expected fail)" in text
    assert "A-2: moves A-3 too on node2: other rules changed: A-3 pass -> fail" in text
    assert "A-3: not passing when hardened on node3: the rule is fail" in text
    assert "A-1: cannot restore on node1: the restore failed" in text
    assert "A-2: cannot apply on node2: the break did not apply" in text
    assert "after every restore the nodes differ from the hardened audit: node1 A-1" in text


def test_the_families_load_and_name_known_rules() -> None:
    """Every break and every rule left out names a rule of the catalog, once each way."""
    from m7guard.catalog import load_catalog

    rules = set(load_catalog().rules)
    breaks = all_breaks()
    assert breaks
    assert {b.rule for b in breaks} <= rules
    assert set(left_out()) <= rules
    assert not {b.rule for b in breaks} & set(left_out())
    for brk in breaks:
        assert brk.expect in ("fail", "error") and brk.apply and brk.restore, brk


def test_every_host_rule_is_broken_or_left_out_with_a_reason() -> None:
    """The battery's coverage claim: each rule a host check evaluates (all but the PRE-*
    preflight rules, which judge the inventory and are proven in tests/unit/preflight) has
    a break or a stated reason."""
    from m7guard.catalog import load_catalog

    host_rules = {r for r in load_catalog().rules if not r.startswith("PRE-")}
    covered = {b.rule for b in all_breaks() if runs(b)}
    missing = sorted(host_rules - covered - set(left_out()))
    assert missing == [], missing
    assert not_run() == [], "breaks no lab test runs (battery.LAB_RUNS)"
    assert all(why.strip() for why in left_out().values())
    print(f"\nbattery: {len(covered)} of {len(host_rules)} host rules broken by a lab test; "
          f"left out {len(left_out())} (each proven by the tests tests/proofs.py names)")


def test_a_witness_seeing_the_break_is_counted_not_a_problem() -> None:
    lab = FakeLab()
    from battery import runner

    audit = lab.audit

    def audit_with_witness(nodes: Sequence[str], tag: str) -> Cells:
        cells = audit(nodes, tag)
        for n in nodes:
            cells[(n, "AUD-008")] = ("fail" if lab.broken[n] else "pass", "")
        return cells

    report = runner.run(lab.ssh, audit_with_witness,
                        [Break("A-1", "x", "break A-1", "restore")], NODES)
    assert report.problems == [] and report.witnessed == {"AUD-008": 1}, report
    assert "AUD-008 saw 1" in report.summary()


def test_isolated_first_puts_each_rules_first_break_alone_on_its_node() -> None:
    breaks = [Break(r, f"p{i}", f"break {r}", "restore") for r in RULES for i in (1, 2, 3)]
    rounds = isolated_first(breaks, NODES)
    first = rounds[0]
    assert sorted(b.what for _, b in first) == ["p1"] * 3 and len({n for n, _ in first}) == 3
    rest = rounds[1:]
    assert all(b.what != "p1" for r in rest for _, b in r)
    assert sum(len(r) for r in rounds) == 9
    lab = FakeLab()
    report = run(lab.ssh, lab.audit, breaks, NODES, rounds=rounds)
    assert report.problems == [] and report.breaks == 9


def test_breaks_that_keep_the_same_file_never_share_a_round_on_a_node() -> None:
    """Two edits of one file in one round would save the first edit as the hardened copy:
    the planner keeps them apart; every round of the real battery holds no such pair."""
    from battery import edit

    a = Break("A-1", "first edit", *edit("/etc/x.conf", "s/a/b/"), nodes=("node1",))
    b = Break("A-2", "second edit", *edit("/etc/x.conf", "s/c/d/"), nodes=("node1",))
    c = Break("A-3", "other file", *edit("/etc/y.conf", "s/c/d/"), nodes=("node1",))
    assert a.keeps == b.keeps and not a.keeps & c.keeps
    rounds = plan_rounds([a, b, c], NODES, share=True)
    assert [[brk.rule for _, brk in r] for r in rounds] == [["A-1", "A-3"], ["A-2"]]
    for plan in (isolated_first(all_breaks(), NODES),
                 plan_rounds(all_breaks(), ("vm1",), share=True)):
        for round_ in plan:
            kept: dict[tuple[str, str], str] = {}
            for node, brk in round_:
                for k in brk.keeps:
                    assert (node, k) not in kept, (brk.id, kept[(node, k)], node, k)
                    kept[(node, k)] = brk.id


def test_the_persisted_sysctl_breaks_use_a_file_each() -> None:
    """Each persisted-value break writes its own sysctl.d file, so breaks of different keys
    can share a round."""
    persisted = [b for b in all_breaks() if "persisted by a later sysctl.d file" in b.what]
    assert len(persisted) > 10
    assert all(len(b.keeps) == 1 for b in persisted)
    assert len({k for b in persisted for k in b.keeps}) == len(persisted)


def test_save_and_put_back_restore_the_file_exactly(tmp_path, monkeypatch) -> None:
    """The shell of edit(): the apply changes the file and keeps a copy, the restore puts
    the original back (content and mode) and removes the copy."""
    import battery

    monkeypatch.setattr(battery, "SAVE", str(tmp_path / "save"))
    target = tmp_path / "etc" / "x.conf"
    target.parent.mkdir()
    target.write_text("a = 1\nc = 2\n")
    target.chmod(0o640)
    apply, restore = battery.edit(str(target), "s/^a = 1$/a = 0/")
    subprocess.run(["sh", "-c", apply], check=True)
    assert target.read_text() == "a = 0\nc = 2\n"
    subprocess.run(["sh", "-c", restore], check=True)
    assert target.read_text() == "a = 1\nc = 2\n" and target.stat().st_mode & 0o777 == 0o640
    assert list((tmp_path / "save").iterdir()) == []
    apply, _ = battery.edit(str(target), "s/^nothing$/x/")
    assert subprocess.run(["sh", "-c", apply]).returncode != 0  # changed nothing: refused


def test_a_failed_restore_stops_the_battery() -> None:
    lab = FakeLab()
    breaks = [Break("A-1", "cannot restore", "break A-1", "broken-restore", nodes=("node1",)),
              Break("A-2", "later", "break A-2", "restore", nodes=("node1",))]
    report = run(lab.ssh, lab.audit, breaks, NODES)
    text = "\n".join(report.problems)
    assert "A-1: cannot restore on node1: the restore failed" in text
    assert "the battery stopped after round 1" in text
    assert report.breaks == 1 and "A-2" not in lab.broken["node1"]


def test_a_volatile_rule_is_not_compared_and_not_broken() -> None:
    """A rule whose verdict follows a live reading (say, clock synchronisation on an
    emulated VM) is named with its reason; its moves are not problems, a break of it is."""
    lab = FakeLab()
    breaks = [Break("A-1", "moves A-3", "break A-1 also A-3", "restore", nodes=("node1",)),
              Break("A-3", "break of the volatile rule", "break A-3", "restore",
                    nodes=("node1",))]
    report = run(lab.ssh, lab.audit, breaks, NODES,
                 volatile={("node1", "A-3"): "a live reading"})
    assert report.problems == ["A-3: break of the volatile rule on node1: the rule is "
                               "volatile there (a live reading); a break of it proves nothing"]
    assert "not compared: A-3 on node1 (a live reading)" in report.summary()


def test_files_dropped_into_one_new_directory_are_all_removed(tmp_path, monkeypatch) -> None:
    """The shell of drop(): two breaks drop files into a directory the first one creates; the
    restores run in the reverse order of the applies and leave nothing behind."""
    import battery

    monkeypatch.setattr(battery, "SAVE", str(tmp_path / "save"))
    directory = tmp_path / "usr" / "local" / "lib" / "sysctl.d"
    first = battery.drop(str(directory / "a.conf"), "'a = 1'")
    second = battery.drop(str(directory / "b.conf"), "'b = 1'")
    for apply, _ in (first, second):
        subprocess.run(["sh", "-c", apply], check=True)
    assert sorted(p.name for p in directory.iterdir()) == ["a.conf", "b.conf"]
    for _, restore in (second, first):
        subprocess.run(["sh", "-c", restore], check=True)
    assert not directory.exists() and list((tmp_path / "save").iterdir()) == []
