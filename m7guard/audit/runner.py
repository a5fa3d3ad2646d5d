"""Run the checks over an inventory: one pytest process, hosts read in parallel.

The audit runs `python -m pytest m7guard/checks` once, with testinfra's ansible backend over
every selected host. The checks' plugin reads each host's state in one SSH round trip, at most
`workers` hosts at a time, before the checks evaluate it, and appends one JSON line per host
and per result to an events file, which this module follows for the progress bar and turns
into the results document. SSH connections are multiplexed (ControlMaster) for the run and
closed at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m7guard import __version__
from m7guard.audit.errors import AuditError
from m7guard.catalog.attestations import (
    Attestation,
    expiry_warnings,
    load_attestations,
    recorded,
)
from m7guard.catalog.errors import CatalogError
from m7guard.catalog.loader import catalog_digest
from m7guard.catalog.model import Catalog, Profile
from m7guard.catalog.waivers import Waiver, decide, host_waiver_claims, load_waivers
from m7guard.checks import CHECKS_DIR
from m7guard.checks.support.cluster import cluster_of, plan_clusters
from m7guard.inventory import Inventory, InventoryError, Sources, describe, load_inventory
from m7guard.results import (
    SCHEMA_VERSION,
    CollectedEvent,
    HostEvent,
    ResultEvent,
    Results,
    framework_snapshot,
    now_iso,
    read_event,
    rule_snapshot,
)
from m7guard.validate import validate

PYTEST_INI = "[pytest]\naddopts =\n"
SSH_CONFIG = """\
Host *
  ControlMaster auto
  ControlPath {control_dir}/%C
  ControlPersist 60s
  BatchMode yes
  ConnectTimeout {connect_timeout}
  ServerAliveInterval 5
  ServerAliveCountMax 3
Include ~/.ssh/config
"""


@dataclass
class AuditOptions:
    inventory: Sources
    """One source or several (repeated -i), as ansible-playbook takes them."""
    limit: str | None = None
    profile: str = "baseline"
    policies: Path | None = None
    waivers: Path | None = None
    attestations: Path | None = None
    workers: int = 4
    timeout: float = 900.0
    connect_timeout: int = 10
    today: dt.date | None = None
    docs_url: str | None = None
    """Where docs/ is published (results.docs_address), recorded for the reports' links."""


@dataclass
class Progress:
    """Callbacks the CLI's progress bar listens to."""

    on_total: Callable[[int, list[str]], None] = lambda total, hosts: None
    on_host: Callable[[str, str | None], None] = lambda host, error: None
    on_result: Callable[[ResultEvent], None] = lambda result: None


@dataclass
class _Events:
    collected: dict[str, list[str]] | None = None
    hosts: dict[str, HostEvent] = field(default_factory=dict)
    results: list[ResultEvent] = field(default_factory=list)


def host_patterns(limit: str | None) -> str:
    """testinfra --hosts for a limit: `node1,m7_nodes` -> ansible://node1,ansible://m7_nodes."""
    if not limit:
        return "ansible://all"
    parts = [p.strip() for p in limit.replace(":", ",").split(",") if p.strip()]
    if not parts:
        raise AuditError(f"--limit {limit!r} names no host or group")
    return ",".join(f"ansible://{p}" for p in parts)


def _pytest_command(opts: AuditOptions, policies: Path, work: Path, events: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(CHECKS_DIR),
        "-c",
        str(work / "pytest.ini"),
        "--rootdir",
        str(CHECKS_DIR),
        "-p",
        "testinfra.plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        # the results take each message from the exception itself; the log's tracebacks in
        # Python's own form, which pytest does not parse each check module again to print
        "--tb=native",
        f"--hosts={host_patterns(opts.limit)}",
        f"--ssh-config={work / 'ssh_config'}",
        f"--m7guard-policies={policies}",
        f"--m7guard-profile={opts.profile}",
        f"--m7guard-events={events}",
        f"--m7guard-workers={opts.workers}",
        "--m7guard-fork",
        "--capture=sys",
    ]


def _environment() -> dict[str, str]:
    """The checks' environment: this interpreter's bin directory first, so testinfra finds
    ansible-inventory from the same installation; no pytest plugin but testinfra (named on the
    command line) and m7guard's own, whatever else the environment has installed."""
    bindir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    if shutil.which("ansible-inventory", path=path) is None:
        raise AuditError("ansible-inventory not found: install ansible-core (pip install m7guard)")
    return {
        **os.environ,
        "PATH": path,
        "ANSIBLE_VERBOSITY": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def _close_masters(control_dir: Path) -> None:
    """End the SSH master connections this audit opened."""
    for sock in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "m7guard-audit"],
            capture_output=True,
            timeout=10,
            check=False,
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End the checks' process, if it still runs, with the worker processes it forked (it
    leads its own process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _follow(
    proc: subprocess.Popen[bytes], events: Path, progress: Progress, opts: AuditOptions, log: Path
) -> _Events:
    seen = _Events()
    offset = 0
    deadline = time.monotonic() + opts.timeout

    def drain() -> None:
        nonlocal offset
        if not events.exists():
            return
        with events.open(encoding="utf-8") as fh:
            fh.seek(offset)
            while True:
                line = fh.readline()
                if not line.endswith("\n"):
                    break
                offset = fh.tell()
                event = read_event(line)
                if isinstance(event, CollectedEvent):
                    seen.collected = event.hosts
                    total = sum(len(r) for r in event.hosts.values())
                    progress.on_total(total, sorted(event.hosts))
                elif isinstance(event, HostEvent):
                    seen.hosts[event.host] = event
                    progress.on_host(event.host, event.error)
                else:
                    seen.results.append(event)
                    progress.on_result(event)

    while proc.poll() is None:
        drain()
        if time.monotonic() > deadline:
            _kill_group(proc)
            raise AuditError(f"the checks did not finish within {opts.timeout:.0f} s; see {log}")
        time.sleep(0.05)
    drain()
    return seen


def _read_inventory(opts: AuditOptions) -> Inventory:
    """The inventory, read once here with Ansible's own code so that a bad source stops the
    audit with its name; the checks' ansible-inventory then reads the same sources."""
    try:
        return load_inventory(opts.inventory)
    except InventoryError as exc:
        raise AuditError(str(exc)) from exc


def _load(opts: AuditOptions) -> tuple[Catalog, Profile, list[Waiver]]:
    try:
        catalog, problems = validate(opts.policies)
    except CatalogError as exc:
        raise AuditError(str(exc)) from exc
    if problems:
        raise AuditError(
            "the catalog is invalid (run `m7guard catalog validate`):\n  "
            + "\n  ".join(map(str, problems))
        )
    profile = catalog.profile(opts.profile)
    waivers = load_waivers(opts.waivers, catalog, opts.today) if opts.waivers else []
    return catalog, profile, waivers


def run_audit(
    opts: AuditOptions, progress: Progress | None = None, log_dir: Path | None = None
) -> Results:
    """Evaluate the profile's rules on the inventory's hosts; raise AuditError if it cannot."""
    progress = progress or Progress()
    if opts.workers < 1:
        raise AuditError("--workers must be at least 1")
    if shutil.which("ssh") is None:
        raise AuditError("the ssh client is missing: install openssh-client")
    inventory = _read_inventory(opts)
    catalog, profile, file_waivers = _load(opts)
    attestations = (
        load_attestations(opts.attestations, catalog, opts.today) if opts.attestations else None
    )
    started = now_iso()
    with tempfile.TemporaryDirectory(prefix="m7g-") as tmp:
        work = Path(tmp)
        control = work / "cm"
        control.mkdir()
        (work / "pytest.ini").write_text(PYTEST_INI)
        (work / "ssh_config").write_text(
            SSH_CONFIG.format(control_dir=control, connect_timeout=opts.connect_timeout)
        )
        events = work / "events.jsonl"
        log = (log_dir or work) / "pytest.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = _pytest_command(opts, catalog.root, work, events)
        env = inventory.environment(work, _environment())
        try:
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
                try:
                    seen = _follow(proc, events, progress, opts, log)
                finally:
                    _kill_group(proc)
        finally:
            _close_masters(control)
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        if proc.returncode not in (0, 1) or seen.collected is None:
            detail = "\n  ".join(tail) or "no output"
            raise AuditError(
                f"the checks could not run (pytest exit {proc.returncode}):\n  {detail}"
            )
        if not seen.collected:
            raise AuditError(f"no host of {describe(opts.inventory)} matches {opts.limit or 'all'}")
    return assemble(
        opts,
        catalog,
        profile,
        file_waivers,
        seen,
        started=started,
        finished=now_iso(),
        attestations=attestations,
    )


def assemble(
    opts: AuditOptions,
    catalog: Catalog,
    profile: Profile,
    file_waivers: list[Waiver],
    seen: _Events,
    *,
    started: str,
    finished: str,
    attestations: list[Attestation] | None = None,
) -> Results:
    """Build the results document from the events, applying the controller's waivers.

    A waiver a host records about itself is a claim: it goes into the result's evidence
    (`host_claimed_waiver`) and a warning, and waives nothing. With attestations (even none)
    the document records them (`attestations`) with their status on the audit day; an
    expired one is a warning too."""
    today = opts.today or dt.date.today()
    warnings: list[str] = []
    waivers = list(file_waivers)
    claims: dict[tuple[str, str], Waiver] = {}
    collected = seen.collected or {}
    hosts = []
    for name in sorted(collected):
        event = seen.hosts.get(name)
        error = event.error if event else "the host was never read"
        if event and event.waivers_raw:
            found, problems = host_waiver_claims(name, event.waivers_raw, catalog)
            for claim in found:
                claims.setdefault((name, claim.rule), claim)
            warnings += problems
        if error:
            warnings.append(f"{name}: {error}; every rule on it is reported as error")
        hosts.append(
            {
                "name": name,
                "reachable": not error,
                "error": error,
                "groups": event.groups if event else None,
                "facts": event.facts if event else {},
                "duration": event.duration if event else 0.0,
            }
        )
    got = {(r.host, r.rule): r for r in seen.results}
    plans = plan_clusters({h["name"]: h["facts"] for h in hosts if h["reachable"]})
    subjects: dict[str, dict[str, Any]] = {}
    results = []
    applied: dict[tuple[str, str, str], dict[str, Any]] = {}
    for node in sorted(collected):
        for rule_id in sorted(collected[node]):
            host, plan = node, None
            if catalog.rule(rule_id).scope == "cluster":
                plan = cluster_of(plans, node)
                if plan is not None and plan.reporter != node:
                    continue  # the cluster's verdict is its reporter's
                if plan is not None:
                    host = plan.subject
                    subjects[host] = {
                        "name": host,
                        "reachable": True,
                        "error": None,
                        "groups": None,
                        "facts": {
                            "scope": "cluster",
                            "cluster": plan.name,
                            "evaluated_on": plan.evaluator,
                            "nodes": list(plan.nodes),
                        },
                        "duration": 0.0,
                    }
            result_event = got.get((node, rule_id))
            result: dict[str, Any] = {
                "host": host,
                "rule": rule_id,
                "state": result_event.state if result_event else "error",
                "message": result_event.message
                if result_event
                else "no result recorded: the check run stopped",
                "evidence": result_event.evidence if result_event else {},
                "duration": result_event.duration if result_event else 0.0,
                "waiver": None,
            }
            if plan is not None:
                result["evaluated_on"] = node
            claim = claims.get((host, rule_id))
            if claim is not None:
                result["evidence"] = {**result["evidence"], "host_claimed_waiver": claim.to_dict()}
            decision = decide(waivers, rule_id, host, today)
            if claim is not None and decision.active is None:
                warnings.append(
                    f"{host} claims a waiver of {rule_id} ({claim.source}, approver "
                    f"{claim.approver}, expires {claim.expires.isoformat()}): a host cannot "
                    f"waive its own rules, so {rule_id} counts as {result['state']}; to accept "
                    "the exception, put it in the controller's waivers file (--waivers)"
                )
            for w in decision.expired:
                warnings.append(
                    f"waiver for {w.rule} on {w.hosts} ({w.source}) expired on "
                    f"{w.expires.isoformat()}: {rule_id} was evaluated on {host}"
                )
                key = (w.rule, w.hosts, w.source)
                entry = applied.setdefault(
                    key, {**w.to_dict(), "status": "expired", "hosts_matched": []}
                )
                entry["hosts_matched"].append(host)
            if decision.active is not None:
                w = decision.active
                result["evaluated_state"] = result["state"]
                result["state"] = "waived"
                result["waiver"] = w.to_dict()
                key = (w.rule, w.hosts, w.source)
                entry = applied.setdefault(
                    key, {**w.to_dict(), "status": "applied", "hosts_matched": []}
                )
                entry["hosts_matched"].append(host)
            results.append(result)
    hosts += [subjects[name] for name in sorted(subjects)]
    rule_ids = sorted({r["rule"] for r in results})
    data = {
        "schema_version": SCHEMA_VERSION,
        "tool": {
            "name": "m7guard",
            "version": __version__,
            **({"docs_url": opts.docs_url} if opts.docs_url else {}),
        },
        "started": started,
        "finished": finished,
        "inventory": describe(opts.inventory),
        "limit": opts.limit,
        "profile": {
            "id": profile.id,
            "title": profile.title,
            "frameworks": list(profile.frameworks),
        },
        "hosts": hosts,
        "rules": {rid: rule_snapshot(catalog, catalog.rule(rid), profile) for rid in rule_ids},
        "frameworks": {fw: framework_snapshot(catalog, fw) for fw in profile.frameworks},
        "catalog": {"version": __version__, "digest": catalog_digest(catalog.root)},
        "results": results,
        "waivers": sorted(applied.values(), key=lambda w: (w["rule"], w["hosts"])),
        "warnings": warnings,
    }
    if attestations is not None:
        data["attestations"] = recorded(attestations, today)
        warnings += expiry_warnings(attestations, today)
    return Results.validated(data)
