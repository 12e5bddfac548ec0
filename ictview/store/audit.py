"""The audit log: append-only and tamper-evident.

Every row carries `hash = sha256(previous row's hash + canonical encoding of the row)`,
so editing, deleting or reordering any row behind the app's back breaks the chain from
that row on. The database refuses UPDATE and DELETE, and refuses an INSERT that is not
the next id (which is what `INSERT OR REPLACE` on an existing id would be: REPLACE's
implicit delete fires no DELETE trigger, so the refusal has to be on the insert).
Dropping those triggers is itself reported by `verify`.

What a hash chain without a secret cannot prove: someone who rewrites every row from
the edited one on, recomputing every hash, and fixes the two tail anchors
(`sqlite_sequence`, `meta.audit_head`) leaves a consistent log. `verify` returns the
head (id and hash) so it can be written down elsewhere and compared later.

Every writer goes through `append`: it is the only place that knows the encoding.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone

GENESIS = "0" * 64

# name -> the SQL the catalog must hold for it (compared whitespace-normalised)
TRIGGERS = {
    "audit_log_no_update": """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    "audit_log_no_delete": """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    # the next id only, with a full hash: refuses INSERT OR REPLACE of an existing row
    "audit_log_append_only": """CREATE TRIGGER audit_log_append_only BEFORE INSERT ON audit_log
        WHEN NEW.id IS NULL
          OR NEW.id <> COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1
          OR NEW.hash IS NULL OR length(NEW.hash) <> 64
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows are added by ictview only');
        END""",
}


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def row_hash(prev: str, id_: int, at: str, actor: str, action: str, exam: str | None,
             detail: str) -> str:
    canonical = json.dumps([id_, at, actor, action, exam, detail], ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(prev.encode("ascii") + b"\n" + canonical.encode("utf-8")).hexdigest()


def _head(con: sqlite3.Connection) -> tuple[int, str]:
    row = con.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append(con: sqlite3.Connection, actor: str, action: str, exam: str | None = None,
           detail: str = "", at: str | None = None) -> int:
    """Add one row; call inside a write transaction (BEGIN IMMEDIATE serialises the chain)."""
    if not con.in_transaction:
        raise RuntimeError("audit.append must run inside a transaction")
    at = at or _utc_now()
    last_id, prev = _head(con)
    id_ = last_id + 1
    h = row_hash(prev, id_, at, actor, action, exam, detail)
    con.execute(
        "INSERT INTO audit_log(id, at, actor, action, exam, detail, hash) VALUES (?,?,?,?,?,?,?)",
        (id_, at, actor, action, exam, detail, h),
    )
    con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_head', ?)",
                (f"{id_}:{h}",))
    return id_


def _norm(sql: str) -> str:
    return " ".join(sql.split())


def verify(con: sqlite3.Connection) -> tuple[list[str], dict]:
    """(problems, head): one line per break in the chain or missing guard."""
    problems: list[str] = []
    present = {r[0]: r[1] or "" for r in con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_log'")}
    for name, sql in TRIGGERS.items():
        if name not in present:
            problems.append(f"audit log: trigger {name} is missing (dropped behind ictview's back)")
        elif _norm(present[name]) != _norm(sql):
            problems.append(f"audit log: trigger {name} was altered")
    prev, expect_id = GENESIS, 1
    for r in con.execute(
        "SELECT id, at, actor, action, exam, detail, hash FROM audit_log ORDER BY id"
    ):
        id_ = int(r[0])
        if id_ != expect_id:
            problems.append(f"audit log: rows {expect_id}..{id_ - 1} are missing (deleted)"
                            if id_ > expect_id else f"audit log: row id {id_} out of order")
        h = row_hash(prev, id_, r[1], r[2], r[3], r[4], r[5])
        if r[6] != h:
            problems.append(
                f"audit log: row {id_} ({r[3]} by {r[2]} at {r[1]}) does not match its hash "
                "(edited, or an earlier row was)"
            )
        prev, expect_id = r[6] or "", id_ + 1
    last_id = expect_id - 1
    seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name='audit_log'").fetchone()
    if seq is not None and int(seq[0]) > last_id:
        problems.append(f"audit log: rows {last_id + 1}..{int(seq[0])} at the end are missing "
                        "(deleted)")
    anchor = con.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
    if anchor is not None and anchor[0] != f"{last_id}:{prev}":
        problems.append(f"audit log: the last row is not the one last written ({anchor[0]})")
    return problems, {"id": last_id, "hash": prev}


def migrate_to_chain(con: sqlite3.Connection) -> None:
    """Schema v3: add the hash column, chain the existing rows in id order, add the guards.

    Runs inside the migration's transaction; the old triggers are dropped for the
    UPDATE that fills in the hashes and recreated (with the insert guard) after it.
    """
    con.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    con.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    con.execute("ALTER TABLE audit_log ADD COLUMN hash TEXT")
    prev, last = GENESIS, 0
    rows = con.execute(
        "SELECT id, at, actor, action, exam, detail FROM audit_log ORDER BY id").fetchall()
    for r in rows:
        prev = row_hash(prev, int(r[0]), r[1], r[2], r[3], r[4], r[5])
        con.execute("UPDATE audit_log SET hash=? WHERE id=?", (prev, r[0]))
        last = int(r[0])
    for sql in TRIGGERS.values():
        con.execute(sql)
    con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_head', ?)",
                (f"{last}:{prev}",))
