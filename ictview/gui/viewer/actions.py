"""Menus, shortcuts and handlers of the viewer (layouts, crosshair, measurements, tags)
for a window that has `viewer` (MprViewer), `_action`, `actions_by_key`, `model`, `ws`."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from ictview.gui.viewer.mpr_viewer import LAYOUT_TEXT, LAYOUTS

VIEW_TOOL_ACTIONS = (
    ("crosshair", "&Crosshair (set the linked point)", "N",
     "Click or drag sets the point shown in all three views (Ctrl+drag works with any tool)"),
    ("ruler", "&Ruler", "R", "Drag to measure a distance in mm"),
    ("ellipse", "&Ellipse ROI", "Q", "Drag a box: HU mean / sd / min / max and area"),
    ("freehand", "&Freehand ROI", "W", "Draw an outline: HU mean / sd / min / max and area"),
)


def install_viewer_actions(win) -> None:
    v = win.viewer
    A = win._action
    layouts = QtGui.QActionGroup(win)
    for name in LAYOUTS:
        a = A(f"layout_{name}", LAYOUT_TEXT[name], lambda _=False, n=name: v.set_layout(n),
              checkable=True)
        layouts.addAction(a)
    A("layout_toggle", "Toggle axial / MPR", v.toggle_mpr, "M")
    A("layout_grid", "Toggle MPR 1 × 3 / 2 × 2", v.toggle_grid, "Shift+M")
    win.actions_by_key["layout_axial"].setChecked(True)
    v.layout_changed.connect(lambda n: win.actions_by_key[f"layout_{n}"].setChecked(True))
    exam_list = getattr(win, "exam_list", None)
    if exam_list is not None:
        # the MPR views need the width: the exam list steps aside (Ctrl+L brings it back)
        a = A("exam_list", "Exam &list", exam_list.setVisible, "Ctrl+L", checkable=True,
              tip="Show the exam list (hidden while an MPR layout is on) [Ctrl+L]")
        a.setChecked(True)

        def layout_changed(name: str) -> None:
            exam_list.setVisible(name == "axial")
            a.setChecked(name == "axial")

        v.layout_changed.connect(layout_changed)

    tools = QtGui.QActionGroup(win)
    tools.setExclusionPolicy(QtGui.QActionGroup.ExclusionPolicy.ExclusiveOptional)
    for name, text, key, tip in VIEW_TOOL_ACTIONS:
        a = A(f"view_{name}", text, lambda on, n=name: v.set_view_tool(n if on else None), key,
              checkable=True, tip=f"{tip} [{key}]")
        tools.addAction(a)

    def annotation_tool_chosen(*_):
        for name, *_rest in VIEW_TOOL_ACTIONS:
            win.actions_by_key[f"view_{name}"].setChecked(False)
        v.set_view_tool(None)

    for key, a in list(win.actions_by_key.items()):
        if key.startswith("tool_"):
            a.triggered.connect(annotation_tool_chosen)
    win.tool_panel.tool_group.idClicked.connect(annotation_tool_chosen)
    A("clear_measurements", "Clear &measurements", v.clear_measurements, "Delete")
    A("dicom_tags", "DICOM &tags of this slice…", lambda: open_tag_browser(win), "Ctrl+D")
    A("interpolate", "Fill &between slices", lambda: fill_between_slices(win), "Ctrl+I",
      tip="Interpolate the current class across empty slices between labeled ones")
    win.tool_panel.interpolate_requested.connect(lambda: fill_between_slices(win))
    A("fill_holes_slice", "Fill &holes in this slice", lambda: win.fill_holes(False),
      tip="Fill the unlabeled pixels the current class encloses on the axial slice shown")
    A("fill_holes_3d", "Fill holes on every slice (&3D)", lambda: win.fill_holes(True),
      tip="Fill the unlabeled pixels the current class encloses, on every slice")

    mb = win.menuBar()
    after = _menu_after(mb, "&View")
    lm = QtWidgets.QMenu("&Layout", win)
    for name in LAYOUTS:
        lm.addAction(win.actions_by_key[f"layout_{name}"])
    lm.addSeparator()
    lm.addAction(win.actions_by_key["layout_toggle"])
    lm.addAction(win.actions_by_key["layout_grid"])
    if "exam_list" in win.actions_by_key:
        lm.addSeparator()
        lm.addAction(win.actions_by_key["exam_list"])
    mm = QtWidgets.QMenu("&Measure", win)
    for name, *_ in VIEW_TOOL_ACTIONS:
        mm.addAction(win.actions_by_key[f"view_{name}"])
    mm.addSeparator()
    mm.addAction(win.actions_by_key["clear_measurements"])
    mm.addSeparator()
    mm.addAction(win.actions_by_key["dicom_tags"])
    for menu in (lm, mm):
        if after is not None:
            mb.insertMenu(after, menu)
        else:
            mb.addMenu(menu)
    edit = _menu(mb, "&Edit")
    if edit is not None:
        edit.addSeparator()
        edit.addAction(win.actions_by_key["interpolate"])
        edit.addAction(win.actions_by_key["fill_holes_slice"])
        edit.addAction(win.actions_by_key["fill_holes_3d"])


def _menu(mb: QtWidgets.QMenuBar, title: str) -> QtWidgets.QMenu | None:
    for a in mb.actions():
        if a.text() == title:
            return a.menu()
    return None


def _menu_after(mb: QtWidgets.QMenuBar, title: str) -> QtGui.QAction | None:
    acts = mb.actions()
    for i, a in enumerate(acts):
        if a.text() == title and i + 1 < len(acts):
            return acts[i + 1]
    return None


def fill_between_slices(win) -> None:
    m = win.model
    if m is None or m.read_only:
        return
    step = m.fill_between_slices()
    code = m.class_name(m.label_value)
    if step is None:
        win.status.showMessage(
            f"Fill between slices: {code} has no gap between two labeled slices", 6000)
        return
    n = sum(d.n_changed for d in step.diffs)
    slices = sorted({d.z for d in step.diffs})
    win.status.showMessage(
        f"Filled {code} on {len(slices)} slice(s) between labeled ones: {n:,} voxels "
        f"({n * m.voxel_ml:.2f} mL); Ctrl+Z undoes it", 8000)


def open_tag_browser(win):
    """The tag browser of the axial slice shown (returned; modeless)."""
    from ictview.gui.viewer.tag_browser import TagBrowser

    if win.ws is None or win.model is None:
        return None
    dlg = TagBrowser(win, win.ws.root, win.model.exam, win.slice_view.z)
    if getattr(win, "headless", False):
        return dlg
    dlg.show()
    return dlg
