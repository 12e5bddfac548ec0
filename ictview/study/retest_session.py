"""Running one repetition of a test-retest study: washout, fixed order, audit.

- Washout: repetition k (k >= 2) opens `washout_days` after repetition k-1 ended;
  before that `start` raises WashoutNotOver, whose message says exactly when it
  opens. An administrator of the study (an OS login in `retest_admins`, never the
  rater's) may start it earlier with a typed, non-empty reason: the session row
  keeps the reason and the administrator's login (`override_reason`,
  `override_by`), the audit log gets a `retest_override` row, and the analysis
  marks the session. A clock that reads earlier than the study's last audited
  event is refused; a start after the washout records the washout measured
  from the audit times (`washout_s` of `retest_session_start`).
- Identity: the session runs under the rater's OS login (`bind_rater_login`:
  bound at the first session when not given at planning, never an administrator);
  the typed rater name must be the study's rater, compared case-folded and trimmed.
- Order: exams come one at a time in the repetition's recorded order; `current()`
  is the first exam not yet done, and only it can be opened, saved or marked done.
  `advance()` moves on once the current exam is saved (a label file in the
  session's labelset) or explicitly marked done (`mark_done`: "nothing more to
  label"; an exam without a file then gets an empty one, a real "no hemorrhage"
  segmentation). After the last exam the session ends.
- Audit (append-only `audit_log`, times from the injected clock; detail is JSON
  naming the study, repetition and labelset): retest_session_start,
  retest_override, retest_exam_open, retest_exam_close (active seconds on task from
  the annotation model, wall seconds from the clock), retest_exam_done,
  retest_session_end. Saves are logged by the store itself (`save_labels`, with
  the labelset), and the catalog keeps time on task per exam (`label_files`).

Progress lives in the audit log (the `retest_exam_done` rows of the labelset), so
a crash or a restart resumes at the right exam without another table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ictview.errors import IctviewError
from ictview.identity import same_rater
from ictview.store.catalog import transaction
from ictview.store.workspace import Workspace
from ictview.study.clock import Clock, SystemClock, human, human_duration, iso
from ictview.study.retest_plan import (
    RetestStudy,
    SessionPlan,
    bind_rater_login,
    check_clock,
    events,
    load_study,
    record_event,
)

EXAM_EVENTS = ("retest_exam_open", "retest_exam_close", "retest_exam_done")


class WashoutNotOver(IctviewError):
    """The repetition cannot start yet; `opens_at` says when it can."""

    def __init__(self, message: str, opens_at: datetime):
        super().__init__(message)
        self.opens_at = opens_at


@dataclass(frozen=True)
class Availability:
    """What the rater can do next in a study (for status, the CLI and the app)."""

    study: str
    state: str  # "in progress", "ready", "washout", "waiting", "finished", "closed"
    repetition: int | None  # the repetition in progress / ready / waiting for washout
    opens_at: datetime | None  # washout: when it opens
    message: str  # one line for people

    def to_dict(self) -> dict:
        return {"study": self.study, "state": self.state, "repetition": self.repetition,
                "opens_at": iso(self.opens_at) if self.opens_at else None,
                "message": self.message}  # fmt: skip


def availability(study: RetestStudy, clock: Clock) -> Availability:
    now = clock.now()
    n = study.repetitions
    if study.closed_at is not None:
        return Availability(study.name, "closed", None, None,
                            f"the study was {study.closed_how} by {study.closed_by} on "
                            f"{human(study.closed_at)}")  # fmt: skip
    for s in study.sessions:
        if s.status == "in progress":
            return Availability(study.name, "in progress", s.repetition, None,
                                f"repetition {s.repetition} of {n} is in progress")  # fmt: skip
        if s.status == "planned":
            if s.repetition == 1:
                return Availability(study.name, "ready", 1, None, f"repetition 1 of {n} can start")
            prev = study.session(s.repetition - 1)
            opens = prev.ended_at + study.washout
            if now >= opens:
                return Availability(study.name, "ready", s.repetition, opens,
                                    f"repetition {s.repetition} of {n} can start "
                                    f"(washout ended {human(opens)})")  # fmt: skip
            msg = (
                f"repetition {s.repetition} of {n} opens on {human(opens, round_up=True)} "
                f"(washout {study.washout_days:g} days after repetition {prev.repetition} ended "
                f"on {human(prev.ended_at)}; {human_duration(opens - now)} to go)"
            )
            return Availability(study.name, "washout", s.repetition, opens, msg)
    return Availability(study.name, "finished", None, None, f"all {n} repetitions are finished")


class RetestSession:
    """One repetition being run by the study's rater (see the module doc)."""

    def __init__(self, ws: Workspace, study: RetestStudy, repetition: int, clock: Clock):
        self.ws, self.clock = ws, clock
        self.study = study
        self.plan: SessionPlan = study.session(repetition)
        self._opened: dict[str, datetime] = {}  # exam -> when this process opened it

    # ---- opening ------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        ws: Workspace,
        study: str,
        rater: str,
        *,
        clock: Clock | None = None,
        override_reason: str | None = None,
    ) -> "RetestSession":
        """Start the study's next repetition, as the rater or as an administrator.

        Raises WashoutNotOver before the washout has passed, unless override_reason
        (typed, non-empty) is given by an administrator's login (`ws.login`): then the
        override is recorded and audited. A login that is not an administrator is the
        rater's (bound or checked here).
        """
        clock = clock or SystemClock()
        st = load_study(ws, study)
        _check_rater(ws, st, rater)
        if override_reason is not None:
            ws.guard.require_admin(study, "a washout override")
            if not override_reason.strip():
                raise IctviewError(
                    f"study '{study}': an override needs a typed reason (it was empty)")
        if ws.login not in st.admins:
            bind_rater_login(ws, st)
        if st.closed_at is not None:
            raise IctviewError(f"study '{study}': {st.closed_how} on {human(st.closed_at)}; "
                               "no repetition can start")  # fmt: skip
        actor = ws.login
        with transaction(ws.con):
            st = load_study(ws, study)  # re-read under the write lock: one start wins
            now = clock.now()
            check_clock(ws.con, study, now, ws.root)
            av = availability(st, clock)
            if av.state == "in progress":
                s = st.session(av.repetition)
                raise IctviewError(
                    f"study '{study}': repetition {s.repetition} already started on "
                    f"{human(s.started_at)}; continue it in the app"
                )
            if av.state == "finished":
                raise IctviewError(f"study '{study}': {av.message}")
            overridden = av.state == "washout"
            if overridden and not override_reason:
                raise WashoutNotOver(
                    f"study '{study}': {av.message}; an administrator can start it earlier "
                    "with a typed reason (--override-reason)",
                    av.opens_at,
                )
            k = av.repetition
            reason = override_reason.strip() if overridden else None
            ws.con.execute(
                """UPDATE retest_sessions SET started_at=?, override_reason=?, override_by=?
                   WHERE study_id=? AND repetition=? AND started_at IS NULL""",
                (iso(now), reason, actor if overridden else None, st.id, k),
            )
        session = cls(ws, load_study(ws, study), k, clock)
        base = session._detail()
        if overridden:
            record_event(ws, clock, "retest_override", None, {
                **base, "reason": reason, "opens_at": iso(av.opens_at),
                "early_by_s": round((av.opens_at - now).total_seconds(), 3),
                "washout_days": st.washout_days, "rater": st.rater})  # fmt: skip
        washout = {}
        if k > 1:  # measured from the audit times, whatever the session rows say
            prev_end = [e for e in events(ws, ("retest_session_end",),
                                          st.session(k - 1).labelset)]
            if prev_end:
                from ictview.study.clock import parse_time

                washout = {"washout_s": round((now - parse_time(prev_end[-1]["at"]))
                                              .total_seconds(), 3)}
        record_event(ws, clock, "retest_session_start", None,
                     {**base, "overridden": overridden, "exams": len(session.order),
                      "started_by": actor, **washout})
        return session

    @classmethod
    def resume(cls, ws: Workspace, study: str, rater: str, *, clock: Clock | None = None
               ) -> "RetestSession | None":
        """The repetition in progress, or None. Only under the rater's login."""
        st = load_study(ws, study)
        _check_rater(ws, st, rater)
        bind_rater_login(ws, st)
        for s in st.sessions:
            if s.status == "in progress":
                return cls(ws, st, s.repetition, clock or SystemClock())
        return None

    @classmethod
    def open_next(cls, ws: Workspace, study: str, rater: str, *, clock: Clock | None = None
                  ) -> "RetestSession":
        """What the app does: continue the repetition in progress, else start the next one
        (under the rater's login only: resume refuses an administrator)."""
        return cls.resume(ws, study, rater, clock=clock) or cls.start(ws, study, rater, clock=clock)

    # ---- facts --------------------------------------------------------------------------

    @property
    def rater(self) -> str:
        return self.study.rater

    @property
    def labelset(self) -> str:
        return self.plan.labelset

    @property
    def repetition(self) -> int:
        return self.plan.repetition

    @property
    def order(self) -> tuple[str, ...]:
        return self.plan.exam_order

    @property
    def overridden(self) -> bool:
        return self.plan.overridden

    def _detail(self, **extra) -> dict:
        return {"study": self.study.name, "repetition": self.repetition,
                "labelset": self.labelset, **extra}  # fmt: skip

    def _refresh(self) -> None:
        self.study = load_study(self.ws, self.study.name)
        self.plan = self.study.session(self.repetition)

    def done_exams(self) -> list[str]:
        """Exams marked done in this session, in the order they were done."""
        done = [e["exam"] for e in events(self.ws, ("retest_exam_done",), self.labelset)]
        return list(dict.fromkeys(done))

    @property
    def ended(self) -> bool:
        return self.plan.ended_at is not None

    def current(self) -> str | None:
        """The exam to work on now (None once every exam is done)."""
        done = set(self.done_exams())
        return next((e for e in self.order if e not in done), None)

    def position(self) -> tuple[int, int]:
        """(k, n): the current exam is the k-th of n (k = n + 1 when all are done)."""
        return len(self.done_exams()) + 1, len(self.order)

    def progress_text(self) -> str:
        k, n = self.position()
        rep = f"Repetition {self.repetition} of {self.study.repetitions}"
        return f"{rep} — all {n} exams done" if k > n else f"{rep} — exam {k} of {n}"

    def is_saved(self, exam: str) -> bool:
        """The exam has a label file in this session's labelset."""
        return self._seconds_saved(exam) is not None

    def _seconds_saved(self, exam: str) -> float | None:
        row = self.ws.con.execute(
            """SELECT f.seconds_on_task FROM label_files f JOIN exams e ON e.id = f.exam_id
               WHERE f.labelset=? AND e.name=?""",
            (self.labelset, exam),
        ).fetchone()
        return float(row[0]) if row else None

    def time_on_task(self) -> dict[str, dict]:
        """Per exam of the order: active seconds (idle gaps capped, from the annotation
        model's saves and closes) and wall seconds between open and close."""
        out = {e: {"active_s": 0.0, "wall_s": 0.0, "opened": 0} for e in self.order}
        for ev in events(self.ws, ("retest_exam_close", "retest_exam_open"), self.labelset):
            row = out.get(ev["exam"])
            if row is None:
                continue
            if ev["action"] == "retest_exam_open":
                row["opened"] += 1
            else:
                row["active_s"] += float(ev.get("seconds_on_task") or 0.0)
                row["wall_s"] += float(ev.get("wall_seconds") or 0.0)
        return out

    # ---- the sequence -------------------------------------------------------------------

    def _require_current(self, exam: str | None, what: str) -> str:
        if self.ended:
            raise IctviewError(f"study '{self.study.name}': repetition {self.repetition} has ended")
        cur = self.current()
        if cur is None:
            raise IctviewError(f"study '{self.study.name}': every exam of repetition "
                               f"{self.repetition} is done")  # fmt: skip
        if exam is not None and exam != cur:
            raise IctviewError(
                f"study '{self.study.name}': cannot {what} '{exam}': exams come in the session "
                f"order and the current one is '{cur}' ({self.progress_text()})"
            )
        return cur

    def open_exam(self, exam: str | None = None) -> str:
        """Record that the current exam is shown to the rater; returns its name."""
        exam = self._require_current(exam, "open")
        self._opened[exam] = self.clock.now()
        k, n = self.position()
        record_event(self.ws, self.clock, "retest_exam_open", exam,
                     self._detail(position=k, of=n))
        return exam

    def close_exam(self, exam: str, seconds_on_task: float = 0.0) -> None:
        """Record that the exam left the screen, with the model's active seconds."""
        opened = self._opened.pop(exam, None)
        wall = (self.clock.now() - opened).total_seconds() if opened else 0.0
        record_event(self.ws, self.clock, "retest_exam_close", exam,
                     self._detail(seconds_on_task=round(float(seconds_on_task), 3),
                                  wall_seconds=round(wall, 3)))  # fmt: skip

    def mark_done(self, exam: str | None = None) -> str:
        """The rater says the current exam is finished. Without a label file yet, an
        empty one is saved (no hemorrhage): every exam of a finished session has a
        segmentation for the analysis. Returns the exam."""
        exam = self._require_current(exam, "mark done")
        saved = self.is_saved(exam)
        if not saved:
            e = self.ws.exam(exam)
            self.ws.save_labels(self.labelset, exam,
                                np.zeros((e.n_slices, e.rows, e.cols), np.uint8), self.rater)
        record_event(self.ws, self.clock, "retest_exam_done", exam,
                     self._detail(had_labels=saved,
                                  seconds_on_task=self._seconds_saved(exam) or 0.0))
        return exam

    def advance(self) -> str | None:
        """Move to the next exam once the current one is saved or marked done; returns
        the next exam, or None after the last one (the session then ends)."""
        cur = self._require_current(None, "advance")
        if not self.is_saved(cur):
            raise IctviewError(
                f"study '{self.study.name}': '{cur}' is not saved yet: label it, or mark it "
                "done (\"Done, next exam\") if there is nothing to label"
            )
        self.mark_done(cur)
        nxt = self.current()
        if nxt is None:
            self.finish()
        return nxt

    def finish(self) -> None:
        """End the repetition (every exam must be done); starts its successor's washout."""
        if self.ended:
            return
        left = [e for e in self.order if e not in set(self.done_exams())]
        if left:
            raise IctviewError(
                f"study '{self.study.name}': repetition {self.repetition} still has "
                f"{len(left)} exam(s) to do (next: '{left[0]}')"
            )
        now = self.clock.now()
        with transaction(self.ws.con) as con:
            check_clock(con, self.study.name, now, self.ws.root)
            con.execute(
                """UPDATE retest_sessions SET ended_at=? WHERE study_id=? AND repetition=?
                   AND ended_at IS NULL""",
                (iso(now), self.study.id, self.repetition),
            )
        record_event(self.ws, self.clock, "retest_session_end", None,
                     self._detail(exams=len(self.order)))
        self._refresh()


def _check_rater(ws: Workspace, study: RetestStudy, rater: str) -> None:
    """The typed name must be the study's rater (a display name: case-folded, trimmed);
    who may act is decided by the login, not by this name."""
    if not same_rater(rater, study.rater):
        raise IctviewError(
            f"{ws.root}: study '{study.name}' is segmented by rater '{study.rater}', "
            f"not '{(rater or '').strip() or '(no name)'}'"
        )
