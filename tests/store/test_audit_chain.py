"""The audit log is append-only (the database refuses) and tamper-evident (the chain tells)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ictview.cli import main
from ictview.store import audit
from ictview.store.catalog import transaction
from ictview.store.schema import MIGRATIONS, SCHEMA_VERSION
from ictview.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def logged(ws, exam_factory):
    """A workspace with an import and a few audit rows."""
    ws.add_exam(exam_factory("ATL-1"))
    for k in range(4):
        ws.audit("dr-lee", "open_labels", "ATL-1", f"step {k}")
    return ws


def raw(ws) -> sqlite3.Connection:
    """A plain sqlite3 connection, as an attacker with file access has."""
    return sqlite3.connect(ws.root / "workspace.sqlite", isolation_level=None)


def check_lines(ws, capsys) -> tuple[int, list[str]]:
    rc = main(["check", str(ws.root)])
    return rc, [line for line in capsys.readouterr().out.splitlines() if line]


def test_clean_log_verifies(logged, capsys):
    problems, head = audit.verify(logged.con)
    assert problems == [] and head["id"] == 5 and len(head["hash"]) == 64
    assert check_lines(logged, capsys) == (0, [])


def test_insert_or_replace_on_an_existing_id_is_refused(logged):
    con = raw(logged)
    before = con.execute("SELECT * FROM audit_log WHERE id=2").fetchone()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("INSERT OR REPLACE INTO audit_log(id, at, actor, action, exam, detail, hash) "
                    "VALUES (2, 'x', 'mallory', 'nothing', NULL, '', ?)", ("0" * 64,))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("REPLACE INTO audit_log(id, at, actor, action, detail) "
                    "VALUES (2, 'x', 'mallory', 'nothing', '')")
    assert con.execute("SELECT * FROM audit_log WHERE id=2").fetchone() == before


@pytest.mark.parametrize("sql", [
    "UPDATE audit_log SET actor='mallory' WHERE id=2",
    "UPDATE OR REPLACE audit_log SET id=1 WHERE id=2",
    "DELETE FROM audit_log WHERE id=2",
    # a row that is not ictview's: no hash, or not the next id
    "INSERT INTO audit_log(at, actor, action, detail) VALUES ('x', 'mallory', 'a', '')",
    "INSERT INTO audit_log(id, at, actor, action, detail, hash) "
    "VALUES (9, 'x', 'mallory', 'a', '', '" + "0" * 64 + "')",
])
def test_edits_are_refused_by_the_database(logged, sql):
    con = raw(logged)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute(sql)
    assert audit.verify(logged.con)[0] == []


def test_edited_row_behind_the_apps_back_is_detected_by_check(logged, capsys):
    con = raw(logged)
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET actor='someone-else' WHERE id=3")
    # and put the trigger back so that only the chain can tell
    con.execute(audit.TRIGGERS["audit_log_no_update"])
    con.close()
    rc, lines = check_lines(logged, capsys)
    assert rc == 1
    assert len(lines) == 1 and "audit log: row 3" in lines[0] and "workspace.sqlite" in lines[0]


def test_deleted_rows_are_detected(logged, capsys):
    con = raw(logged)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.execute("DELETE FROM audit_log WHERE id=2")
    con.execute(audit.TRIGGERS["audit_log_no_delete"])
    con.close()
    rc, lines = check_lines(logged, capsys)
    assert rc == 1 and any("rows 2..2 are missing" in line for line in lines)


def test_deleting_the_last_rows_is_detected(logged):
    con = raw(logged)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.execute("DELETE FROM audit_log WHERE id >= 4")
    problems, head = audit.verify(logged.con)
    assert head["id"] == 3
    assert any("rows 4..5 at the end are missing" in p for p in problems)
    # covering it up in sqlite_sequence still leaves the head anchor
    con.execute("UPDATE sqlite_sequence SET seq=3 WHERE name='audit_log'")
    problems, _ = audit.verify(logged.con)
    assert any("not the one last written" in p for p in problems)


def test_dropped_triggers_are_detected(logged, capsys):
    con = raw(logged)
    con.execute("DROP TRIGGER audit_log_append_only")
    con.close()
    rc, lines = check_lines(logged, capsys)
    assert rc == 1 and lines == [
        f"{logged.root / 'workspace.sqlite'}: audit log: trigger audit_log_append_only is "
        "missing (dropped behind ictview's back)"
    ]


def test_every_writer_goes_through_audit_append():
    """The encoding lives in one place: no other module inserts audit rows itself."""
    offenders = []
    for path in list((REPO / "ictview").rglob("*.py")) + list((REPO / "training").rglob("*.py")):
        text = path.read_text()
        if "INTO audit_log" in text.replace("\n", " ") and path.name != "audit.py":
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_v2_workspace_is_migrated_to_a_chain(tmp_path, capsys):
    """An existing workspace (schema 2, rows without hashes, old triggers) is chained on open."""
    root = tmp_path / "old"
    root.mkdir()
    con = sqlite3.connect(root / "workspace.sqlite", isolation_level=None)
    for v in (1, 2):
        for stmt in MIGRATIONS[v]:
            con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '2'), ('created_at', 'then')")
    con.executemany("INSERT INTO audit_log(at, actor, action, exam, detail) VALUES (?,?,?,?,?)",
                    [(f"2026-01-0{k}", "dr-lee", "save_labels", "ATL-1", "reference")
                     for k in range(1, 4)])
    con.close()
    with Workspace.open(root) as ws:
        assert ws.summary()["schema_version"] == SCHEMA_VERSION
        rows = ws.con.execute("SELECT id, actor, hash FROM audit_log ORDER BY id").fetchall()
        assert [r[0] for r in rows] == [1, 2, 3] and all(len(r[2]) == 64 for r in rows)
        problems, head = audit.verify(ws.con)
        assert problems == [] and head["id"] == 3
        with transaction(ws.con):
            audit.append(ws.con, "dr-lee", "open_labels", "ATL-1")
        assert audit.verify(ws.con)[0] == []
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            ws.con.execute("INSERT OR REPLACE INTO audit_log(id, at, actor, action, detail, hash) "
                           "VALUES (1, 'x', 'm', 'a', '', ?)", ("0" * 64,))
        # label files saved before checksums existed are noted, not failed
        assert ws.con.execute("SELECT COUNT(*) FROM pragma_table_info('label_files') "
                              "WHERE name='sha1'").fetchone()[0] == 1
    assert main(["check", str(root)]) == 0
