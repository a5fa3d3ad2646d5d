#!/usr/bin/env bash
# Run pytest from the project's venv. pytest exits 5 when it collected no test: for a suite
# that must have tests that is a failure, said in plain words rather than passed through.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/.venv/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no test in: $* (an empty suite is a failure)" >&2
  exit 1
fi
exit "$rc"
