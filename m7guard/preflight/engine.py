"""`m7guard preflight`: evaluate the PRE-* rules on an inventory without touching a host.

The results document has the schema of `m7guard audit` results, so the same reports, the
same `m7guard diff` and the same exit codes apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m7guard import __version__
from m7guard.checks import rule_of
from m7guard.errors import M7guardError
from m7guard.inventory import Sources, describe
from m7guard.preflight import checks as pre
from m7guard.preflight.aws import AwsCheckError, AwsView
from m7guard.preflight.intended import HostIntent, IntendedConfig
from m7guard.results import (
    SCHEMA_VERSION,
    Results,
    framework_snapshot,
    now_iso,
    rule_snapshot,
)
from m7guard.validate import validate

AREA = "preflight"
CONTROLLER = "controller"


class PreflightError(M7guardError):
    """Preflight could not run (as opposed to finding problems)."""


@dataclass
class PreflightOptions:
    inventory: Sources
    """One source or several (repeated -i), as ansible-playbook takes them."""
    root: Path
    profile: str = "baseline"
    policies: Path | None = None
    playbook: Path | None = None
    limit: str | None = None
    aws: bool = False
    aws_region: str | None = None
    aws_profile: str | None = None
    controller_address: str | None = None
    extra_vars: list[str] | None = None


def run_preflight(opts: PreflightOptions) -> Results:
    started = now_iso()
    catalog, problems = validate(opts.policies or opts.root / "policies")
    if problems:
        raise PreflightError("the catalog is invalid (run `m7guard catalog validate`):\n  "
                             + "\n  ".join(map(str, problems)))
    profile = catalog.profile(opts.profile)
    rules = {r.id: r for r in catalog.rules.values() if r.area == AREA and profile.selects(r)}
    playbook = opts.playbook or opts.root / "playbooks" / "site.yml"
    intended = IntendedConfig(opts.inventory, playbook, opts.root / "roles", opts.limit,
                              opts.extra_vars)
    hosts = list(intended.hosts())
    if not hosts:
        raise PreflightError(f"no host of {describe(opts.inventory)} matches {opts.limit or 'all'}")
    warnings: list[str] = []
    aws = None
    if opts.aws:
        try:
            aws = AwsView(region=opts.aws_region, profile=opts.aws_profile)
        except (AwsCheckError, Exception) as exc:  # botocore raises its own kinds here
            raise PreflightError(f"AWS checks cannot start: {exc}") from exc
    controller = opts.controller_address
    ctx = pre.Context(
        root=opts.root,
        playbooks=sorted((opts.root / "playbooks").glob("*.yml")),
        roles_dir=opts.root / "roles",
        params={rid: catalog.parameters_for(r, profile) for rid, r in rules.items()},
        controller_address=controller,
        aws=aws,
        hosts=hosts,
    )
    results: list[dict[str, Any]] = []
    controller_used = False
    for fn in pre.all_checks():
        rule_id = rule_of(fn)
        if rule_id not in rules:
            continue
        # An AWS check without --aws is not silently dropped: each of its results says
        # "not assessed" (state notchecked), is counted, and keeps its requirements from
        # reading as satisfied.
        unchecked = getattr(fn, pre.AWS_ATTR) and aws is None
        if getattr(fn, pre.SCOPE_ATTR) == "controller":
            controller_used = True
            results.append(_not_assessed(rule_id, CONTROLLER) if unchecked
                           else _run(fn, rule_id, CONTROLLER, ctx))
            continue
        role = getattr(fn, pre.ROLE_ATTR)
        for host in hosts:
            if role and role not in host.roles:
                results.append(_result(host.name, rule_id, pre.Outcome(
                    "notapplicable", f"{role} does not apply to this host"), 0.0))
            elif unchecked:
                results.append(_not_assessed(rule_id, host.name))
            else:
                results.append(_run(fn, rule_id, host.name, ctx, host))
    not_assessed = [r for r in results if r["state"] == "notchecked"]
    if not_assessed:
        rule_ids = sorted({r["rule"] for r in not_assessed})
        warnings.append(f"{len(not_assessed)} results of AWS checks not assessed "
                        f"({', '.join(rule_ids)}): add --aws to assess them")
    host_rows = [{"name": h.name, "reachable": True, "error": None, "groups": h.groups,
                  "facts": {"roles": h.roles}} for h in hosts]
    if controller_used:
        host_rows.append({"name": CONTROLLER, "reachable": True, "error": None, "groups": [],
                          "facts": {"address": controller}})
    used = sorted({r["rule"] for r in results})
    data = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "m7guard preflight", "version": __version__},
        "started": started,
        "finished": now_iso(),
        "inventory": describe(opts.inventory),
        "limit": opts.limit,
        "profile": {"id": profile.id, "title": profile.title,
                    "frameworks": list(profile.frameworks)},
        "hosts": host_rows,
        "rules": {rid: rule_snapshot(catalog, catalog.rule(rid), profile) for rid in used},
        "frameworks": {fw: framework_snapshot(catalog, fw) for fw in profile.frameworks},
        "results": results,
        "waivers": [],
        "warnings": warnings,
    }
    return Results.validated(data)


def _run(fn: pre.Check, rule_id: str, host_name: str, ctx: pre.Context,
         host: HostIntent | None = None) -> dict[str, Any]:
    start = time.monotonic()
    try:
        outcome = fn(ctx, host) if host is not None else fn(ctx)
    except M7guardError as exc:
        outcome = pre.Outcome("error", str(exc))
    return _result(host_name, rule_id, outcome, time.monotonic() - start)


def _not_assessed(rule_id: str, host_name: str) -> dict[str, Any]:
    return _result(host_name, rule_id, pre.Outcome(
        "notchecked", "not assessed: an AWS check, run only with --aws",
        {"not_assessed": "preflight ran without --aws"}), 0.0)


def _result(host: str, rule_id: str, outcome: pre.Outcome, duration: float) -> dict[str, Any]:
    return {"host": host, "rule": rule_id, "state": outcome.state, "message": outcome.message,
            "evidence": outcome.evidence, "duration": round(duration, 4), "waiver": None}
