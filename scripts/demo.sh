#!/usr/bin/env bash
# `make demo`: the main job on the local lab. Bring the lab up, apply site.yml, then show
# the inventory and what each node reports about itself.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin="$root/.venv/bin"
export ANSIBLE_CONFIG="$root/ansible.cfg"

echo "== 1/3 lab up"
"$bin/m7guard" lab up
echo "== 2/3 ansible-playbook playbooks/site.yml"
"$bin/ansible-playbook" -i inventories/lab/hosts.yml playbooks/site.yml
echo "== 3/3 the lab"
"$bin/m7guard" lab status
"$bin/ansible-inventory" -i inventories/lab/hosts.yml --graph
