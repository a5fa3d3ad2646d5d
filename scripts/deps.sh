#!/usr/bin/env bash
# System packages m7guard's lab and test suite need, installed only when missing.
# Debian 12 (or a Debian-based host) with root. Safe to run again: it changes nothing then.
set -euo pipefail

packages=(
  # the lab: containers, the VM node, images
  podman runc debootstrap qemu-system-x86 qemu-utils e2fsprogs openssh-client tar
  # a Python 3.11 venv for the project
  python3-venv
  # peers and validators the tests drive
  nodejs npm chromium
  # Spark in local mode (field_encryption.spark): a Java 17 runtime
  openjdk-17-jre-headless
)

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/deps.sh: installing system packages needs root; run it as root (sudo make deps)" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done
# node and npm may come from another source than Debian's packages: a working `npm` is enough.
if command -v npm >/dev/null 2>&1; then
  kept=()
  for pkg in "${missing[@]}"; do
    case "$pkg" in nodejs|npm) ;; *) kept+=("$pkg") ;; esac
  done
  missing=("${kept[@]+"${kept[@]}"}")
fi
# a Java runtime from elsewhere will do if it is 17 or newer (Spark 4 needs 17)
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)
if [ -n "${java_major:-}" ] && [ "$java_major" -ge 17 ]; then
  kept=()
  for pkg in "${missing[@]+"${missing[@]}"}"; do
    [ "$pkg" = openjdk-17-jre-headless ] || kept+=("$pkg")
  done
  missing=("${kept[@]+"${kept[@]}"}")
fi
if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  kept=()
  for pkg in "${missing[@]+"${missing[@]}"}"; do
    [ "$pkg" = python3-venv ] || kept+=("$pkg")
  done
  missing=("${kept[@]+"${kept[@]}"}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: every system package is already installed"
  exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
