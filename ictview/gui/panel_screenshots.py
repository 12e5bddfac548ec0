"""Offscreen screenshots of the training / review panels (`ictview open WS --view NAME
--screenshot PNG`): each panel opened on the workspace with sensible defaults (the latest
runs, an exam that shows found, missed and false-positive blood), rendered at 1600x1000.
Nothing is written to the workspace (no marks, no choices, no runs started)."""

from __future__ import annotations

import sys
from pathlib import Path

from ictview.errors import IctviewError

VIEWS = ("training", "ranker", "review", "compare", "dashboard")


def render_panel(workspace: Path, view: str, out_png: Path, *, run: str | None = None,
                 exam: str | None = None, settings: Path | None = None) -> int:
    """Render one panel to PNG; 0 on success, 2 with a one-line reason on stderr."""
    from ictview.gui.app import use_offscreen_platform

    use_offscreen_platform()
    from ictview.gui.app import ensure_app
    from ictview.gui.screenshot import dispose, grab_png

    from ictview.gui.launch import load_preferences

    app = ensure_app()
    load_preferences(settings)  # the review palette, label colours, presets
    panel = None
    try:
        if view not in VIEWS:
            raise IctviewError(f"--view {view}: one of {', '.join(VIEWS)}")
        workspace = Path(workspace)
        if not workspace.is_dir():
            raise IctviewError(f"{workspace}: workspace folder not found")
        panel = _build(view, workspace, run, exam)
        return grab_png(app, panel, out_png, lambda: _settle(view, panel))
    except IctviewError as e:
        print(f"ictview: {e}", file=sys.stderr)
        return 2
    finally:
        dispose(panel)


def _build(view: str, ws: Path, run: str | None, exam: str | None):
    from ictview.gui.launch import DEMO_RATER, stored_rater
    from ictview.gui.shell.panel_windows import make_panel

    # built as the app's window builds it; then only the run / exam the command line names
    rater = stored_rater() or DEMO_RATER
    if view == "training":
        p = make_panel(view, ws, rater, headless=True)
        names = [r["name"] for r in p._runs]
        pick = run or next((n for n in ("ss", "baseline") if n in names), names[-1] if names else "")
        if pick and p.select_run(pick):
            p.show_history(pick)
        return p
    if view == "ranker":
        p = make_panel(view, ws, rater, headless=True)
        if run:
            p.run_combo.setCurrentText(run)
        return p
    if view == "review":
        p = make_panel(view, ws, rater, headless=True)
        runs = [p.run_combo.itemText(i) for i in range(p.run_combo.count())]
        if not runs:
            raise IctviewError(f"{ws}: no run has predictions to review")
        p.set_run(run if run in runs else p.run)  # else the review's own default (the student)
        p.set_opacity(0.8)
        target = exam or _interesting_exam(p)
        if target:
            p.open_exam(target)
        return p
    if view == "compare":
        p = make_panel(view, ws, rater, headless=True)
        if not p.combo_a.count():
            raise IctviewError(f"{ws}: no run has predictions to compare")
        target = exam or _differing_exam(p)
        if target:
            p.open_exam(target)
        return p
    p = make_panel(view, ws, rater, headless=True)
    if run:
        p.set_runs(run.split(","))
    if p.selected_runs():
        p.compute()
    return p


def _interesting_exam(p) -> str | None:
    """A pixel-labeled exam whose review shows found blood and at least one error."""
    import numpy as np

    from ictview.core import overlay as ov
    from ictview.study import run_review as rv

    best, best_key = None, None
    for r in p.rows:
        if not r.pixel_reference or r.role not in ("test", "validation"):
            continue
        ref = rv.reference_mask(p.ws, r.exam)
        if ref is None or not ref.any():
            continue
        pred = rv.load_probability(p.ws, p.run, r.exam) >= np.float16(0.5)
        kinds = [g.kind for g in ov.error_regions(ref, pred)]
        key = (ov.TP in kinds, (ov.FP in kinds) + (ov.FN in kinds), r.role == "test")
        if best_key is None or key > best_key:
            best, best_key = r.exam, key
    return best


def _differing_exam(p) -> str | None:
    """A pixel-labeled exam with blood where the two runs find different lesions (else the
    one where their exam scores differ most)."""
    import numpy as np

    from ictview.study import run_review as rv

    best, best_key = None, None
    for r in p.rows:
        if not r.pixel_reference:
            continue
        ref = rv.reference_mask(p.ws, r.exam)
        if ref is None or not ref.any():
            continue
        a = rv.load_probability(p.ws, p.run_a, r.exam) >= np.float16(0.5)
        b = rv.load_probability(p.ws, p.run_b, r.exam) >= np.float16(0.5)
        key = (abs(rv.dice(ref, a) - rv.dice(ref, b)), r.disagreement(p.run_a, p.run_b))
        if best_key is None or key > best_key:
            best, best_key = r.exam, key
    if best is None and p.rows:
        best = max(p.rows, key=lambda r: r.disagreement(p.run_a, p.run_b)).exam
    return best


def _best_slice(layer) -> int:
    """The slice showing the most kinds of overlay colour, then the most coloured pixels."""
    import numpy as np

    codes = layer.codes
    best, best_key = 0, None
    for z in range(codes.shape[0]):
        counts = np.bincount(codes[z].ravel(), minlength=4)[1:4]
        key = (int((counts > 0).sum()), int(counts.sum()))
        if best_key is None or key > best_key:
            best, best_key = z, key
    return best


def _zoom_on_head(view, factor: float = 1.3) -> None:
    """Fit, then zoom in around the head on the current slice (less black around it)."""
    import numpy as np
    from PySide6 import QtCore

    view.fit()
    head = view.hu[view.z] > -300
    if not head.any():
        return
    rows, cols = np.nonzero(head)
    cy = (rows.min() + rows.max() + 1) / 2 * view._y_scale
    cx = (cols.min() + cols.max() + 1) / 2
    view.vb.translateBy(QtCore.QPointF(cx, cy) - view.vb.viewRect().center())
    view.zoom(factor, QtCore.QPointF(cx, cy))


def _settle(view: str, p) -> None:
    if view in ("ranker", "dashboard"):
        p.wait()
    elif view == "review":
        p.view.set_slice(_best_slice(p.layer))
        _zoom_on_head(p.view)
    elif view == "compare":
        _zoom_on_head(p.view_a)  # B follows
