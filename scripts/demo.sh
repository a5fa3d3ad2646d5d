#!/usr/bin/env bash
# `make demo`: the main job on the local lab, start to finish.
#   1 a fresh lab                      5 harden it: playbooks/site.yml
#   2 the lab's KDC, log collector     6 audit again, diff, before/after summary
#     and Data Fabric stand-in         7 field-encrypt a user-profile dataset against a
#   3 preflight                          local KMS
#   4 audit the fresh lab              (6 also: history, a signed evidence bundle, the POA&M)
# Everything lands in reports/. AWS is never contacted: KMS is a moto server on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin="$root/.venv/bin"
export PATH="$bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
inv=$("$bin/python" -c 'from m7guard.lab.manager import default_paths; print(default_paths().inventory)')
state=$("$bin/python" -c 'from m7guard.lab.manager import default_paths; print(default_paths().state)')
reports="$root/reports"
profile=${M7GUARD_DEMO_PROFILE:-pci_dss}
rm -rf "$reports"
mkdir -p "$reports"
# the reports' tool and rule help links (SARIF) point at this checkout's docs/, which the
# reader of the demo's reports has; an operator sets the address the docs are published at
export M7GUARD_DOCS_URL="${M7GUARD_DOCS_URL:-file://$root/docs/}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A KMS for the lab: moto on loopback with dummy credentials, stopped when the demo ends.
port=$("$bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_SESSION_TOKEN=demo
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
unset AWS_PROFILE
"$bin/moto_server" -H 127.0.0.1 -p "$port" >"$reports/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT

step "1/7 a fresh lab (m7guard lab down, lab up)"
"$bin/m7guard" lab down >/dev/null
"$bin/m7guard" lab up

step "2/7 the lab's Kerberos KDC (lab-only; hands keytabs and lab variables to $state/kerberos), log collector, Data Fabric stand-in"
"$bin/ansible-playbook" -i "$inv" tests/lab/kdc.yml >"$reports/kdc.log"
labvars=("-e" "@$state/kerberos/kerberos_mfa.yml" "-e" "field_encryption_kms_endpoint_url=$AWS_ENDPOINT_URL")
# The controller's waivers file (kdc.yml writes it): the automation account's IDN-011
# exemption is accepted here, not by the node's own record of it.
waivers=("--waivers" "$state/kerberos/waivers.yml")
# Both audits are recorded in one history database (docs/history.md), and carry the
# attestations of two manual requirements: the example file's statements, dated today
# (docs/attestations.md).
history=("--history" "$reports/history.sqlite")
attest=("--attestations" "$reports/attestations.yml")
formats=json,html,junit,sarif,oscal,prom,poam
"$bin/python" - "$reports/attestations.yml" <<'EOF'
import datetime as dt, sys, yaml
doc = yaml.safe_load(open("docs/examples/attestations.yml"))
today = dt.date.today()
for entry in doc["attestations"]:
    entry["when"], entry["expiry"] = today, today + dt.timedelta(days=180)
with open(sys.argv[1], "w") as out:
    out.write("---\n" + yaml.safe_dump(doc, sort_keys=False))
EOF
"$bin/ansible-playbook" -i "$inv" tests/fixtures/audit_logging/collector.yml >"$reports/collector.log"
echo "KDC and log collector ready; logs: reports/kdc.log, reports/collector.log"
# Data Fabric cannot be installed here: a STAND-IN of its node layout and of maprcli goes on
# the lab's Data Fabric nodes (node1-3; vm1 runs no Data Fabric service), so that the Data
# Fabric rules are evaluated, not reported notapplicable.
"$bin/ansible-playbook" -i "$inv" tests/standin/data_fabric.yml >"$reports/standin.log"
echo "Data Fabric STAND-IN on node1-3 (not Data Fabric: tests/standin/, docs/roles/data_fabric.md);"
echo "  its Data Fabric rules are verified against the stand-in only; log: reports/standin.log"

step "3/7 preflight (profile $profile): touches no host"
"$bin/m7guard" preflight -i "$inv" --profile "$profile" "${labvars[@]}" \
  --format json,html,sarif --out "$reports/preflight"

# The audit's scope is the cluster: the data nodes (m7_nodes). client1, outsider, kdc and
# collector are the lab's stand-ins for the world around it, which site.yml leaves alone.
step "4/7 audit of the fresh cluster nodes (profile $profile; failures expected)"
"$bin/m7guard" audit -i "$inv" --limit m7_nodes --profile "$profile" --format "$formats" --out "$reports/before" \
  "${waivers[@]}" "${history[@]}" "${attest[@]}" --fail-on none | tail -n 20

step "5/7 ansible-playbook playbooks/site.yml (log: reports/site.log)"
"$bin/ansible-playbook" -i "$inv" playbooks/site.yml "${labvars[@]}" >"$reports/site.log" || {
  tail -n 40 "$reports/site.log"; echo "site.yml failed: see reports/site.log" >&2; exit 1; }
grep -A20 'PLAY RECAP' "$reports/site.log" | tail -n +1

step "6/7 audit again, and what changed"
"$bin/m7guard" audit -i "$inv" --limit m7_nodes --profile "$profile" --format "$formats" --out "$reports/after" \
  "${waivers[@]}" "${history[@]}" "${attest[@]}" --fail-on none | tail -n 20
"$bin/m7guard" diff "$reports/before/results.json" "$reports/after/results.json" \
  --format markdown >"$reports/diff.md"
echo "diff: reports/diff.md"
"$bin/python" scripts/demo_summary.py "$reports/before/results.json" "$reports/after/results.json" \
  | tee "$reports/summary.txt"
"$bin/m7guard" history show --db "$reports/history.sqlite" --as-of newest >"$reports/history.txt"
echo "history: reports/history.txt (pass rate per framework and audit, finding lifecycle);"
echo "  the trend chart is in reports/after/report.html; the POA&M in reports/after/poam.json"
# The signing key stays in the lab's state directory (not in reports/, never in the bundle).
keys="$state/evidence"
[ -f "$keys/evidence-signing.key" ] || "$bin/m7guard" evidence keygen --out "$keys" >/dev/null
"$bin/m7guard" evidence pack "$reports/after" -o "$reports/evidence.tar.gz" \
  --key "$keys/evidence-signing.key" --inventory "$inv" "${waivers[@]}"
cp "$keys/evidence-signing.pub" "$reports/evidence-signing.pub"
"$bin/m7guard" evidence verify "$reports/evidence.tar.gz" --key "$reports/evidence-signing.pub"
echo "signed evidence bundle: reports/evidence.tar.gz; verify it with:"
echo "  .venv/bin/m7guard evidence verify reports/evidence.tar.gz --key reports/evidence-signing.pub"

step "7/7 field encryption of user profiles under a KMS key (moto on 127.0.0.1)"
data="$reports/field-encryption"
mkdir -p "$data"
"$bin/python" scripts/sample_profiles.py "$data/profiles.jsonl" 10000
key=$("$bin/python" -c 'import boto3; k=boto3.client("kms").create_key(Description="m7guard demo")["KeyMetadata"]["KeyId"]; print(k)')
fields=(-f ssn -f credit_card -f personal_info)
echo "verify before encryption (plaintext expected):"
set +e
"$bin/field-encrypt" verify "${fields[@]}" "$data/profiles.jsonl" --format json >"$data/verify-before.json"
before=$?
"$bin/field-encrypt" encrypt "${fields[@]}" --kms-key-id "$key" --table user_profiles \
  -o "$data/profiles.encrypted.jsonl" "$data/profiles.jsonl"
enc=$?
"$bin/field-encrypt" verify "${fields[@]}" "$data/profiles.encrypted.jsonl" --format json \
  --kms-key-id "$key" --table user_profiles \
  >"$data/verify-after.json"
after=$?
set -e
"$bin/python" - "$data" "$before" "$enc" "$after" <<'EOF'
import json, sys
d, before, enc, after = sys.argv[1], *map(int, sys.argv[2:])
b = json.load(open(f"{d}/verify-before.json"))
a = json.load(open(f"{d}/verify-after.json"))
print(f"  before: exit {before}, {b['records']} records, findings {b['counts']}")
print(f"  encrypt: exit {enc}")
print(f"  after:  exit {after}, {a['records']} records, file trailer {a['trailer']}, findings {a['counts'] or 'none'}")
sys.exit(0 if before == 2 and enc == 0 and after == 0 else 1)
EOF

step "done"
echo "reports: $reports (before/, after/: results.json, report.html, junit, sarif, oscal, prom, poam;"
echo "  history.sqlite, history.txt, evidence.tar.gz and its public key)"
