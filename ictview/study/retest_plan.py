"""Planning a test-retest study: one rater segments the same exams several times.

A study fixes, once, at planning: the rater, the exam set, the number of
repetitions, the minimum washout between repetitions and a seed. Each repetition
gets its own labelset (`retest-<study>-<k>`, kind 'retest', owned by the rater)
and its own exam order, drawn from the seed and recorded in the catalog
(`retest_sessions.exam_order`), so the orders can be reproduced and audited.
An order differs from every earlier repetition's order (when there are enough
permutations of the exams: with 2 exams and 3 repetitions only from the previous
one), so a rater never meets the exams in the sequence of a session they remember.

Catalog tables (schema v2, v3): `retest_studies`, `retest_sessions` (one row per
repetition, created here with its order; started/ended by retest_session),
`retest_admins` (the study's administrators: OS logins, default the planner's),
and the append-only `audit_log`, written with the injected clock's time and the
OS login as actor.

Identity: who plans, administers and acts is the OS login of the workspace
(`ws.login`); the typed rater name is the display name of the study's labelsets.
The rater's login (`rater_login`) is given at planning or bound when the rater
first opens a session; an administrator can never be the rater. Blinding itself
is decided in ictview/store/read_guard.py.

Clock: every study event is refused when the clock reads earlier than the
study's last audited event (`check_clock`), so moving the clock back cannot
shorten a washout; moving it ahead is visible in the audit times the analysis
lists.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from ictview.errors import IctviewError
from ictview.store import audit
from ictview.store.catalog import transaction
from ictview.store.read_guard import BlindingError
from ictview.store.workspace import ROLES, Workspace, safe_name
from ictview.study.clock import Clock, SystemClock, iso, parse_time

DEFAULT_REPETITIONS = 3
DEFAULT_WASHOUT_DAYS = 7.0
LABELSET_KIND = "retest"
_MAX_DRAWS = 10_000


def repetition_labelset(study: str, repetition: int) -> str:
    return f"retest-{study}-{repetition}"


# ---------------------------------------------------------------------------
# audit (the catalog's append-only log, with the study clock's time)


STUDY_EVENT_PREFIX = "retest_"


def last_event_time(con, study: str) -> datetime | None:
    """The time of the study's last audited event (its timeline: `retest_*` rows)."""
    row = con.execute(
        r"""SELECT MAX(at) FROM audit_log WHERE action LIKE 'retest\_%' ESCAPE '\'
            AND CASE WHEN json_valid(detail) THEN json_extract(detail, '$.study') END = ?""",
        (study,),
    ).fetchone()
    return parse_time(row[0]) if row and row[0] else None


def check_clock(con, study: str, now: datetime, root=None) -> None:
    """Refuse a clock that reads earlier than the study's last audited event."""
    last = last_event_time(con, study)
    if last is not None and now < last:
        raise IctviewError(
            f"{root or 'workspace'}: study '{study}': the clock reads {iso(now)}, earlier than "
            f"the study's last audited event ({iso(last)}); set the system clock right"
        )


def record_event(
    ws: Workspace, clock: Clock, action: str, exam: str | None, detail: dict
) -> None:
    """One audit_log row by the workspace's OS login; detail is JSON (naming the study)
    so the analysis and status can read it back. Refused when the clock went back."""
    now = clock.now()
    with transaction(ws.con) as con:
        if detail.get("study"):
            check_clock(con, detail["study"], now, ws.root)
        audit.append(con, ws.login, action, exam, json.dumps(detail, sort_keys=True),
                     at=iso(now))


def events(ws: Workspace, actions: tuple[str, ...], labelset: str | None = None) -> list[dict]:
    """Audit rows of these actions (oldest first), detail parsed; only one session's
    rows when labelset is given (every study event names its labelset)."""
    marks = ",".join("?" * len(actions))
    rows = ws.con.execute(
        f"SELECT id, at, actor, action, exam, detail FROM audit_log WHERE action IN ({marks}) "
        "ORDER BY id",
        actions,
    ).fetchall()
    out = []
    for r in rows:
        try:
            detail = json.loads(r["detail"]) if r["detail"] else {}
        except ValueError:
            detail = {"text": r["detail"]}
        if not isinstance(detail, dict):
            detail = {"text": detail}
        if labelset is not None and detail.get("labelset") != labelset:
            continue
        out.append({"id": r["id"], "at": r["at"], "actor": r["actor"], "action": r["action"],
                    "exam": r["exam"], **detail})  # fmt: skip
    return out


# ---------------------------------------------------------------------------
# the plan


@dataclass(frozen=True)
class ExamSelection:
    """Which exams a study uses.

    exams: an explicit list (a saved list); else the exams of `role` (all roles when
    None), restricted to those with labels in `labelset` when given (e.g. the
    pixel-labeled test subset: role 'test', labelset 'reference'). sample: then a
    random sample of that many exams, drawn from the study seed.
    """

    role: str | None = None
    exams: tuple[str, ...] | None = None
    labelset: str | None = None
    sample: int | None = None

    def describe(self) -> str:
        if self.exams is not None:
            what = f"{len(self.exams)} listed exams"
        else:
            what = f"role '{self.role}'" if self.role else "all exams"
            if self.labelset:
                what += f" with labels in '{self.labelset}'"
        return f"random {self.sample} of {what}" if self.sample else what

    def resolve(self, ws: Workspace, seed: int) -> list[str]:
        if self.exams is not None:
            names = [str(e).strip() for e in self.exams if str(e).strip()]
            dupes = sorted({e for e in names if names.count(e) > 1})
            if dupes:
                raise IctviewError(f"{ws.root}: exam '{dupes[0]}' listed twice")
            for e in names:
                ws.exam(e)  # raises for an unknown exam
            if self.role:
                wrong = [e for e in names if ws.exam(e).role != self.role]
                if wrong:
                    raise IctviewError(f"{ws.root}: exam '{wrong[0]}' is not in role '{self.role}'")
            pool = sorted(names)
        else:
            if self.role is not None and self.role not in ROLES:
                raise IctviewError(f"role '{self.role}' is not one of {', '.join(ROLES)}")
            pool = [e.name for e in ws.exams(role=self.role)]
        if self.labelset:
            in_set = set(ws.labelset_exams(self.labelset))
            if not in_set:
                raise IctviewError(f"{ws.root}: labelset '{self.labelset}' has no labeled exams")
            pool = [e for e in pool if e in in_set]
        if not pool:
            raise IctviewError(f"{ws.root}: no exams for the study ({self.describe()})")
        if self.sample is not None:
            if self.sample < 1 or self.sample > len(pool):
                raise IctviewError(
                    f"{ws.root}: cannot sample {self.sample} exams from {len(pool)} "
                    f"({self.describe()})"
                )
            rng = np.random.default_rng([seed, 1])  # its own stream: orders do not depend on it
            pool = sorted(pool[i] for i in rng.choice(len(pool), self.sample, replace=False))
        return pool


def session_orders(
    exams: list[str] | tuple[str, ...], repetitions: int, seed: int
) -> list[list[str]]:
    """One exam order per repetition: seeded permutations, each different from the
    earlier ones (from the previous one only when n! leaves too few permutations)."""
    exams = list(exams)
    rng = np.random.default_rng([seed, 2])
    n = len(exams)
    orders: list[list[str]] = []
    for _ in range(repetitions):
        enough = n >= 2 and math.factorial(min(n, 20)) > len(orders)
        avoid = orders if enough else (orders[-1:] if n >= 2 else [])
        for _ in range(_MAX_DRAWS):
            order = [exams[i] for i in rng.permutation(n)]
            if order not in avoid:
                break
        else:  # unreachable for n >= 2: a different permutation always exists
            raise IctviewError(f"study: no new exam order found for {n} exams")
        orders.append(order)
    return orders


@dataclass(frozen=True)
class SessionPlan:
    """One repetition: its labelset, its fixed exam order and what happened to it."""

    study: str
    repetition: int  # 1-based
    labelset: str
    exam_order: tuple[str, ...]
    started_at: datetime | None
    ended_at: datetime | None
    override_reason: str | None
    override_by: str | None

    @property
    def status(self) -> str:
        if self.ended_at is not None:
            return "ended"
        return "in progress" if self.started_at is not None else "planned"

    @property
    def overridden(self) -> bool:
        return bool(self.override_reason)

    def to_dict(self, show_order: bool = False) -> dict:
        """show_order: include the exam order (only for an administrator who asks)."""
        order = {"exam_order": list(self.exam_order)} if show_order else {}
        return {
            "study": self.study, "repetition": self.repetition, "labelset": self.labelset,
            **order, "exams": len(self.exam_order), "status": self.status,
            "started_at": iso(self.started_at) if self.started_at else None,
            "ended_at": iso(self.ended_at) if self.ended_at else None,
            "overridden": self.overridden, "override_reason": self.override_reason,
            "override_by": self.override_by,
        }  # fmt: skip


@dataclass(frozen=True)
class RetestStudy:
    id: int
    name: str
    rater: str
    exams: tuple[str, ...]
    repetitions: int
    washout_days: float
    seed: int
    created_at: datetime
    created_by: str
    sessions: tuple[SessionPlan, ...]
    admins: frozenset[str] = frozenset()  # OS logins
    rater_login: str | None = None  # None until known
    closed_at: datetime | None = None  # aborted / unblinded before the end
    closed_how: str | None = None
    closed_by: str | None = None

    @property
    def finished(self) -> bool:
        """Blinding is over: every repetition ended, or the study was closed."""
        return self.closed_at is not None or all(s.ended_at is not None for s in self.sessions)

    @property
    def washout(self) -> timedelta:
        return timedelta(days=self.washout_days)

    def session(self, repetition: int) -> SessionPlan:
        for s in self.sessions:
            if s.repetition == repetition:
                return s
        raise IctviewError(f"study '{self.name}': no repetition {repetition}")

    @property
    def labelsets(self) -> list[str]:
        return [s.labelset for s in self.sessions]

    def to_dict(self, show_orders: bool = False) -> dict:
        return {
            "name": self.name, "rater": self.rater, "rater_login": self.rater_login,
            "admins": sorted(self.admins), "exams": list(self.exams),
            "repetitions": self.repetitions, "washout_days": self.washout_days, "seed": self.seed,
            "created_at": iso(self.created_at), "created_by": self.created_by,
            "closed_at": iso(self.closed_at) if self.closed_at else None,
            "closed_how": self.closed_how, "closed_by": self.closed_by,
            "sessions": [s.to_dict(show_orders) for s in self.sessions],
        }  # fmt: skip


def plan_study(
    ws: Workspace,
    name: str,
    rater: str,
    selection: ExamSelection,
    *,
    repetitions: int = DEFAULT_REPETITIONS,
    washout_days: float = DEFAULT_WASHOUT_DAYS,
    seed: int | None = None,
    admins: tuple[str, ...] | list[str] | None = None,
    rater_login: str | None = None,
    clock: Clock | None = None,
) -> RetestStudy:
    """Create the study, its labelsets and every repetition's exam order (one transaction).

    The planner is the workspace's OS login (`ws.login`); `admins` (OS logins) default
    to the planner. `rater_login`: the rater's OS login when known now (else bound
    when the rater opens their first session); it can never be an administrator.
    """
    clock = clock or SystemClock()
    rater = (rater or "").strip()
    if not rater:
        raise IctviewError(f"{ws.root}: a test-retest study needs a rater")
    admin_set = sorted({a.strip() for a in (admins or [ws.login]) if a and a.strip()})
    if not admin_set:
        raise IctviewError(f"study '{name}': needs at least one administrator login (--admins)")
    rater_login = (rater_login or "").strip() or None
    if rater_login is not None and rater_login in admin_set:
        raise IctviewError(
            f"study '{name}': the rater's login '{rater_login}' cannot be an administrator "
            "(administrators see every repetition); name other logins with --admins"
        )
    if not name or safe_name(name) != name:
        raise IctviewError(f"study name '{name}' may only use letters, digits, '.', '_', '-'")
    if repetitions < 2:
        raise IctviewError(f"study '{name}': needs at least 2 repetitions, got {repetitions}")
    if not (washout_days >= 0 and math.isfinite(washout_days)):
        raise IctviewError(f"study '{name}': washout must be >= 0 days, got {washout_days}")
    if ws.con.execute("SELECT 1 FROM retest_studies WHERE name=?", (name,)).fetchone():
        raise IctviewError(f"{ws.root}: a test-retest study named '{name}' already exists")
    labelsets = [repetition_labelset(name, k) for k in range(1, repetitions + 1)]
    existing = ws.labelset_names()
    taken = [ls for ls in labelsets if ls in existing]
    if taken:
        raise IctviewError(
            f"{ws.root}: labelset '{taken[0]}' already exists; choose another study name"
        )
    if seed is None:
        seed = secrets.randbits(31)  # recorded, so the plan stays reproducible
    exams = selection.resolve(ws, seed)
    orders = session_orders(exams, repetitions, seed)
    by = ws.login
    now = iso(clock.now())
    with transaction(ws.con) as con:
        con.execute("INSERT OR IGNORE INTO raters(name, created_at) VALUES (?,?)", (rater, now))
        cur = con.execute(
            """INSERT INTO retest_studies(name, rater, exams, repetitions, washout_days, seed,
               created_at, created_by, rater_login) VALUES (?,?,?,?,?,?,?,?,?)""",
            (name, rater, json.dumps(exams), repetitions, float(washout_days), int(seed), now, by,
             rater_login),
        )
        study_id = cur.lastrowid
        con.executemany("INSERT INTO retest_admins(study_id, login) VALUES (?,?)",
                        [(study_id, a) for a in admin_set])
        for k, (ls, order) in enumerate(zip(labelsets, orders), start=1):
            con.execute(
                """INSERT INTO labelsets(name, kind, rater, description, created_at)
                   VALUES (?,?,?,?,?)""",
                (ls, LABELSET_KIND, rater, f"test-retest study '{name}', repetition {k}", now),
            )
            con.execute(
                """INSERT INTO retest_sessions(study_id, repetition, labelset, exam_order)
                   VALUES (?,?,?,?)""",
                (study_id, k, ls, json.dumps(order)),
            )
        audit.append(con, by, "retest_plan", None, json.dumps({
            "study": name, "rater": rater, "exams": len(exams), "selection":
            selection.describe(), "repetitions": repetitions, "washout_days": washout_days,
            "seed": int(seed), "admins": admin_set, "rater_login": rater_login},
            sort_keys=True), at=now)  # fmt: skip
    return load_study(ws, name)


def _time(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


def load_study(ws: Workspace, name: str) -> RetestStudy:
    row = ws.con.execute("SELECT * FROM retest_studies WHERE name=?", (name,)).fetchone()
    if row is None:
        known = ", ".join(study_names(ws)) or "none"
        raise IctviewError(f"{ws.root}: no test-retest study named '{name}' (studies: {known})")
    sessions = tuple(
        SessionPlan(
            study=name, repetition=s["repetition"], labelset=s["labelset"],
            exam_order=tuple(json.loads(s["exam_order"])), started_at=_time(s["started_at"]),
            ended_at=_time(s["ended_at"]), override_reason=s["override_reason"],
            override_by=s["override_by"],
        )
        for s in ws.con.execute(
            "SELECT * FROM retest_sessions WHERE study_id=? ORDER BY repetition", (row["id"],)
        )
    )  # fmt: skip
    admins = frozenset(r[0] for r in ws.con.execute(
        "SELECT login FROM retest_admins WHERE study_id=?", (row["id"],)))
    return RetestStudy(
        id=row["id"], name=row["name"], rater=row["rater"], exams=tuple(json.loads(row["exams"])),
        repetitions=row["repetitions"], washout_days=float(row["washout_days"]), seed=row["seed"],
        created_at=parse_time(row["created_at"]), created_by=row["created_by"], sessions=sessions,
        admins=admins, rater_login=row["rater_login"], closed_at=_time(row["closed_at"]),
        closed_how=row["closed_how"], closed_by=row["closed_by"],
    )  # fmt: skip


def study_names(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.con.execute("SELECT name FROM retest_studies ORDER BY name")]


def study_of_labelset(ws: Workspace, labelset: str) -> tuple[str, int] | None:
    """(study, repetition) of a session's labelset, None for other labelsets."""
    row = ws.con.execute(
        """SELECT st.name, se.repetition FROM retest_sessions se
           JOIN retest_studies st ON st.id = se.study_id WHERE se.labelset=?""",
        (labelset,),
    ).fetchone()
    return (row[0], row[1]) if row else None


# ---------------------------------------------------------------------------
# administrator actions on a study: closing it early


def close_study(ws: Workspace, name: str, how: str, reason: str, *, clock: Clock | None = None
                ) -> RetestStudy:
    """Abort the study or unblind it before its last repetition ended (administrators
    only; audited with the reason). Either way the blinding is lifted; an aborted
    study starts no further repetition."""
    clock = clock or SystemClock()
    if how not in ("aborted", "unblinded"):
        raise IctviewError(f"study '{name}': cannot close it as '{how}'")
    what = "aborting" if how == "aborted" else "unblinding"
    ws.guard.require_admin(name, what)
    if not (reason or "").strip():
        raise IctviewError(f"study '{name}': {what} needs a typed reason (it was empty)")
    st = load_study(ws, name)
    if st.finished:
        raise IctviewError(f"study '{name}': already finished; nothing to {how[:-2]}")
    now = clock.now()
    with transaction(ws.con) as con:
        check_clock(con, name, now, ws.root)
        con.execute("UPDATE retest_studies SET closed_at=?, closed_how=?, closed_by=? WHERE id=?",
                    (iso(now), how, ws.login, st.id))
    record_event(ws, clock, f"retest_{'abort' if how == 'aborted' else 'unblind'}", None,
                 {"study": name, "reason": reason.strip()})
    return load_study(ws, name)


def bind_rater_login(ws: Workspace, study: RetestStudy) -> None:
    """The rater opens a session: the login must not administer the study, and must be
    the rater's login (recorded now when not known yet)."""
    if ws.login in study.admins:
        raise BlindingError(
            f"{ws.root}: login '{ws.login}' administers test-retest study '{study.name}' and "
            "sees every repetition: the rater's session must run under the rater's own login"
        )
    if study.rater_login is None:
        with transaction(ws.con) as con:
            con.execute("UPDATE retest_studies SET rater_login=? WHERE id=? AND rater_login IS NULL",
                        (ws.login, study.id))
            bound = con.execute("SELECT rater_login FROM retest_studies WHERE id=?",
                                (study.id,)).fetchone()[0]
    else:
        bound = study.rater_login
    if bound != ws.login:
        raise BlindingError(
            f"{ws.root}: test-retest study '{study.name}' is segmented under login '{bound}', "
            f"not '{ws.login}'"
        )
