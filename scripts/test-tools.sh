#!/usr/bin/env bash
# Installs the tools the report tests use, only where they are missing (safe to run again):
#   - Chromium (Debian package) to render the HTML report headless,
#   - the official SARIF validator (@microsoft/sarif-multitool), Grafana's dashboard schema
#     (@grafana/schema, TypeScript types) and typescript (tsc), pinned in
#     tests/tools/package.json, into tests/tools/node_modules (git-ignored),
#   - compliance-trestle and junitparser through the project's `test` extra,
#   - tests/tools/wheelhouse (git-ignored): the wheels the distribution tests install
#     without a package index: host/ the field-encryption wheel's dependencies for this
#     Python, framework/ the m7guard wheel's, nodes/ the executor extra for the lab nodes'
#     Python (Debian 12, 3.11),
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
# the wheels the distribution tests install offline, fetched here: the dependencies of the
# field-encryption wheel (host/) and of the m7guard wheel (framework/), the executor extra
# for the Debian 12 nodes' Python (nodes/) and the field-encryption wheel's dependencies for
# Debian 11's (deps-cp39/); the tests build the two wheels themselves
house="$tools/wheelhouse"
if [ ! -f "$house/.complete" ] || [ ! -d "$house/framework" ] || [ ! -d "$house/deps-cp39" ] \
  || [ "$house/.complete" -ot requirements/executor.txt ] \
  || [ "$house/.complete" -ot packaging/field-encryption/pyproject.toml ] \
  || [ "$house/.complete" -ot pyproject.toml ]; then
  echo "test-tools: downloading the distributions' dependencies into tests/tools/wheelhouse"
  rm -rf "$house"
  mkdir -p "$house/host" "$house/nodes" "$house/framework"
  wheels=$("$python" - "$root" "$house/build" <<'PY'
import importlib.util, pathlib, runpy, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
spec = importlib.util.spec_from_file_location(
    "m7guard_wheel", root / "plugins/modules/m7guard_wheel.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
shipped = runpy.run_path(str(root / "m7guard/locate.py"))["SHIPPED"]
print(module.build(root, out, ["field_encryption"], root / "packaging/field-encryption")["path"])
print(module.build(root, out, ["m7guard", "field_encryption", *shipped])["path"])
PY
)
  fe_wheel=$(sed -n 1p <<<"$wheels")
  m7_wheel=$(sed -n 2p <<<"$wheels")
  "$python" -m pip download -q --disable-pip-version-check -d "$house/host" "$fe_wheel"
  "$python" -m pip download -q --disable-pip-version-check -d "$house/framework" "$m7_wheel"
  "$python" -m pip download -q --disable-pip-version-check -d "$house/nodes" \
    --only-binary=:all: --implementation cp --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    -r requirements/parquet.txt -r requirements/executor.txt
  # the library's own dependencies for Debian 11's Python, whose packages are older than its
  # floors (the field_encryption role's field_encryption_dependency_wheelhouse)
  "$python" -m pip download -q --disable-pip-version-check -d "$house/deps-cp39" \
    --only-binary=:all: --implementation cp --python-version 3.9 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    "$fe_wheel"
  rm -rf "$house/build" "$house/host"/field_encryption-*.whl \
    "$house/deps-cp39"/field_encryption-*.whl \
    "$house/framework"/m7guard-*.whl  # the tests build their own
  touch "$house/.complete"
fi
echo "test-tools: ready"
