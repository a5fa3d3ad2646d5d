"""The pytest side of m7guard: options, fixtures and result states for the checks.

m7guard/checks/conftest.py imports everything here, so a plain
`pytest --hosts=ansible://GROUP --ansible-inventory=INV m7guard/checks` gets it, and so does
`m7guard audit`, which adds `--m7guard-events FILE` to receive one JSON line per host and
per result.

States (OpenSCAP's words): pass, fail (an assertion of the check), error (anything else,
including an unreachable host), notapplicable (a skip: the host is outside the rule's groups
or conditions). Waivers are applied by `m7guard audit` afterwards.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from m7guard.catalog.errors import CatalogError
from m7guard.catalog.loader import load_catalog
from m7guard.catalog.model import Catalog, Profile, Rule
from m7guard.checks import CHECKS_DIR, is_check_module, rule_of, sysctl_keys_of
from m7guard.checks.support.cluster import ClusterPlan, cluster_of, plan_clusters
from m7guard.checks.support.evidence import sanitize
from m7guard.checks.support.snapshot import (
    MAPR_CLUSTERS_CONF,
    HostSnapshot,
    HostUnreachableError,
    gather,
)
from m7guard.checks.support.sysctl import SysctlCheck
from m7guard.checks.support.verdict import EvidenceError, not_applicable, skip_verdict
from m7guard.results import CollectedEvent, Event, HostEvent, ResultEvent, event_line

_CTX = pytest.StashKey["AuditContext"]()
_EVIDENCE = pytest.StashKey[dict[str, Any]]()
_SETUP_TIME = pytest.StashKey[float]()


def host_name(host: Any) -> str:
    """The inventory name of a testinfra host (ansible backend), else its connection id."""
    backend = host.backend
    if getattr(backend, "NAME", "") == "ansible":
        return str(backend.host)
    if getattr(backend, "NAME", "") == "local":
        return "localhost"
    return str(backend.get_pytest_id()).split("://", 1)[-1]


def host_groups(host: Any) -> tuple[str, ...] | None:
    """Inventory groups of a host (ansible backend only); None when there is no inventory."""
    backend = host.backend
    if getattr(backend, "NAME", "") != "ansible":
        return None
    names = backend.get_variables().get("group_names", [])
    return tuple(sorted({"all", *names}))


KIND_VARIABLES = ("m7guard_node_kind", "m7guard_lab_kind")


def host_kind(host: Any) -> tuple[str | None, bool]:
    """(what the inventory says the host is: container, vm, metal... or None, whether the
    host is reached through a local connection, i.e. is the controller itself)."""
    backend = host.backend
    if getattr(backend, "NAME", "") != "ansible":
        return None, False
    variables = backend.get_variables()
    local = str(variables.get("ansible_connection", "")).endswith("local")
    for name in KIND_VARIABLES:
        if variables.get(name):
            return str(variables[name]).strip().lower(), local
    return None, local


class AuditContext:
    """Per-session state: the catalog, the profile, host snapshots, the event stream."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.policies = config.getoption("m7guard_policies")
        self.profile_name: str = config.getoption("m7guard_profile")
        self.workers = max(1, int(config.getoption("m7guard_workers")))
        self.fork = bool(config.getoption("m7guard_fork"))
        events = config.getoption("m7guard_events")
        self.events_path = Path(events) if events else None
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._profile: Profile | None = None
        self.snapshots: dict[str, HostSnapshot] = {}

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.policies)
            self._profile = self._catalog.profile(self.profile_name)
        return self._catalog

    @property
    def profile(self) -> Profile:
        _ = self.catalog
        assert self._profile is not None
        return self._profile

    def emit(self, event: Event) -> None:
        """Append one event line; an exclusive lock keeps lines whole across worker processes."""
        if self.events_path is None:
            return
        line = event_line(event)
        with self._lock, self.events_path.open("ab") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line)
            fh.flush()

    def snapshot(self, host: Any, keys: tuple[str, ...]) -> HostSnapshot:
        name = host_name(host)
        with self._lock:
            found = self.snapshots.get(name)
        if found is None:
            found = self._gather(host, keys)
        return found

    def _gather(self, host: Any, keys: tuple[str, ...]) -> HostSnapshot:
        try:
            groups = host_groups(host)
            kind, local = host_kind(host)
        except Exception as exc:  # inventory problems surface per host
            snap = HostSnapshot(name=host_name(host), groups=None, error=f"inventory: {exc}")
        else:
            snap = gather(host, host_name(host), groups, keys)
            snap.facts.apply_inventory(groups is not None, kind, local)
        with self._lock:
            self.snapshots.setdefault(snap.name, snap)
            snap = self.snapshots[snap.name]
        self.emit(
            HostEvent(
                host=snap.name,
                groups=list(snap.groups) if snap.groups is not None else None,
                facts=snap.facts.to_dict(),
                error=snap.error,
                duration=round(snap.duration, 4),
                waivers_raw=snap.waivers_raw,
            )
        )
        return snap

    def cluster_plans(self) -> dict[str, ClusterPlan]:
        """The Data Fabric clusters of the hosts read so far (all of them, after prefetch)."""
        with self._lock:
            facts = {n: s.facts.to_dict() for n, s in self.snapshots.items() if not s.error}
        return plan_clusters(facts)

    def prefetch(self, plan: dict[str, tuple[Any, set[str]]]) -> None:
        """Snapshot every host at once, at most `workers` in flight."""
        if not plan:
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(plan))) as pool:
            list(pool.map(lambda item: self._gather(item[0], tuple(item[1])), plan.values()))


def _ctx(config: pytest.Config) -> AuditContext:
    return config.stash[_CTX]


def _rule_id(item: pytest.Item) -> str | None:
    return rule_of(getattr(item, "function", None))


def _keys(item: pytest.Item) -> tuple[str, ...]:
    return sysctl_keys_of(getattr(item, "function", None))


def _item_host(item: pytest.Item) -> Any | None:
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec is not None else None
    return host if hasattr(host, "backend") else None  # no host matched: pytest's NOTSET


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("m7guard")
    group.addoption("--m7guard-policies", default=None, help="policies directory")
    group.addoption("--m7guard-profile", default="baseline", help="profile (default: baseline)")
    group.addoption("--m7guard-events", default=None, help="append JSON result events to FILE")
    group.addoption(
        "--m7guard-workers", default=4, type=int, help="hosts read in parallel (default: 4)"
    )
    group.addoption(
        "--m7guard-fork",
        action="store_true",
        help="check up to --m7guard-workers hosts at once, each group of hosts in a forked "
        "process; results reach only the --m7guard-events file (m7guard audit sets this)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_CTX] = AuditContext(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect m7guard/checks/<area>.py although the names do not start with test_."""
    if file_path.parent != CHECKS_DIR or not is_check_module(file_path):
        return None
    if parent.session.isinitpath(file_path):
        return None  # pytest's own collector takes files named on the command line
    module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
    return module


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    ctx = _ctx(config)
    if not any(_rule_id(i) for i in items):
        return
    try:
        catalog, profile = ctx.catalog, ctx.profile
    except CatalogError as exc:
        raise pytest.UsageError(f"m7guard: {exc}") from exc
    keep, drop = [], []
    for item in items:
        rule_id = _rule_id(item)
        rule = catalog.rules.get(rule_id) if rule_id else None
        if rule is not None and not profile.selects(rule):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    ctx = _ctx(session.config)
    plan: dict[str, tuple[Any, set[str]]] = {}
    per_host: dict[str, list[str]] = defaultdict(list)
    for item in session.items:
        rule_id = _rule_id(item)
        host = _item_host(item)
        if rule_id is None or host is None:
            continue
        name = host_name(host)
        per_host[name].append(rule_id)
        plan.setdefault(name, (host, set()))[1].update(_keys(item))
    ctx.emit(CollectedEvent(hosts={h: sorted(r) for h, r in per_host.items()}))
    ctx.prefetch(plan)


def partition(weights: dict[str, int], groups: int) -> list[list[str]]:
    """Hosts in at most `groups` groups of near-equal total weight (longest first, each to the
    lightest group), the same for the same input; no group is empty."""
    loads: list[tuple[int, int, list[str]]] = [(0, i, []) for i in range(min(groups, len(weights)))]
    for name in sorted(weights, key=lambda h: (-weights[h], h)):
        load, index, hosts = min(loads)
        hosts.append(name)
        loads[index] = (load + weights[name], index, hosts)
    return [hosts for _, _, hosts in loads]


def _weight(ctx: AuditContext, name: str, items: list[pytest.Item]) -> int:
    """How much work a host's checks are: those that will run (not notapplicable); 1 for an
    unreachable host, whose checks end at once."""
    snap = ctx.snapshots.get(name)
    if snap is None or snap.error:
        return 1
    count = 0
    for item in items:
        rule = ctx.catalog.rules.get(_rule_id(item) or "")
        try:
            count += rule is None or not why_not_applicable(rule, snap)
        except ValueError:  # an unknown condition: the check reports it as an error
            count += 1
    return max(1, count)


def _run_items(session: pytest.Session, items: list[pytest.Item]) -> None:
    """pytest's own loop over a list of items (each knows the next, for fixture teardown)."""
    for i, item in enumerate(items):
        nextitem = items[i + 1] if i + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail or session.shouldstop:
            break


def _fork_worker(session: pytest.Session, items: list[pytest.Item], output: int) -> int:
    """Run the items in a child process whose stdout and stderr go to the file `output`
    (so workers never write into each other's lines); its exit code is 0 (all passed),
    1 (some did not) or 3 (the loop itself broke, traceback in `output`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 3
    try:
        os.dup2(output, 1)
        os.dup2(output, 2)
        _run_items(session, items)
        code = 1 if session.testsfailed else 0
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:  # this worker's failures and counts; the parent runs no check
            tr.write("\n")  # ends the line of progress letters
            tr.summary_errors()
            tr.summary_failures()
            tr.write_line("")
            tr.summary_stats()
    except BaseException:  # whatever it is, the parent must hear of it
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _read_back(output: Any) -> str:
    """A worker's output, from its start."""
    output.seek(0)
    return output.read().decode("utf-8", errors="replace")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """With --m7guard-fork: the hosts in up to --m7guard-workers groups of about equal work,
    each group checked in its own forked process, which inherits the collected items and the
    host snapshots. A host's checks stay in one process, in their usual order."""
    ctx = _ctx(session.config)
    if not ctx.fork or ctx.workers < 2 or not hasattr(os, "fork"):
        return None
    if session.config.option.collectonly or session.testsfailed:
        return None
    by_host: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in session.items:
        host = _item_host(item)
        if _rule_id(item) is None or host is None:
            return None  # not an audit run: pytest's own loop
        by_host[host_name(host)].append(item)
    if len(by_host) < 2:
        return None
    weights = {name: _weight(ctx, name, items) for name, items in by_host.items()}
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    workers = []
    with ExitStack() as files:
        for hosts in partition(weights, ctx.workers):
            chosen = set(hosts)
            items = [i for i in session.items if host_name(_item_host(i)) in chosen]
            output = files.enter_context(tempfile.TemporaryFile(prefix="m7guard-worker-"))
            pid = _fork_worker(session, items, output.fileno())
            workers.append((hosts, len(items), output, pid))
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for *_, pid in workers]
        for (hosts, count, output, _), code in zip(workers, codes, strict=True):
            if code != 0:
                session.testsfailed += 1
            if tr is not None:  # all workers have ended: their outputs one after another
                tr.write_sep("-", f"worker: {', '.join(hosts)}")
                tr.write(_read_back(output))
                tr.write_line(f"m7guard: {count} checks of {', '.join(hosts)}: worker exit {code}")
    if tr is not None:
        tr.write_line(f"m7guard: the checks ran in {len(workers)} worker processes (counts above)")
    return True


@pytest.fixture
def m7_rule(request: pytest.FixtureRequest) -> Rule:
    """The catalog rule the running check verifies."""
    rule_id = _rule_id(request.node)
    if rule_id is None:
        raise CatalogError(f"{request.node.nodeid} has no @rule(...): a check without a rule")
    return _ctx(request.config).catalog.rule(rule_id)


@pytest.fixture
def params(request: pytest.FixtureRequest, m7_rule: Rule) -> dict[str, Any]:
    """The rule's parameters: its defaults overridden by the profile."""
    ctx = _ctx(request.config)
    return ctx.catalog.parameters_for(m7_rule, ctx.profile)


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict the check fills with what it read; it ends up in the results."""
    return request.node.stash.setdefault(_EVIDENCE, {})


@pytest.fixture
def host_snapshot(request: pytest.FixtureRequest, host: Any) -> HostSnapshot:
    return _ctx(request.config).snapshot(host, _keys(request.node))


@pytest.fixture
def sysctl(
    request: pytest.FixtureRequest, host_snapshot: HostSnapshot, evidence: dict[str, Any]
) -> SysctlCheck:
    """The kernel keys named in the check's @rule(..., sysctl=[...]), ready to `require()`."""
    return SysctlCheck(
        _keys(request.node),
        host_snapshot.running_value,
        host_snapshot.config,
        host_snapshot.facts.container,
        evidence,
    )


@pytest.fixture(autouse=True)
def _m7guard_applicability(request: pytest.FixtureRequest) -> None:
    """Error for an unreachable host; notapplicable outside the rule's groups and conditions."""
    if _rule_id(request.node) is None or "host" not in request.fixturenames:
        return
    rule: Rule = request.getfixturevalue("m7_rule")
    snap: HostSnapshot = request.getfixturevalue("host_snapshot")
    if snap.error:
        raise HostUnreachableError(snap.error)
    reason = why_not_applicable(rule, snap)
    if reason:
        not_applicable(reason)
    if rule.scope == "cluster":
        _cluster_applicability(_ctx(request.config), snap)


def _cluster_applicability(ctx: AuditContext, snap: HostSnapshot) -> None:
    """A cluster rule runs on one node of its cluster (m7guard.checks.support.cluster); on the
    others it is notapplicable, and the audit reports the one verdict under the cluster."""
    plan = cluster_of(ctx.cluster_plans(), snap.name)
    if plan is None:
        raise EvidenceError(
            f"{MAPR_CLUSTERS_CONF} names no cluster: the node's cluster is unknown, so its "
            "cluster rules cannot be evaluated")
    if plan.reporter != snap.name:
        not_applicable(f"a rule of cluster {plan.name}, evaluated once, on {plan.reporter}")
    if plan.evaluator is None:
        raise EvidenceError(
            f"no audited node of cluster {plan.name} runs the CLDB (/opt/mapr/roles/cldb): "
            f"its cluster rules cannot be evaluated (nodes: {', '.join(plan.nodes)}); audit "
            "a CLDB node with them")


def why_not_applicable(rule: Rule, snap: HostSnapshot) -> str | None:
    """Why the rule does not apply to the host (its groups, its conditions), or None."""
    if snap.groups is not None and not set(rule.groups) & set(snap.groups):
        return f"{snap.name} is in none of the groups {', '.join(rule.groups)}"
    for condition in rule.conditions:
        if not snap.facts.condition(condition):
            detail = ""
            if condition == "not_container":
                detail = (f" ({snap.facts.kind_source}; node signals: "
                          f"{'; '.join(snap.facts.container_signals) or 'none'})")
            return f"condition {condition} does not hold{detail}"
    return None


def _skip_state(call: pytest.CallInfo[None]) -> str:
    value = call.excinfo.value if call.excinfo is not None else ""
    return skip_verdict(str(getattr(value, "msg", value)))[0]


def _message(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return ""
    value = call.excinfo.value
    if call.excinfo.errisinstance(pytest.skip.Exception):
        return skip_verdict(str(getattr(value, "msg", value)))[1]
    if isinstance(value, AssertionError):
        return str(value).split("\nassert ")[0].strip()
    if isinstance(value, HostUnreachableError):
        return str(value)
    return f"{type(value).__name__}: {value}".strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    rule_id = _rule_id(item)
    host = _item_host(item)
    if rule_id is None or host is None:
        return
    if call.when == "setup":
        item.stash[_SETUP_TIME] = call.duration
        if report.passed:
            return
        state = _skip_state(call) if report.skipped else "error"
    elif call.when == "call":
        if report.passed:
            state = "pass"
        elif report.skipped:
            state = _skip_state(call)
        elif call.excinfo is not None and call.excinfo.errisinstance(
            (AssertionError, pytest.fail.Exception)
        ):
            state = "fail"
        else:
            state = "error"
    else:
        return
    duration = item.stash.get(_SETUP_TIME, 0.0) + (call.duration if call.when == "call" else 0.0)
    _ctx(item.config).emit(
        ResultEvent(
            host=host_name(host),
            rule=rule_id,
            state=state,
            message=_message(call)[:1000],
            evidence=sanitize(item.stash.get(_EVIDENCE, {})),
            duration=round(duration, 4),
            nodeid=item.nodeid,
            at=time.time(),
        )
    )
