"""Breaks of the ENC-* rules (field encryption).

ENC-003 judges /etc/m7guard/field-encryption.yml itself (type, owner, mode, its directory,
its content); ENC-001, ENC-002 and ENC-004 read the same file as root, so its mode, owner and
link-ness change only ENC-003, and its content is broken only where no other rule reads it
(a table no data directory uses). ENC-004 scans the data directories the file lists
(/srv/m7guard/data/users for the table users, /srv/m7guard/data/payments for payments in the
lab) with the node's field-encrypt; its breaks drop a new file there, or take the directory
or the tool away (error: the evidence is gone).

ENC-001 and ENC-002 judge the KMS key (rotation, state, key policy), which KMS holds and the
audit asks from the controller: the node carries only the alias and region, and changing
them changes both rules at once. They are left out here; the unit tests named in LEFT_OUT
show each of them fail against a moto KMS.
"""

from __future__ import annotations

import shlex

from battery import SAVE, Break, edit, put_back, save, saved

CONF = "/etc/m7guard/field-encryption.yml"
CONF_DIR = "/etc/m7guard"
USERS = "/srv/m7guard/data/users"  # field_encryption_data_dirs of the lab (table users)
PAYMENTS = "/srv/m7guard/data/payments"  # (table payments)
TOOL = "/opt/m7guard/venv/bin/field-encrypt"  # field_encryption_venv + /bin/field-encrypt



def _put_back_if_saved(path: str) -> str:
    return f"{{ [ ! -e {saved(path)} ] || {{ {put_back(path)}; }}; }}"


def _conf(command: str, check: str) -> tuple[str, str]:
    """(apply, restore): change the configuration file's metadata, and put it back."""
    return (f"{save(CONF)} && {command} && {check}", _put_back_if_saved(CONF))


def _dir(command: str, check: str) -> tuple[str, str]:
    """(apply, restore): change the configuration directory's owner or mode (not its
    content) and put the recorded owner, group and mode back."""
    state = f"{SAVE}/etc_m7guard.stat"
    apply = (f"mkdir -p {SAVE} && stat -c '%a %u:%g' {CONF_DIR} > {state} && "
             f"{command} && {check}")
    restore = (f"{{ [ ! -e {state} ] || {{ read mode owner < {state} && "
               f"chown \"$owner\" {CONF_DIR} && chmod \"$mode\" {CONF_DIR} && "
               f"rm -f {state}; }}; }}")
    return apply, restore


def _plant(path: str, line: str) -> tuple[str, str]:
    """(apply, restore): a new file with one line in a data directory, and its removal."""
    return (f"[ ! -e {path} ] && printf '%s\\n' {shlex.quote(line)} > {path} && [ -s {path} ]",
            f"rm -f {path}")


def _move(path: str) -> tuple[str, str]:
    """(apply, restore): move path aside on the same file system, and back."""
    aside = f"{path}.battery-moved"
    return (f"[ ! -e {aside} ] && mv {path} {aside} && [ ! -e {path} ]",
            f"{{ [ ! -e {aside} ] || mv {aside} {path}; }} && [ -e {path} ]")


_LINKED = "/usr/local/etc/m7guard-field-encryption.yml"

BREAKS: list[Break] = [
    # ENC-003: file mode (others read; group write), owner, type, directory, content.
    Break("ENC-003", "configuration readable by others (0644)",
          *_conf(f"chmod o+r {CONF}", f'[ -n "$(find {CONF} -perm -o=r)" ]')),
    Break("ENC-003", "configuration writable by its group (0660)",
          *_conf(f"chmod g+w {CONF}", f'[ -n "$(find {CONF} -perm -g=w)" ]')),
    Break("ENC-003", "configuration owned by nobody",
          *_conf(f"chown nobody {CONF}", f'[ "$(stat -c %U {CONF})" = nobody ]')),
    # Moved elsewhere and linked back: every reader still sees the same content.
    Break("ENC-003", "configuration is a symlink to a copy in /usr/local/etc",
          f"{save(CONF)} && mkdir -p /usr/local/etc && cp -a {CONF} {_LINKED} && "
          f"ln -sfn {_LINKED} {CONF} && [ -L {CONF} ]",
          f"{{ [ ! -L {CONF} ] || rm -f {CONF}; }} && {_put_back_if_saved(CONF)} && "
          f"rm -f {_LINKED} && [ -f {CONF} ] && [ ! -L {CONF} ]"),
    Break("ENC-003", "configuration directory writable by its group",
          *_dir(f"chmod g+w {CONF_DIR}", f'[ -n "$(find {CONF_DIR} -maxdepth 0 -perm -g=w)" ]')),
    Break("ENC-003", "configuration directory owned by nobody",
          *_dir(f"chown nobody {CONF_DIR}", f'[ "$(stat -c %U {CONF_DIR})" = nobody ]')),
    # A table stub with no fields; no data directory uses it, so ENC-004's scan is as before.
    Break("ENC-003", "a table without fields to encrypt",
          edit(CONF, 's/^tables:$/tables:\\n  "staging": {"fields": []}/')[0],
          _put_back_if_saved(CONF)),
    # ENC-004: a card number in a record file, an SSN in a text file, a policy field left
    # in clear (no number in it: only the field policy catches it); and the evidence gone.
    Break("ENC-004", "plaintext card number in a JSON Lines export",
          *_plant(f"{PAYMENTS}/battery-export.jsonl",
                  '{"_id": "battery-1", "card_number": "4111 1111 1111 1111"}')),
    Break("ENC-004", "plaintext SSN in a text file",
          *_plant(f"{USERS}/battery-notes.txt", "customer 219-09-9999 called about access")),
    Break("ENC-004", "policy field personal_info left unencrypted",
          *_plant(f"{USERS}/battery-users.jsonl",
                  '{"_id": "battery-2", "personal_info": "Jane Example, Main Street"}')),
    Break("ENC-004", "a configured data directory is missing", *_move(USERS), expect="error"),
    Break("ENC-004", "field-encrypt removed from the node", *_move(TOOL), expect="error"),
]

LEFT_OUT: dict[str, str] = {
    "ENC-001": "the property lives in KMS (rotation and key state, asked from the controller; "
               "the node holds only the alias, which ENC-002 reads too); proven against a moto "
               "KMS server by the unit tests tests/proofs.py names",
    "ENC-002": "the property lives in KMS (the key policy, asked from the controller; the "
               "node holds only the alias, which ENC-001 reads too); proven against a moto "
               "KMS server by the unit tests tests/proofs.py names",
}
