"""An exam opened on an empty personal labelset while other labelsets already label it
(the imported reference, a colleague's): the view says so and Labels > Start from
existing labels copies them as one undo step, instead of the exam looking unlabeled.

What may be shown is the read guard's decision (ws.labelsets() and ws.load_labels go
through it), so a blinded repetition is never offered."""

from __future__ import annotations

from ictview.errors import IctviewError

PREFERRED = ("reference",)  # offered first when several labelsets label the exam


def labels_elsewhere(ws, exam: str, own: str) -> list[str]:
    """Labelsets other than `own` with saved labels for `exam` this login may read,
    the reference first."""
    names = [r["name"] for r in ws.labelsets() if r["name"] != own and r["exams"]]
    found = [n for n in names if not ws.guard.why_not_labels(n, exam)
             and ws.label_path(n, exam).exists()]
    return sorted(found, key=lambda n: (n not in PREFERRED, n))


def offer(win, model) -> str | None:
    """After an editable exam opened: the labelset to offer, or None. Sets the action's
    text and says it on the image and in the status bar."""
    action = win.actions_by_key["start_existing"]
    action.setEnabled(False)
    win.existing_source = None
    if win.ws is None or model.read_only or model.labels.any() or model.revision:
        return None
    found = labels_elsewhere(win.ws, model.exam, model.labelset)
    if not found:
        return None
    src = found[0]
    win.existing_source = src
    action.setText(f"Start from existing labels ({src})")
    action.setEnabled(True)
    others = f" (also: {', '.join(found[1:])})" if len(found) > 1 else ""
    win.status.showMessage(
        f"{model.exam} has labels in '{src}'{others}; yours are empty. Labels > Start from "
        f"existing labels copies them (one undo step)", 15000)
    tl, tr = win.slice_view.info()
    win.slice_view.set_info(
        tl + f"<br><span style='color:#d9b45a'>labels exist in '{src}': "
             "Labels &gt; Start from existing labels</span>", tr)
    return src


def start_from_existing(win) -> bool:
    m, src = win.model, getattr(win, "existing_source", None)
    if m is None or m.read_only or not src:
        return False
    try:
        labels = win.ws.load_labels(src, m.exam)
    except IctviewError as e:  # blinded since it was offered, or the file became unreadable
        win.report_error(str(e))
        return False
    if labels is None:
        win.report_error(f"{m.exam}: '{src}' no longer has labels for this exam")
        return False
    try:
        stroke = m.copy_labels(labels)
    except ValueError as e:
        win.report_error(f"{win.ws.label_path(src, m.exam)}: {e}")
        return False
    n = sum(d.n_changed for d in stroke.diffs) if stroke else 0
    win.status.showMessage(f"Copied {n:,} labeled voxels from '{src}' (Ctrl+Z undoes)", 8000)
    win.actions_by_key["start_existing"].setEnabled(False)
    win.existing_source = None
    return True


def install_existing_labels(win) -> None:
    win.existing_source = None
    a = win._action("start_existing", "Start from existing labels",
                    lambda: start_from_existing(win), "Ctrl+Shift+L",
                    tip="Copy the labels another labelset (the reference first) has for "
                        "this exam into yours: one undo step")
    a.setEnabled(False)
