"""The desktop app: the only package importing PySide6 / pyqtgraph.

Grouped by job; each view is a thin layer over a Qt-free model in `ictview.core`:
  viewer/    slice views (one plane, the axial / MPR layouts), cursor status bar, exam cache,
             DICOM tag browser
  annotate/  the tool panel, binding an AnnotationModel to the views, model-assisted
             labeling, training with the rater's own labels
  review/    prediction review, compare two runs, the ranker, the metrics dashboard and the
             prediction layer they draw
  training/  the training launcher panel and the demo's background training
  retest/    the blinded test-retest session window
  pacs/      the File > PACS dialog
  shell/     the main window and what only it has: exam list, panel windows, file checks
Beside them, what every part shares: app.py (QApplication set-up, colours, settings),
workers.py, error_hook.py, screenshot.py, panel_widgets.py, and the entry points
launch.py (`ictview open` / `demo`), panel_screenshots.py and bench.py (`ictview bench gui`).
"""
