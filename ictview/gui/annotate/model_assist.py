"""Model-assisted labeling in the main window (issue 16): "Start from: Model: RUN",
one click per proposal component (Fill tool) gives it the current class, K cycles the
class, and "Next exam" (N in the exam list, Labels menu) opens the exam the
active-learning queue serves (ictview/study/active_learning.py)."""

from __future__ import annotations

from ictview.errors import IctviewError

MODEL_PREFIX = "Model: "
QUEUE_STRATEGY = "uncertainty"


def model_runs(ws) -> list[str]:
    """Runs with predictions this login may read, newest first (the 'Start from' list)."""
    return [r["name"] for r in reversed(ws.runs()) if ws.predicted_exams(r["name"])]


def start_run(start_from: str) -> str | None:
    return start_from[len(MODEL_PREFIX):] if start_from.startswith(MODEL_PREFIX) else None


def queue_run(win) -> str | None:
    """The run that ranks the queue: the 'Start from' model, else the one swapped in by
    Train with my labels, else the newest predicted run."""
    run = start_run(win.start_from) or getattr(win, "assist_run", "")
    if run:
        return run
    runs = model_runs(win.ws) if win.ws is not None else []
    return runs[0] if runs else None


def attach_proposal(model, ws, run: str) -> str:
    """After an editable model opened with 'Start from: Model: RUN': apply the run's
    proposal to an unlabeled exam, or find it again on one started before. Returns a
    status line."""
    from ictview.study.model_start import resume_proposal, start_from_model

    if model.read_only:
        return ""
    p = resume_proposal(model, ws)
    if p is not None:
        return f"Started from {p.run} earlier: click a component (Fill tool) to classify it"
    if model.labels.any():
        return ""  # labeled already: the rater's labels stay as they are
    p = start_from_model(model, ws, run)
    return (f"Proposal of {run}: {p.n} component(s), {p.voxels:,} voxels at p > "
            f"{p.threshold:.2f} ({p.threshold_source}), grey = unclassified. Click a component "
            "to give it the current class; K cycles the class; Ctrl+Z removes the proposal")


def classify_click(win, zyx: tuple[int, int, int]) -> bool:
    """A Fill click on a proposal component classifies it (True: handled)."""
    m = win.model
    if m is None or not m.component_at(*zyx):
        return False
    if m.classify_component(*zyx) is not None:
        win.status.showMessage(f"Component {m.component_at(*zyx)}: "
                               f"{m.class_name(m.label_value)}", 4000)
    return True


def open_next(win) -> str | None:
    """Open the exam the queue serves next for this rater; None (and a message) if none."""
    from ictview.study.active_learning import next_exams

    if win.ws is None:
        return None
    run = queue_run(win)
    if run is None:
        win.report_error("Next exam: no run with predictions to rank the exams")
        return None
    try:
        q = next_exams(win.ws, run, QUEUE_STRATEGY, rater=win.rater or win.ws.login,
                       labelset=win.own_labelset or None, n=2)
    except IctviewError as e:
        win.report_error(str(e))
        return None
    cur = win.model.exam if win.model else None
    served = [s for s in q.served if s.exam != cur]
    if not served:
        win.status.showMessage(f"Next exam: nothing left to label ({run}, {QUEUE_STRATEGY})",
                               6000)
        return None
    s = served[0]
    win.open_exam(s.exam)
    win.status.showMessage(f"Next exam by {QUEUE_STRATEGY} of {run}: {s.exam} "
                           f"(score {s.score:.3f})", 8000)
    return s.exam


def install_assist(win) -> None:
    A = win._action
    A("queue_next", "Next exam to &label (queue)", lambda: open_next(win),
      tip="The exam the active-learning queue serves next [N in the exam list]")
    A("cycle_class", "Cycle label class", lambda: win.model and win.model.cycle_class(), "K")
    win.exam_list.next_requested.connect(lambda: open_next(win))
    from ictview.gui.annotate.train_my_labels import install_my_labels

    install_my_labels(win)
