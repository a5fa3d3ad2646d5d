#!/usr/bin/python3
"""Installed by nobody: run once per play by os_baseline's preflight (ansible script).

Reads what the role needs to decide in one call and prints it as JSON:
  os_baseline_probe.py '{"blocked": [...], "exempt": [...], "packages": [...],
                         "calendars": [...], "own_sources": "...", "paths": [...],
                         "aging": {...}}'
Nothing on the node changes.
"""

import glob
import json
import os
import re
import subprocess
import sys


def lines(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read().splitlines()


def run(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout


def os_release():
    data = {}
    with open("/etc/os-release", encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.strip().partition("=")
            data[key] = value.strip('"')
    return data


def sources():
    """(file, uri, suites) of every enabled deb source, one-line and deb822 formats."""
    found = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if not os.path.exists(path):
            continue
        for line in lines(path):
            line = line.split("#", 1)[0].split()
            if len(line) >= 3 and line[0] == "deb":
                words = [w for w in line[1:] if not w.startswith("[")]
                words = [w for w in words if not w.endswith("]")]
                if len(words) >= 2:
                    found.append((path, words[0], [words[1]]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", "\n".join(lines(path))):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0] != "no":
                for uri in fields.get("uris", []):
                    found.append((path, uri, fields.get("suites", [])))
    return found


def main():
    args = json.loads(sys.argv[1])
    rel = os_release()
    codename = rel.get("VERSION_CODENAME", "")
    container = run("systemd-detect-virt", "--container")[0] == 0
    srcs = sources()
    # a security suite from a file other than the role's own
    security = any(s == f"{codename}-security" for path, _, suites in srcs for s in suites
                   if path != args["own_sources"])
    main_uri = next((u for _, u, suites in srcs if codename in suites
                     and re.search(r"/debian/?$", u)), "")
    installed = {}
    for pkg in args["packages"]:
        rc, out = run("dpkg-query", "-W", "-f=${db:Status-Status}", pkg)
        installed[pkg] = rc == 0 and out.strip() == "installed"
    uid_min = 1000
    for line in lines("/etc/login.defs"):
        m = re.match(r"\s*UID_MIN\s+(\d+)", line)
        if m:
            uid_min = int(m.group(1))
    nologin = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
    shells, people = [], []
    for line in lines("/etc/passwd"):
        f = line.split(":")
        if len(f) < 7 or not f[2].isdigit():
            continue
        if int(f[2]) < uid_min and f[0] not in args["exempt"] and f[6] not in nologin:
            shells.append(f[0])
        elif int(f[2]) >= uid_min and f[6] not in nologin and f[0] != "nobody":
            people.append({"name": f[0], "home": f[5]})
    aging = args["aging"]
    to_age = []
    with open("/etc/shadow", encoding="utf-8") as fh:
        for line in fh:
            f = line.rstrip("\n").split(":")
            if len(f) < 9 or not f[1] or f[1][0] in "!*":
                continue
            # lastchg:min:max:warn:inactive
            want = [str(aging["min"]), str(aging["max"]), str(aging["warn"]),
                    str(aging["inactive"])]
            if f[3:7] != want:
                to_age.append(f[0])
    loaded = set()
    if not container:
        with open("/proc/modules", encoding="utf-8") as fh:
            loaded = {line.split()[0] for line in fh}
    loaded_blocked = [m for m in args["blocked"] if m.replace("-", "_") in loaded]
    calendars = {c: run("systemd-analyze", "calendar", c)[0] == 0 for c in args["calendars"]}
    print(json.dumps({
        "container": container, "codename": codename, "os_id": rel.get("ID", ""),
        "security_source": security, "debian_uri": main_uri, "installed": installed,
        "login_shells": shells, "people": people, "to_age": to_age,
        "loaded_blocked": loaded_blocked,
        "calendars": calendars,
        "existing": [p for p in args["paths"] if os.path.exists(p)],
    }))


if __name__ == "__main__":
    main()
