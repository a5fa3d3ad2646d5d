#!/usr/bin/env bash
# Installs the tools the report tests use, only where they are missing (safe to run again):
#   - Chromium (Debian package) to render the HTML report headless,
#   - the official SARIF validator (@microsoft/sarif-multitool), Grafana's dashboard schema
#     (@grafana/schema, TypeScript types) and typescript (tsc), pinned in
#     tests/tools/package.json, into tests/tools/node_modules (git-ignored),
#   - compliance-trestle and junitparser through the project's `test` extra,
#   - openssl, sha256sum and jq, the independent verifiers of evidence bundles.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-"$root/.venv/bin/python"}
[ -x "$python" ] || python=$(command -v python3)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "test-tools: installing chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# openssl (3.0 or later: pkeyutl -rawin), sha256sum and jq verify evidence bundles by hand
if ! command -v openssl >/dev/null 2>&1 || ! command -v sha256sum >/dev/null 2>&1 \
  || ! command -v jq >/dev/null 2>&1; then
  echo "test-tools: installing openssl, coreutils and jq"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl coreutils jq >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "test-tools: installing nodejs and npm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

tools="$root/tests/tools"
# every package pinned in package.json, at its pinned version, or npm install
stale=$("$python" - "$tools" <<'PY'
import json, pathlib, sys
tools = pathlib.Path(sys.argv[1])
for name, want in json.loads((tools / "package.json").read_text())["dependencies"].items():
    installed = tools / "node_modules" / name / "package.json"
    have = json.loads(installed.read_text())["version"] if installed.is_file() else ""
    if have != want:
        print(f"{name}@{want}")
PY
)
if [ -n "$stale" ]; then
  echo "test-tools: installing" $stale
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

if ! "$python" -c 'import trestle, junitparser' >/dev/null 2>&1; then
  echo "test-tools: installing the test extra (compliance-trestle, junitparser)"
  "$python" -m pip install -q -e "$root[test]"
fi
echo "test-tools: ready"
