"""The audit history: a local SQLite database of recorded results files.

Schema (version 1, in the `meta` table as `schema_version`):

  meta(key PRIMARY KEY, value)
  audits(id, started, finished, profile, profile_title, inventory, tool_version,
         catalog_version, catalog_digest, source_sha256 UNIQUE, source, recorded)
  frameworks(audit_id, framework, title, version)       the audit's profile frameworks
  rules(audit_id, rule, title, severity)                the rules the audit evaluated
  controls(audit_id, rule, framework, control)          the rule's references in that audit
  results(audit_id, host, rule, state, evaluated_state, severity, waiver_expires, message)

A results file is identified by the SHA-256 of its bytes: recording the same file again
changes nothing (`import` reports it as already recorded). The catalog's version and digest
come from the results' `catalog` object; results written before it existed get m7guard's
version and `snapshot-sha256:<hex>`, the SHA-256 of the rule and framework snapshots the
results carry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from m7guard.errors import M7guardError
from m7guard.results import Results, ResultsError

SCHEMA_VERSION = "1"
ENV_DB = "M7GUARD_HISTORY_DB"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE audits (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    profile TEXT NOT NULL,
    profile_title TEXT NOT NULL,
    inventory TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    catalog_version TEXT NOT NULL,
    catalog_digest TEXT NOT NULL,
    source_sha256 TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    recorded TEXT NOT NULL
);
CREATE TABLE frameworks (
    audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
    framework TEXT NOT NULL,
    title TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (audit_id, framework)
);
CREATE TABLE rules (
    audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    PRIMARY KEY (audit_id, rule)
);
CREATE TABLE controls (
    audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    framework TEXT NOT NULL,
    control TEXT NOT NULL,
    PRIMARY KEY (audit_id, rule, framework, control)
);
CREATE TABLE results (
    audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL,
    evaluated_state TEXT,
    severity TEXT NOT NULL,
    waiver_expires TEXT,
    message TEXT NOT NULL,
    PRIMARY KEY (audit_id, host, rule)
);
CREATE INDEX results_cell ON results (host, rule);
CREATE INDEX audits_started ON audits (started, id);
"""


class HistoryError(M7guardError):
    """The history database cannot be opened, read or written."""


def default_db_path() -> Path:
    """$M7GUARD_HISTORY_DB, else ~/.local/share/m7guard/history.sqlite."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "m7guard" / "history.sqlite"


@dataclass(frozen=True)
class Audit:
    id: int
    started: str
    finished: str
    profile: str
    profile_title: str
    inventory: str
    tool_version: str
    catalog_version: str
    catalog_digest: str
    source_sha256: str
    source: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording one results file: `added` False when the file was already
    in the history (nothing changed)."""

    audit_id: int
    added: bool
    sha256: str
    source: str


def catalog_identity(results: Results) -> tuple[str, str]:
    """(catalog version, catalog digest) of the audit (see the module docstring)."""
    catalog = results.data.get("catalog")
    if isinstance(catalog, dict) and catalog.get("version") and catalog.get("digest"):
        return str(catalog["version"]), str(catalog["digest"])
    snapshot = {"rules": results.data["rules"], "frameworks": results.data["frameworks"]}
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return str(results.data["tool"]["version"]), f"snapshot-sha256:{digest}"


class History:
    """An open history database. Use `History.open(path, create=...)` as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    @contextmanager
    def open(cls, path: Path, *, create: bool = False) -> Iterator[History]:
        """Open the database at path. create: make it (and its parent directory) when
        absent; otherwise a missing database is an error. The schema version must match."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise HistoryError(f"history database {path} is a directory, not a file")
        if not path.exists():
            if not create:
                raise HistoryError(
                    f"no history database at {path}: record audits first "
                    "(`m7guard history import RESULTS.json` or `m7guard audit --history`)"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(
                    f"cannot create the directory of history database {path}: {exc.strerror or exc}"
                ) from exc
        elif not os.access(path, os.R_OK):
            raise HistoryError(f"history database {path} is not readable (permission denied)")
        try:
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open history database {path}: {exc}") from exc
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            history = cls(conn, path)
            history._check_schema(create)
            yield history
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"history database {path}: {exc}") from exc
        finally:
            conn.close()

    def _check_schema(self, create: bool) -> None:
        tables = {
            row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            if not create:
                raise HistoryError(f"history database {self.path} is empty (no m7guard schema)")
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                # another process may have created it while this one waited for the lock
                if self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self.conn.execute(statement)
                    self.conn.execute(
                        "INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                    )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            tables = {
                row[0]
                for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        if "meta" not in tables:
            raise HistoryError(
                f"{self.path} is an SQLite database but not an m7guard history (no meta table)"
            )
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = row[0] if row else None
        if found != SCHEMA_VERSION:
            raise HistoryError(
                f"history database {self.path} has schema_version {found!r}; this m7guard "
                f"reads schema_version {SCHEMA_VERSION!r}. Use the m7guard version that wrote "
                "it, or record the results files again into a new database (--db)"
            )

    # -- writing ---------------------------------------------------------------------------

    def record_file(self, path: Path) -> Recorded:
        """Record the results file at path (validated against the results schema)."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise HistoryError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path} is not a JSON results file: {exc}") from exc
        results = Results.validated(data, str(path))
        return self.record(results, hashlib.sha256(raw).hexdigest(), str(path))

    def record(self, results: Results, sha256: str, source: str) -> Recorded:
        """Record one audit in one transaction: all of it or nothing. A results file already
        recorded (same SHA-256) is left as it is."""
        data = results.data
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise HistoryError(f"history database {self.path} cannot be written: {exc}") from exc
        try:
            row = self.conn.execute(
                "SELECT id FROM audits WHERE source_sha256 = ?", (sha256,)
            ).fetchone()
            if row:
                self.conn.execute("ROLLBACK")
                return Recorded(row[0], False, sha256, source)
            recorded = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            cur = self.conn.execute(
                "INSERT INTO audits (started, finished, profile, profile_title, inventory,"
                " tool_version, catalog_version, catalog_digest, source_sha256, source,"
                " recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    data["started"],
                    data["finished"],
                    data["profile"]["id"],
                    data["profile"]["title"],
                    data["inventory"],
                    data["tool"]["version"],
                    *catalog_identity(results),
                    sha256,
                    source,
                    recorded,
                ),
            )
            audit_id = int(cur.lastrowid or 0)
            frameworks = data["frameworks"]
            self.conn.executemany(
                "INSERT INTO frameworks VALUES (?, ?, ?, ?)",
                [
                    (
                        audit_id,
                        fw,
                        str(frameworks.get(fw, {}).get("title", fw)),
                        str(frameworks.get(fw, {}).get("version", "")),
                    )
                    for fw in dict.fromkeys([*data["profile"]["frameworks"], *frameworks])
                ],
            )
            self.conn.executemany(
                "INSERT INTO rules VALUES (?, ?, ?, ?)",
                [(audit_id, rid, r["title"], r["severity"]) for rid, r in data["rules"].items()],
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO controls VALUES (?, ?, ?, ?)",
                [
                    (audit_id, rid, fw, str(control))
                    for rid, r in data["rules"].items()
                    for fw, controls in r["references"].items()
                    for control in controls
                ],
            )
            self.conn.executemany(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        audit_id,
                        r["host"],
                        r["rule"],
                        r["state"],
                        r.get("evaluated_state"),
                        results.severity(r["rule"]),
                        (r.get("waiver") or {}).get("expires") if r["state"] == "waived" else None,
                        r["message"],
                    )
                    for r in data["results"]
                ],
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return Recorded(audit_id, True, sha256, source)

    # -- reading ---------------------------------------------------------------------------

    def audits(self, profile: str | None = None) -> list[Audit]:
        """Recorded audits, oldest first (by the results file's `started`, then id)."""
        sql = (
            "SELECT id, started, finished, profile, profile_title, inventory, tool_version,"
            " catalog_version, catalog_digest, source_sha256, source FROM audits"
        )
        args: tuple[str, ...] = ()
        if profile is not None:
            sql += " WHERE profile = ?"
            args = (profile,)
        return [Audit(*row) for row in self.conn.execute(sql + " ORDER BY started, id", args)]

    def find(self, sha256: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM audits WHERE source_sha256 = ?", (sha256,)
        ).fetchone()
        return int(row[0]) if row else None
