"""Metrics dashboard and the offscreen panel screenshots, on predictions written into a
copy of the tiny workspace (see panels_support)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .panels_support import REPO, add_runs, wait_until


@pytest.fixture
def review_ws(tiny_workspace_copy):
    add_runs(tiny_workspace_copy)
    return tiny_workspace_copy


def test_dashboard_curves_table1_and_export(qtbot, review_ws, tmp_path):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.dashboard import Dashboard

    ensure_app()
    d = Dashboard(review_ws, headless=True)
    qtbot.addWidget(d)
    assert d.selected_runs() == ["baseline", "ss"]
    d.n_boot.setValue(20)
    with qtbot.waitSignal(d.computed, timeout=120_000):
        assert d.compute()
    assert [d.table1.item(i, 0).text() for i in range(d.table1.rowCount())] == ["baseline", "ss"]
    doc = d.report.doc
    auc = doc["tables"]["table1"]["rows"][1]["auc"]
    text = d.table1.item(1, 4).text()
    assert text.startswith(f"{auc['value']:.3f}") and "[" in text  # estimate with its CI
    metrics = [d.cmp.item(i, 1).text() for i in range(d.cmp.rowCount())]
    assert metrics == ["Dice (subset)", "Dice @ 0.5 (subset)", "Pixel AP (subset)", "Exam AUC"]
    fixed = doc["tables"]["table1"]["rows"][1]["dice_fixed"]
    assert d.table1.item(1, 2).text().startswith(f"{fixed['value']:.3f}")
    assert d.cmp.item(0, 0).text() == "ss − baseline" and d.cmp.item(0, 4).text() != ""
    roc = [i for i in d.roc_plot.listDataItems() if i.name()]
    pr = [i for i in d.pr_plot.listDataItems() if i.name()]
    assert [i.name().split()[0] for i in roc] == ["baseline", "ss"]
    assert [i.name().split()[0] for i in pr] == ["baseline", "ss"] and "AP" in pr[0].name()
    x, y = roc[0].getData()
    assert x[0] == 0 and y[-1] == 1

    out = tmp_path / "report"
    with qtbot.waitSignal(d.exported, timeout=120_000) as sig:
        assert d.export(out)
    files = sig.args[0]
    assert {"json", "markdown", "html"} <= set(files)
    saved = json.loads((out / "report.json").read_text())
    assert saved["tables"]["table1"]["rows"][1]["auc"] == auc  # the numbers shown
    assert "report.md" in d.status.text()
    d.shutdown()


def test_each_panel_renders_offscreen(review_ws, tmp_path):
    """`render_panel` for every view, in a fresh process as `ictview open --view` runs it."""
    code = (
        "import sys; from ictview.gui.panel_screenshots import render_panel, VIEWS; "
        f"rc = [render_panel({str(review_ws)!r}, v, {str(tmp_path)!r} + f'/{{v}}.png') "
        "for v in VIEWS]; "
        "bad = [m for m in ('torch', 'training') if m in sys.modules]; "
        "from PySide6 import QtCore; QtCore.qWarning('an ordinary Qt warning'); "
        "print(rc, bad); sys.exit(0 if rc == [0] * len(VIEWS) and not bad else 1)"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=False, env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    # the offscreen plugin's propagateSizeHints() notice is silenced, other warnings are not
    assert "propagateSizeHints" not in res.stderr and "an ordinary Qt warning" in res.stderr
    from PySide6 import QtGui

    for v in ("training", "ranker", "review", "compare", "dashboard"):
        img = QtGui.QImage(str(tmp_path / f"{v}.png"))
        assert (img.width(), img.height()) == (1600, 1000), v


def test_render_panel_bad_input_is_one_line(tmp_path, capsys):
    from ictview.gui.panel_screenshots import render_panel

    assert render_panel(tmp_path / "missing", "review", tmp_path / "x.png") == 2
    assert render_panel(tmp_path, "nope", tmp_path / "x.png") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "missing" in err[0] and "--view nope" in err[1]
    assert not (tmp_path / "x.png").exists()


def test_review_and_compare_of_a_workspace_without_runs_are_one_line(tiny_workspace_copy,
                                                                     tmp_path, capsys):
    from ictview.gui.panel_screenshots import render_panel

    for view in ("review", "compare"):
        assert render_panel(tiny_workspace_copy, view, tmp_path / f"{view}.png") == 2
        assert not (tmp_path / f"{view}.png").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("no run has predictions" in line for line in err), err


def test_main_window_menus_open_the_panels(window, qtbot):
    """The Training and Review menus open each panel once, on the open workspace."""
    add_runs(window.ws.root)
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&Training" in titles and "Re&view" in titles
    for key in ("training", "ranker", "review", "compare", "dashboard"):
        window.panels.actions[key].trigger()
        w = window.panels.windows[key]
        assert w.isVisible() and w.panel.ws_root == window.ws.root
        window.panels.actions[key].trigger()  # a second time: the same window
        assert window.panels.windows[key] is w
    review = window.panels.windows["review"].panel
    wait_until(lambda: review.run in ("baseline", "ss"))
    window.panels.shutdown()
    assert not window.panels.windows


def _box_pixels(img, rect, bg) -> int:
    """Pixels clearly brighter than the row's background in the check-box column."""
    n = 0
    for x in range(rect.left(), rect.left() + 20):
        for y in range(rect.top(), rect.bottom() + 1):
            if img.pixelColor(x, y).lightness() > bg.lightness() + 40:
                n += 1
    return n


def test_every_run_shows_its_check_box_ticked_or_not(qtbot, tiny_workspace_copy):
    """Four runs: two ticked by default, two not; each row's box is drawn (offscreen, Fusion)."""
    from PySide6 import QtCore, QtWidgets

    from ictview.gui.app import ensure_app
    from ictview.gui.review.dashboard import Dashboard

    add_runs(tiny_workspace_copy, (("baseline", "teacher", 0.9), ("ss", "student", 0.95),
                                   ("nr", "no-ranker", 0.9), ("po", "pixel-oracle", 0.97)))
    app = ensure_app()
    assert QtWidgets.QApplication.platformName() == "offscreen"
    app.setStyle("Fusion")  # what ensure_app set; the app's stylesheet wraps it
    d = Dashboard(tiny_workspace_copy, headless=True)
    qtbot.addWidget(d)
    d.resize(1200, 800)
    d.show()
    qtbot.waitExposed(d)
    lw = d.run_list
    states = [lw.item(i).checkState() for i in range(lw.count())]
    assert states.count(QtCore.Qt.CheckState.Unchecked) == 2 and len(states) == 4
    lw.clearSelection()
    lw.setCurrentRow(-1)
    app.processEvents()
    img = lw.viewport().grab().toImage()
    for i in range(lw.count()):
        rect = lw.visualItemRect(lw.item(i))
        bg = img.pixelColor(rect.right() - 2, rect.center().y())
        assert _box_pixels(img, rect, bg) >= 20, (lw.item(i).text(), states[i])
    d.shutdown()
