"""What the two painting windows (main window, test-retest session) share: binding an
AnnotationModel to the SliceView + ToolPanel, and turning view gestures into model calls.

`AnnotationHost` is a mixin for a QMainWindow that has `model`, `slice_view`, `tool_panel`,
`status` (StatusBar), `_bridge` (with a `saved` signal), `_carried`, `headless` and
`last_error`; the host defines `_sync_from_model` and may override `_show_window`.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6 import QtGui, QtWidgets

from ictview.core.annotation import AnnotationModel
from ictview.core.labels import BY_VALUE
from ictview.core.mpr import AXIAL
from ictview.core.volume_paint import RegionTooLarge
from ictview.core.window import WINDOW_PRESETS
from ictview.gui.preferences import label_rgb

# tool/display settings that follow the rater from exam to exam
CARRIED = ("label_value", "tool", "brush_radius_mm", "hu_limited", "hu_range", "protect_others",
           "fill_mode", "opacity", "labels_visible", "window", "hidden_classes", "locked_classes",
           "grow_connectivity", "grow_max_voxels")
VIEW_TOOL = {"brush": "brush", "eraser": "brush", "fill": "fill", "grow": "fill",
             "polygon": "polygon"}
TOOL_READOUT = {"fill": "Flood fill", "polygon": "Polygon"}


def sentence(message: str) -> str:
    """A message as a sentence: the first letter capitalised (reasons from the core start
    lowercase so that they read inside a longer line; a box shows them on their own)."""
    return message[:1].upper() + message[1:]


def preset_of(window: tuple[float, float]) -> str:
    for name, cw in WINDOW_PRESETS.items():
        if tuple(map(float, cw)) == tuple(map(float, window)):
            return name
    return ""


def apply_view_tools(v, m: AnnotationModel) -> None:
    """Overlay style, tool, brush cursor, window and tool readout of one slice view."""
    if (m.fill_mode == "outline") != v.outline_mode:
        v.set_outline_mode(m.fill_mode == "outline")
    if m.opacity != v.opacity:
        v.set_opacity(m.opacity)
    v.label_item.setVisible(m.labels_visible)
    v.set_hidden_classes(m.hidden_classes)
    view_tool = VIEW_TOOL[m.tool]
    if view_tool != v.tool:
        v.set_tool(view_tool)
    c = BY_VALUE[m.label_value]
    v.set_brush(m.brush_radii_px, QtGui.QColor(*label_rgb(c.value)), m.tool == "eraser")
    center, width = m.window
    if (center, width) != (v.center, v.width):
        v.set_window(center, width, preset_of(m.window))
    radius = f"{m.brush_radius_mm:.1f} mm"
    tool = {"brush": f"Brush {radius}", "eraser": f"Eraser {radius}",
            "grow": f"3D fill ({m.grow_connectivity}-connected)"}.get(m.tool)
    tool = tool or TOOL_READOUT[m.tool]
    hu = ""
    if m.hu_limited or m.tool in ("fill", "grow"):
        hu = f" · {m.hu_range[0]:.0f}–{m.hu_range[1]:.0f} HU"
    rgb = "#%02x%02x%02x" % label_rgb(c.value)
    lock = " 🔒" if m.label_value in m.locked_classes else ""
    v.set_bottom_right(f"<span style='color:{rgb}'>■</span> {c.code}{lock} · {tool}{hu}")


class AnnotationHost:
    error_title = "ictview"  # title of the warning box (not shown headless)

    # ---- model <-> views -------------------------------------------------------------------

    def _connect_slice_view(self) -> None:
        v = self.slice_view
        v.stroke_started.connect(self._stroke_started)
        v.stroke_moved.connect(self._stroke_moved)
        v.stroke_finished.connect(self._stroke_finished)
        v.fill_clicked.connect(self._fill_clicked)
        v.polygon_closed.connect(self._polygon_closed)
        v.cursor_moved.connect(self._cursor_moved)
        v.slice_changed.connect(self._slice_changed)
        v.window_changed.connect(self._window_changed)
        self.tool_panel.fill_holes_requested.connect(self.fill_holes)

    def _attach_model(self, model: AnnotationModel) -> None:
        """Carry the rater's settings over and listen to the model's events."""
        self.model = model
        for attr, value in self._carried.items():
            try:
                setattr(model, attr, value)
            except (ValueError, TypeError):
                pass
        if "label_value" not in self._carried:
            # first exam shown: start on the class already drawn most (resuming an exam)
            counts = model.voxel_counts()
            present = [(counts.get(v, 0), v) for v in BY_VALUE if counts.get(v, 0)]
            if present:
                model.label_value = max(present)[1]
        model.on_labels_changed.append(self.slice_view.refresh_labels)
        model.on_state_changed.append(self._sync_from_model)
        model.on_saved.append(self._bridge.saved.emit)  # saver thread -> queued to the GUI

    def _report_journal_notices(self, model: AnnotationModel) -> None:
        """Journal damage found at open (records dropped, journal set aside): the rater
        must know that strokes may be missing, not find out later."""
        for notice in model.journal_notices:
            self.report_error(notice)

    def _show_volume(self, model: AnnotationModel) -> None:
        """Show the exam on the slice with the most labels (the middle one when none)."""
        counts = np.count_nonzero(model.labels.reshape(model.labels.shape[0], -1), axis=1)
        z = int(np.argmax(counts)) if counts.any() else model.hu.shape[0] // 2
        self.slice_view.set_volume(model.hu, model.labels, model.spacing[1:], z=z)
        if model.geometry is not None:
            self.slice_view.set_orientation(model.geometry.row_dir, model.geometry.col_dir)

    def _detach_model(self, model: AnnotationModel) -> None:
        """Keep the rater's settings for the next exam and stop listening to `model`."""
        self._carried = {attr: getattr(model, attr) for attr in CARRIED}
        self.tool_panel.bind(None)
        model.on_labels_changed.clear()
        model.on_state_changed.clear()
        model.on_saved.clear()

    def _sync_view_tools(self, m: AnnotationModel) -> None:
        """Overlay style, tool, brush cursor and the tool readout of every slice view."""
        apply_view_tools(self.slice_view, m)
        viewer = getattr(self, "viewer", None)  # the MPR views, where the host has them
        if viewer is not None and viewer.model is m:
            viewer.sync_tools(m)

    # ---- view -> model -------------------------------------------------------------------

    # coordinates are voxels (z, y, x); `plane` is the view's (the axial view's display
    # coordinates are its voxels, the MPR viewer converts the others)

    def _stroke_started(self, z: float, y: float, x: float, erase: bool,
                        plane: str = AXIAL) -> None:
        if self.model is not None:
            self.model.begin_stroke(erase=True if erase else None)
            self.model.paint_to(z, y, x, plane)

    def _stroke_moved(self, z: float, y: float, x: float, plane: str = AXIAL) -> None:
        if self.model is not None and self.model.in_stroke:
            self.model.paint_to(z, y, x, plane)

    def _stroke_finished(self) -> None:
        if self.model is not None and self.model.in_stroke:
            self.model.end_stroke()  # the autosave point (journal append, background save)

    def _fill_clicked(self, z: float, y: float, x: float, plane: str = AXIAL) -> None:
        m = self.model
        if m is None:
            return
        zyx = tuple(int(round(v)) for v in (z, y, x))
        if m.tool == "grow":
            try:
                step = m.region_grow(*zyx)
            except RegionTooLarge as err:
                self.status.showMessage(str(err), 10000)
                return
            if step is not None:
                n = sum(d.n_changed for d in step.diffs)
                self.status.showMessage(
                    f"3D fill: {n:,} voxels ({n * m.voxel_ml:.2f} mL) on "
                    f"{step.z_range[1] - step.z_range[0]} slices", 6000)
                return
        elif m.flood_fill(*zyx, plane=plane) is not None:
            return
        lo, hi = m.hu_range
        self.status.showMessage(
            f"Nothing filled: the pixel is outside {lo:.0f}–{hi:.0f} HU or protected", 4000
        )

    def fill_holes(self, every_slice: bool = False):
        """Fill the holes of the current class: in the slice worked on (the axial one, or in
        the MPR layouts the view last clicked or scrolled), or on every slice (3D). One undo step; the status bar says what changed. Returns the step (None:
        nothing to fill)."""
        m = self.model
        if m is None or m.read_only:
            return None
        viewer = getattr(self, "viewer", None)
        plane, z = viewer.working_slice() if viewer is not None else (AXIAL, self.slice_view.z)
        step = m.fill_holes(None) if every_slice else m.fill_holes(z, plane=plane)
        code = m.class_name(m.label_value)
        where = "on any slice" if every_slice else (
            f"on slice {z + 1}" if plane == AXIAL else f"on {plane} slice {z + 1}")
        if step is None:
            self.status.showMessage(f"Fill holes: {code} encloses no unlabeled pixel {where}",
                                    6000)
            return None
        n = sum(d.n_changed for d in step.diffs)
        slices = len({d.z for d in step.diffs})
        where = f"on {slices} slice(s)" if every_slice else where
        self.status.showMessage(f"Filled the holes of {code} {where}: {n:,} voxels "
                                f"({n * m.voxel_ml:.3f} mL); Ctrl+Z undoes it", 8000)
        return step

    def _polygon_closed(self, z: int, pts, plane: str = AXIAL) -> None:
        """z and pts in the plane's native coordinates (axial: slice z, (y, x) vertices)."""
        if self.model is not None:
            self.model.polygon_fill(z, pts, plane=plane)

    def _cursor_moved(self, z: int, row: int, col: int) -> None:
        m = self.model
        if m is None:
            self.status.show_cursor(None, None, None)
            return
        self.status.show_cursor(m.hu, (z, row, col) if row >= 0 else None, m.spacing, m.labels)
        m.touch()

    def _slice_changed(self, z: int) -> None:
        self.status.show_slice(z, self.slice_view.n_slices)
        if self.model is not None:
            self.model.touch()

    def _window_changed(self, center: float, width: float, preset: str) -> None:
        if self.model is not None:
            self.model.window = (center, width)
        self._show_window(center, width, preset)

    def _show_window(self, center: float, width: float, preset: str) -> None:
        self.status.show_window(center, width, preset)

    def _model_call(self, method: str) -> None:
        if self.model is not None:
            getattr(self.model, method)()

    def _set_model(self, attr: str, value) -> None:
        if self.model is not None:
            setattr(self.model, attr, value)

    # ---- errors ----------------------------------------------------------------------------

    def report_error(self, message: str, once_key: str | None = None) -> None:
        """Status bar and log always; a warning box unless headless. With `once_key` (e.g.
        the exam of a blinding notice) the box comes once per key and session: switching
        labelsets on a blinded exam must not pop the same box again and again."""
        message = sentence(message)
        self.last_error = message
        logging.getLogger(type(self).__module__).warning("%s", message)  # the host's logger
        self.status.showMessage(message, 10000)
        if once_key is not None:
            told = self.__dict__.setdefault("_told_once", set())
            if once_key in told:
                return
            told.add(once_key)
        self.dialogs_shown = getattr(self, "dialogs_shown", 0) + 1
        if not self.headless:
            QtWidgets.QMessageBox.warning(self, self.error_title, message)
