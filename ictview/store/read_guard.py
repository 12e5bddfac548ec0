"""The read guard: who may read which labels and predictions. THE one place blinding
of test-retest studies is decided (issue 11).

Every `Workspace` carries `ws.guard`, a `ReadGuard` built from the workspace and
the OS login it was opened with (`ictview.identity.current_login()`, or
`Workspace.open(root, login=...)` in tests). The workspace's public readers ask it
before reading, so every reader in the app goes through it whether it knows or
not: the GUI views, `ictview export`/`info`, `AnnotationModel.open` (editing and
read-only), the study analyses and the training pipeline:

    ws.load_labels(labelset, exam)        -> guard.require_labels   (raises)
    ws.read_prediction(run, exam)         -> guard.require_prediction (raises)
    ws.exam_reads / exam_label / image_labels (exam- and slice-level labels: raises)
    ws.labelsets() / labelset_exams() / predicted_exams()  -> filtered by the guard

A new reader of labels or predictions must call one of those (or the guard's
`require_*` itself before touching a file); `tests/store/test_read_guard_coverage.py`
fails when the low-level readers (`arrays.read_labels`, `arrays.read_prediction`,
`label_path`/`prediction_path` opened for reading, the catalog's label tables) are
used anywhere else. Hidden items are left out of listings; asking for one
by name raises `BlindingError` (an IctviewError: one line at every CLI, a message
in the GUI) and audits the attempt (`blinding_refused`).

Policy, while a study is unfinished (not every repetition ended, not aborted,
not unblinded), for each study:
- its administrators (`retest_admins`: `retest plan --admins`, default the
  planner's login) read everything;
- its rater's login (`retest_studies.rater_login`) reads no labels (pixel, slice
  or exam level, any labelset) and no predictions of the study's exams, except the
  labels of the repetition in progress in that repetition's labelset; typed rater
  names play no part;
- deny by default: while the rater's login is not known yet, every login that is
  not an administrator is treated as possibly the rater;
- any other login reads the study's exams as usual but none of the study's
  repetition labelsets.
Administrator actions (washout override, unblind, abort, export of a repetition)
are checked by `require_admin`, which names the study's administrators.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ictview.errors import IctviewError
from ictview.store import audit
from ictview.store.catalog import transaction

if TYPE_CHECKING:
    from ictview.store.workspace import Workspace


class BlindingError(IctviewError):
    """A read (or an action) that the blinding of a test-retest study forbids."""


@dataclass(frozen=True)
class StudyFacts:
    """What the policy needs of one unfinished study."""

    name: str
    rater: str  # display name
    rater_login: str | None  # None: not known yet (deny by default)
    admins: frozenset[str]
    exams: frozenset[str]
    labelsets: frozenset[str]  # the repetitions' labelsets
    current_labelset: str | None  # the repetition in progress, if any

    def role(self, login: str) -> str:
        """'admin', 'rater' (the rater, or possibly the rater) or 'other'."""
        if login in self.admins:
            return "admin"
        if self.rater_login is None or login == self.rater_login:
            return "rater"
        return "other"


def unfinished_studies(con: sqlite3.Connection) -> list[StudyFacts]:
    """Studies whose blinding is in force: not closed and some repetition not ended."""
    out = []
    rows = con.execute(
        "SELECT id, name, rater, rater_login, exams FROM retest_studies WHERE closed_at IS NULL"
    ).fetchall()
    for r in rows:
        sessions = con.execute(
            "SELECT labelset, started_at, ended_at FROM retest_sessions WHERE study_id=?",
            (r["id"],),
        ).fetchall()
        if sessions and all(s["ended_at"] is not None for s in sessions):
            continue
        current = next((s["labelset"] for s in sessions
                        if s["started_at"] is not None and s["ended_at"] is None), None)
        admins = frozenset(a[0] for a in con.execute(
            "SELECT login FROM retest_admins WHERE study_id=?", (r["id"],)))
        out.append(StudyFacts(
            name=r["name"], rater=r["rater"], rater_login=r["rater_login"], admins=admins,
            exams=frozenset(json.loads(r["exams"])),
            labelsets=frozenset(s["labelset"] for s in sessions), current_labelset=current,
        ))  # fmt: skip
    return out


def _admin_list(st: StudyFacts) -> str:
    return ", ".join(sorted(st.admins)) or "none"


class ReadGuard:
    """Rater-scoped reads of one workspace for one login (see the module doc).

    Facts are re-read from the catalog on every question, so a session that starts
    or ends in another process takes effect at the next read.
    """

    def __init__(self, ws: "Workspace", login: str):
        self.ws = ws
        self.login = login

    # ---- the policy ---------------------------------------------------------------------

    def studies(self) -> list[StudyFacts]:
        return unfinished_studies(self.ws.con)

    def why_not_labels(self, labelset: str | None, exam: str,
                       studies: list[StudyFacts] | None = None) -> str:
        """'' when this login may read `exam`'s labels in `labelset` (None: the exam's
        slice- and exam-level labels), else the reason."""
        for st in self.studies() if studies is None else studies:
            role = st.role(self.login)
            if role == "admin":
                continue
            if labelset in st.labelsets:
                if role == "rater" and labelset == st.current_labelset and exam in st.exams:
                    continue  # the repetition in progress: the rater's own work
                return (f"labelset '{labelset}' is a repetition of unfinished test-retest study "
                        f"'{st.name}': only its administrators ({_admin_list(st)}) may read it, "
                        f"not login '{self.login}'")  # fmt: skip
            if role == "rater" and exam in st.exams:
                who = ("the study's rater" if st.rater_login == self.login
                       else "possibly its rater: the rater's login is not known yet")
                return (f"labels of '{exam}' are hidden from login '{self.login}' ({who}) until "
                        f"test-retest study '{st.name}' is finished")  # fmt: skip
        return ""

    def why_not_prediction(self, run: str, exam: str,
                           studies: list[StudyFacts] | None = None) -> str:
        for st in self.studies() if studies is None else studies:
            if st.role(self.login) == "rater" and exam in st.exams:
                who = ("the study's rater" if st.rater_login == self.login
                       else "possibly its rater: the rater's login is not known yet")
                return (f"predictions of '{exam}' (run '{run}') are hidden from login "
                        f"'{self.login}' ({who}) until test-retest study '{st.name}' "
                        "is finished")  # fmt: skip
        return ""

    def may_read_labels(self, labelset: str | None, exam: str) -> bool:
        return not self.why_not_labels(labelset, exam)

    def may_read_prediction(self, run: str, exam: str) -> bool:
        return not self.why_not_prediction(run, exam)

    def hides_anything(self) -> bool:
        """True when some study currently restricts this login."""
        return any(st.role(self.login) != "admin" for st in self.studies())

    # ---- checks before a read (raise and audit) -----------------------------------------

    def require_labels(self, labelset: str | None, exam: str) -> None:
        why = self.why_not_labels(labelset, exam)
        if why:
            self._refuse("labels", exam, why, labelset=labelset)

    def require_prediction(self, run: str, exam: str) -> None:
        why = self.why_not_prediction(run, exam)
        if why:
            self._refuse("prediction", exam, why, run=run)

    def _refuse(self, kind: str, exam: str | None, why: str, **what) -> None:
        detail = json.dumps({"kind": kind, "reason": why, **what}, sort_keys=True)
        try:  # a refusal is worth recording; a read-only catalog must not mask it
            with transaction(self.ws.con) as con:
                audit.append(con, self.login, "blinding_refused", exam, detail)
        except sqlite3.Error:
            pass
        raise BlindingError(f"{self.ws.root}: {why}")

    def require_unblinded(self, exams, what: str) -> None:
        """For computations that must not run silently on fewer exams (training's
        evaluation, pseudo-labels): refuse, in one line, when the blinding hides the
        labels or predictions of any of `exams` from this login."""
        exams = set(exams)
        for st in self.studies():
            hit = exams & st.exams
            if hit and st.role(self.login) == "rater":
                self._refuse("exams", None,
                             f"{what}: {len(hit)} of the exams it needs (e.g. "
                             f"'{sorted(hit)[0]}') belong to unfinished test-retest study "
                             f"'{st.name}', whose labels and predictions are hidden from login "
                             f"'{self.login}'; run it under another login or after the study",
                             study=st.name)

    # ---- listings (hidden items left out) -----------------------------------------------

    def labelset_exams(self, labelset: str) -> tuple[list[str], list[tuple[str, str]]]:
        """(exams with a label file in `labelset` this login may read, [(hidden exam,
        why)]): for readers that must say what they left out (export)."""
        rows = self.ws.con.execute(
            """SELECT e.name FROM label_files f JOIN exams e ON e.id = f.exam_id
               WHERE f.labelset=? ORDER BY e.name""",
            (labelset,),
        )
        studies = self.studies()
        visible, hidden = [], []
        for (exam,) in rows:
            why = self.why_not_labels(labelset, exam, studies)
            if why:
                hidden.append((exam, why))
            else:
                visible.append(exam)
        return visible, hidden

    def visible_predictions(self, run: str, exams: list[str]) -> list[str]:
        studies = self.studies()
        return [e for e in exams if not self.why_not_prediction(run, e, studies)]

    def hidden_predictions(self, run: str) -> list[str]:
        """Exams of `run` with a prediction this login may not see (for a view to say
        how many it leaves out, rather than leaving them out silently)."""
        have = sorted(p.stem for p in (self.ws.root / "predictions" / run).glob("*.h5"))
        studies = self.studies()
        return [e for e in have if self.why_not_prediction(run, e, studies)]

    def visible_labelset(self, labelset: str, studies: list[StudyFacts] | None = None) -> bool:
        # (why_hidden_labelset says why, for one labelset)
        """A labelset chooser may offer it: not another repetition of a study hidden
        from this login (the repetition in progress stays visible to its rater)."""
        for st in self.studies() if studies is None else studies:
            role = st.role(self.login)
            if labelset in st.labelsets and role != "admin" and not (
                role == "rater" and labelset == st.current_labelset
            ):
                return False
        return True

    def visible_labelsets(self, names: list[str]) -> list[str]:
        studies = self.studies()
        return [n for n in names if self.visible_labelset(n, studies)]

    def why_hidden_labelset(self, labelset: str) -> str:
        """'' when a chooser may offer `labelset`, else why not."""
        for st in self.studies():
            role = st.role(self.login)
            if labelset in st.labelsets and role != "admin" and not (
                role == "rater" and labelset == st.current_labelset
            ):
                return (f"labelset '{labelset}' is a repetition of unfinished test-retest study "
                        f"'{st.name}': only its administrators ({_admin_list(st)}) may read it, "
                        f"not login '{self.login}'")  # fmt: skip
        return ""

    # ---- administrator actions ------------------------------------------------------------

    def note_export(self, labelset: str) -> None:
        """Before exporting `labelset`: a repetition of an unfinished study is exported
        by its administrators only, and each such export is audited."""
        for st in self.studies():
            if labelset not in st.labelsets:
                continue
            if st.role(self.login) != "admin":
                self._refuse("export", None, self.why_hidden_labelset(labelset)
                             or f"exporting labelset '{labelset}' of unfinished test-retest "
                             f"study '{st.name}' is for its administrators "
                             f"({_admin_list(st)}), not login '{self.login}'",
                             labelset=labelset)
            with transaction(self.ws.con) as con:
                audit.append(con, self.login, "blinding_export_repetition", None,
                             json.dumps({"study": st.name, "labelset": labelset},
                                        sort_keys=True))

    def is_admin(self, study: str) -> bool:
        return self.login in study_admins(self.ws.con, study)

    def require_admin(self, study: str, action: str) -> None:
        """Raise unless this login administers `study` (override, unblind, abort, export)."""
        admins = study_admins(self.ws.con, study)
        if self.login not in admins:
            raise BlindingError(
                f"{self.ws.root}: {action} in test-retest study '{study}' is for its "
                f"administrators ({', '.join(sorted(admins)) or 'none'}), not login "
                f"'{self.login}'"
            )


def study_admins(con: sqlite3.Connection, study: str) -> frozenset[str]:
    return frozenset(r[0] for r in con.execute(
        """SELECT a.login FROM retest_admins a JOIN retest_studies s ON s.id = a.study_id
           WHERE s.name=?""", (study,)))  # fmt: skip
