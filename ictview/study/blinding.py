"""The session window's narrower view: what a running test-retest session may load.

The data layer's read guard (ictview/store/read_guard.py) is where blinding is
decided for every reader of the workspace, the session included: whatever this
module allows still goes through it. On top of it, the session view shows only
the session's current exam, in session order.

The paper's rater segmented each repetition "without review of prior
segmentations". In a session the app therefore shows the CT of the session's
current exam and the session's own labelset, nothing else: not the rater's other
repetitions, not other raters' labelsets (reference included), not model
predictions. The session view gets every array through a `BlindingGuard`; the
guard raises `BlindingError` on anything else, audits the refusal, and records
every load (allowed or refused), so tests and auditors can check what was shown.

Policy (`BlindingPolicy.allows`):
- "volume" (the CT) of the session's current exam;
- "labels" / "model" (an AnnotationModel for editing) of the current exam in the
  session's own labelset, opened without `start_from` (no copying another labelset in);
- nothing of kind "prediction", ever; no other exam, no other labelset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ictview.store.read_guard import BlindingError
from ictview.study.clock import Clock, SystemClock, iso
from ictview.study.retest_plan import record_event

if TYPE_CHECKING:
    import numpy as np

    from ictview.core.annotation import AnnotationModel
    from ictview.store.arrays import StoredVolume
    from ictview.study.retest_session import RetestSession

KINDS = ("volume", "labels", "model", "prediction")


__all__ = ["Access", "BlindingError", "BlindingGuard", "BlindingPolicy", "KINDS"]


@dataclass(frozen=True)
class Access:
    at: datetime
    kind: str  # one of KINDS
    exam: str
    labelset: str | None = None  # labels / model
    run: str | None = None  # prediction
    allowed: bool = True
    reason: str = ""

    def to_dict(self) -> dict:
        return {"at": iso(self.at), "kind": self.kind, "exam": self.exam,
                "labelset": self.labelset, "run": self.run, "allowed": self.allowed,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class BlindingPolicy:
    """The session's facts the policy needs: its labelset and its current exam."""

    labelset: str
    current_exam: str | None

    def why_not(self, kind: str, exam: str, labelset: str | None = None) -> str:
        """'' when allowed, else the reason."""
        if kind not in KINDS:
            return f"unknown kind of data '{kind}'"
        if kind == "prediction":
            return "model predictions are hidden during a test-retest session"
        if self.current_exam is None:
            return "the session has no current exam"
        if exam != self.current_exam:
            return (f"exam '{exam}' is not the session's current exam "
                    f"('{self.current_exam}'): exams come in the session order")  # fmt: skip
        if kind in ("labels", "model") and labelset != self.labelset:
            return (f"labelset '{labelset}' is hidden: this session sees only its own "
                    f"labelset '{self.labelset}'")  # fmt: skip
        return ""

    def allows(self, kind: str, exam: str, labelset: str | None = None) -> bool:
        return not self.why_not(kind, exam, labelset)


@dataclass
class BlindingGuard:
    """The only way a session view gets data from the workspace (see the module doc)."""

    session: "RetestSession"
    clock: Clock = field(default_factory=SystemClock)
    audit: bool = True  # refusals go to the audit log
    accesses: list[Access] = field(default_factory=list)

    @property
    def policy(self) -> BlindingPolicy:
        return BlindingPolicy(self.session.labelset, self.session.current())

    @property
    def labelset(self) -> str:
        return self.session.labelset

    def visible_labelsets(self) -> list[str]:
        """What a labelset chooser may offer: the session's own labelset only."""
        return [self.session.labelset]

    @property
    def loaded(self) -> list[Access]:
        return [a for a in self.accesses if a.allowed]

    @property
    def refused(self) -> list[Access]:
        return [a for a in self.accesses if not a.allowed]

    def check(self, kind: str, exam: str, labelset: str | None = None, run: str | None = None
              ) -> None:
        """Record the access; raise BlindingError (and audit it) when the policy forbids it."""
        why = self.policy.why_not(kind, exam, labelset)
        self.accesses.append(Access(self.clock.now(), kind, exam, labelset, run, not why, why))
        if not why:
            return
        if self.audit:
            s = self.session
            record_event(s.ws, self.clock, "retest_blinding_refused", exam, {
                "study": s.study.name, "repetition": s.repetition, "labelset": s.labelset,
                "kind": kind, "requested_labelset": labelset, "run": run,
                "reason": why})  # fmt: skip
        raise BlindingError(f"study '{self.session.study.name}': {why}")

    # ---- loads --------------------------------------------------------------------------

    def load_volume(self, exam: str) -> "StoredVolume":
        self.check("volume", exam)
        return self.session.ws.read_volume(exam)

    def load_labels(self, labelset: str, exam: str) -> "np.ndarray | None":
        self.check("labels", exam, labelset)
        return self.session.ws.load_labels(labelset, exam)

    def load_prediction(self, run: str, exam: str) -> None:
        self.check("prediction", exam, run=run)  # always raises

    def open_model(self, exam: str, *, preview: bool = False) -> "AnnotationModel":
        """The current exam in the session's labelset, for editing (journal + autosave).

        preview=True: an in-memory model of the same data that saves nothing
        (screenshots); the same policy applies.
        """
        from ictview.core.annotation import AnnotationModel

        s = self.session
        self.check("model", exam, s.labelset)
        if preview:
            e = s.ws.exam(exam)
            vol = s.ws.read_volume(exam)
            labels = s.ws.load_labels(s.labelset, exam)
            return AnnotationModel(vol.hu, labels, e.spacing, exam=exam, labelset=s.labelset,
                                   rater=s.rater, geometry=vol.geometry)  # fmt: skip
        # start_from stays None: nothing of another labelset is copied in
        return AnnotationModel.open(s.ws, exam, s.labelset, s.rater)
