"""`ictview check WS`: is every stored thing the thing ictview wrote?

Verifies, read-only (the files are never changed; opening the catalog may migrate it,
as any open does):
- the catalog: `PRAGMA integrity_check` and `foreign_key_check`;
- every volume, label and prediction file against the sha1 the catalog recorded when
  ictview wrote it, and files on disk the catalog does not know;
- every label journal (header, and each record's CRC);
- the audit log's hash chain and its guards (audit.verify).

A problem is one line naming the exam or file. Notes are things that are not wrong
but cannot be verified (files saved before checksums were recorded, a crash's
leftovers, journals kept aside for inspection).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ictview.errors import IctviewError
from ictview.store import arrays, audit
from ictview.store.label_journal import BAD_MARK, scan_journal
from ictview.store.workspace import Workspace


@dataclass
class CheckReport:
    workspace: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    audit_head: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"workspace": self.workspace, "ok": self.ok, "problems": self.problems,
                "notes": self.notes, "checked": self.checked, "audit_head": self.audit_head}


def _verify(path: Path, sha1: str | None, what: str, report: CheckReport) -> bool:
    """True when verified; a problem line when the file is not what was written."""
    if not path.exists():
        report.problems.append(f"{what} {path}: file missing")
        return False
    if not sha1:
        return False
    try:
        arrays.verify_file(path, sha1)
    except IctviewError as e:
        report.problems.append(f"{what} {e}")
        return False
    return True


def _check_catalog(ws: Workspace, report: CheckReport) -> None:
    db = ws.root / "workspace.sqlite"
    for line in (r[0] for r in ws.con.execute("PRAGMA integrity_check")):
        if line != "ok":
            report.problems.append(f"{db}: catalog damaged: {line}")
    for r in ws.con.execute("PRAGMA foreign_key_check"):
        report.problems.append(f"{db}: row {r[1]} of table {r[0]} refers to a missing {r[2]} row")


def _check_volumes(ws: Workspace, report: CheckReport) -> set[str]:
    names, n = set(), 0
    for name, sha1 in ws.con.execute("SELECT name, volume_sha1 FROM exams ORDER BY name"):
        names.add(name)
        n += _verify(ws.volume_path(name), sha1, f"exam {name}: volume", report)
    for p in sorted((ws.root / "volumes").glob("*.h5")):
        if p.stem not in names:
            report.problems.append(f"{p}: volume file of no exam in the catalog")
    stale = sorted((ws.root / "volumes").glob(f"*.h5{arrays.TMP_MARK}*"))
    if stale:  # an import's staged or temporary volumes: never an exam's file
        report.notes.append(f"{len(stale)} volume temp file(s) (an import in progress, or one "
                            f"a crash interrupted; the next import removes them), e.g. {stale[0]}")
    report.checked["volumes"] = n
    return names


def _check_labels(ws: Workspace, report: CheckReport, exams: set[str]) -> None:
    known, n, unrecorded = set(), 0, 0
    rows = ws.con.execute(
        """SELECT f.labelset, e.name, f.sha1 FROM label_files f JOIN exams e ON e.id = f.exam_id
           ORDER BY f.labelset, e.name""")
    for labelset, exam, sha1 in rows:
        path = ws.label_path(labelset, exam)
        known.add(path)
        if not sha1 and path.exists():
            unrecorded += 1
        n += _verify(path, sha1, f"exam {exam}: labelset {labelset}:", report)
    for p in sorted((ws.root / "labels").glob("*/*.h5")):
        if p not in known:
            report.problems.append(
                f"{p}: label file the catalog does not record (written behind ictview's back "
                "or left by a crashed import)")
    stale = sorted((ws.root / "labels").glob(f"*/*.h5{arrays.TMP_MARK}*"))
    if stale:
        report.notes.append(f"{len(stale)} label temp file(s) (a save in progress, or one a crash "
                            f"interrupted), e.g. {stale[0]}")
    if unrecorded:
        report.notes.append(f"{unrecorded} label file(s) saved before checksums were recorded: "
                            "not verifiable until their next save")
    report.checked["label_files"] = n


def _check_predictions(ws: Workspace, report: CheckReport) -> None:
    known, n = set(), 0
    rows = ws.con.execute(
        """SELECT p.run, e.name, p.sha1 FROM prediction_files p JOIN exams e ON e.id = p.exam_id
           ORDER BY p.run, e.name""")
    for run, exam, sha1 in rows:
        path = ws.prediction_path(run, exam)
        known.add(path)
        n += _verify(path, sha1, f"exam {exam}: prediction of run {run}:", report)
    unrecorded = [p for p in sorted((ws.root / "predictions").glob("*/*.h5")) if p not in known]
    if unrecorded:
        report.notes.append(f"{len(unrecorded)} prediction file(s) with no checksum in the catalog "
                            f"(written before checksums were recorded), e.g. {unrecorded[0]}")
    report.checked["prediction_files"] = n


def _check_journals(ws: Workspace, report: CheckReport) -> None:
    shapes = {r[0]: [r[1], r[2], r[3]]
              for r in ws.con.execute("SELECT name, n_slices, rows, cols FROM exams")}
    n = 0
    for p in sorted((ws.root / "labels").glob("*/*.journal")):
        n += 1
        try:
            data = p.read_bytes()
        except OSError as e:
            report.problems.append(f"{p}: journal unreadable ({e.strerror or e})")
            continue
        if len(data) < 12:
            continue  # empty: recreated on the next open
        scan = scan_journal(data)
        if scan.header_error:
            report.problems.append(f"{p}: {scan.header_error} (moved aside when the exam opens)")
            continue
        if p.stem not in shapes:
            report.problems.append(f"{p}: journal of no exam in the catalog")
        elif list(scan.info.get("shape", [])) != shapes[p.stem]:
            report.problems.append(f"{p}: journal is for shape {scan.info.get('shape')}, exam "
                                   f"{p.stem} has {shapes[p.stem]}")
        for start, length in scan.damaged:
            report.problems.append(f"{p}: damaged record at byte {start} ({length} bytes); "
                                   "dropped when the exam opens, later strokes kept")
        if scan.torn_tail:
            report.notes.append(f"{p}: unfinished last record ({scan.torn_tail} bytes): a "
                                "crash while appending, or an append in progress")
        if scan.records:
            report.notes.append(f"{p}: {len(scan.records)} unsaved stroke(s), replayed when "
                                "the exam opens")
    for p in sorted((ws.root / "labels").glob(f"*/*.journal{BAD_MARK}*")):
        report.notes.append(f"{p}: a damaged journal kept for inspection")
    report.checked["journals"] = n


def check_workspace(root: Path | str) -> CheckReport:
    root = Path(root)
    if not (root / "workspace.sqlite").is_file():
        # bad input, not a problem found: the CLI's usual one-line error
        raise IctviewError(f"{root}: not an ictview workspace (no workspace.sqlite)")
    report = CheckReport(str(root))
    try:
        ws = Workspace.open(root)
    except IctviewError as e:
        report.problems.append(str(e))
        return report
    db = root / "workspace.sqlite"

    def step(fn, *args):
        # a damaged catalog page fails one step (one line), the other steps still run
        try:
            return fn(*args)
        except sqlite3.DatabaseError as e:
            line = f"{db}: catalog unreadable ({e})"
            if line not in report.problems:
                report.problems.append(line)
            return None

    try:
        step(_check_catalog, ws, report)
        exams = step(_check_volumes, ws, report) or set()
        step(_check_labels, ws, report, exams)
        step(_check_predictions, ws, report)
        step(_check_journals, ws, report)
        chain = step(audit.verify, ws.con)
        if chain is not None:
            report.problems.extend(f"{db}: {p}" for p in chain[0])
            report.audit_head = chain[1]
            report.checked["audit_rows"] = chain[1]["id"]
    finally:
        ws.close()
    return report


def format_report(report: CheckReport) -> str:
    """The one summary line (the problems are printed one per line as they are)."""
    c = report.checked
    head = report.audit_head
    return (
        f"{report.workspace}: {'ok' if report.ok else f'{len(report.problems)} problem(s)'}; "
        f"verified {c.get('volumes', 0)} volumes, {c.get('label_files', 0)} label files, "
        f"{c.get('prediction_files', 0)} predictions, {c.get('journals', 0)} journals, "
        f"{c.get('audit_rows', 0)} audit rows"
        + (f" (head {head['id']}:{head['hash'][:16]})" if head else "")
    )
