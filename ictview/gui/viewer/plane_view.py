"""PlaneView: the slice view of one plane (axial, coronal or sagittal) of an exam.

A SliceView whose images come from an `ictview.core.mpr.Plane`: display rows are
drawn `plane.aspect` times taller than columns (5 mm slices keep their true shape
on a coronal reslice), edges carry the patient letters of the plane, a corner says
the slice position in patient mm, a scale bar follows the zoom, the HU under the
cursor is written beside it, and the linked crosshair of the MPR layout is drawn
as two lines in the colours of the planes they stand for.

Signals carry display coordinates (slice index, row, col); for the axial plane
these are the voxel (z, y, x) themselves. View tools (crosshair, ruler, ellipse,
freehand ROI) take the left button before the annotation tool; Ctrl + left drag
moves the crosshair whatever the tool.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

import pyqtgraph as pg
from ictview.core.measure import Measurement
from ictview.core.mpr import AXIAL, Plane, scale_bar, scale_text
from ictview.gui.viewer.slice_view import SliceView, outline

Qt = QtCore.Qt
VIEW_TOOLS = ("crosshair", "ruler", "ellipse", "freehand")
# the colour of each plane (by its normal axis z, y, x), as Slicer draws them
AXIS_COLOR = {0: "#e8615a", 1: "#6cc26a", 2: "#e8c44a"}
PLANE_TITLE = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
MEASURE_COLOR = "#7fe0ff"
LABEL_MARGIN = 24  # pixels of room around the drawn label box (a drag rarely outgrows it)


class ScaleBar(QtWidgets.QWidget):
    """A round-length bar (1/2/5 x 10^k mm) drawn over the canvas."""

    def __init__(self, parent: QtWidgets.QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.mm, self.px = 0.0, 0.0
        self.resize(150, 28)

    def set_scale(self, mm_per_px: float) -> None:
        mm, px = scale_bar(mm_per_px, 110.0)
        if (mm, round(px)) != (self.mm, round(self.px)):
            self.mm, self.px = mm, px
            self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802
        if self.px <= 0:
            return
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        pen = QtGui.QPen(QtGui.QColor("#c9d1d9"), 2)
        p.setPen(pen)
        x1 = self.width() - 4
        x0 = x1 - self.px
        y = self.height() - 6
        p.drawLine(QtCore.QPointF(x0, y), QtCore.QPointF(x1, y))
        for x in (x0, x1):
            p.drawLine(QtCore.QPointF(x, y - 5), QtCore.QPointF(x, y))
        p.setFont(QtGui.QFont(p.font().family(), 9))
        p.drawText(QtCore.QRectF(x0 - 20, 0, self.px + 40, y - 6),
                   Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                   scale_text(self.mm))
        p.end()


class _LinkLine(QtWidgets.QWidget):
    """One line of the linked crosshair (opaque, so moving it repaints only what it left)."""

    def __init__(self, parent: QtWidgets.QWidget):
        super().__init__(parent)
        self.value_ = 0.0  # its position in view coordinates (tests read it)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.color = QtGui.QColor("#ffffff")
        self.hide()

    def set_color(self, color: str) -> None:
        self.color = QtGui.QColor(color)  # painted, not a palette: the app style sheet wins those
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), self.color)
        p.end()

    def value(self) -> float:
        return self.value_


class PlaneView(SliceView):
    crosshair_set = QtCore.Signal(int, float, float)  # index, row, col: the linked point
    measured = QtCore.Signal(object)  # a finished Measurement

    def __init__(self, plane_name: str = AXIAL, parent: QtWidgets.QWidget | None = None):
        self.plane_name = plane_name
        self.plane: Plane | None = None
        self.geometry = None
        self.view_tool: str | None = None
        self.measurements: list[Measurement] = []  # shared with the MprViewer
        self.diffs_of_change = None  # () -> the model's changed_diffs (set by the MprViewer)
        self._label_origin = (0, 0)  # display (row, col) of the drawn label box
        self._measure_items: list = []
        self._measure_drag: list[tuple[float, float]] | None = None
        self._crosshair_drag = False
        super().__init__(parent)
        # the linked crosshair: rows show the plane of the row axis, columns the column axis
        vp = self.canvas.viewport()
        self.link_h, self.link_v = _LinkLine(vp), _LinkLine(vp)
        self._link_point: tuple[float, float] | None = None
        self.draft_item = pg.PlotCurveItem(pen=pg.mkPen(MEASURE_COLOR, width=1.5))
        self.draft_item.setZValue(26)
        self.vb.addItem(self.draft_item, ignoreBounds=True)
        self.scale = ScaleBar(self.canvas)
        self.hu_label = QtWidgets.QLabel(self.canvas)
        self.hu_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hu_label.setStyleSheet("color: #f0f3f6; background: rgba(0,0,0,140); "
                                    "font-size: 9pt; padding: 1px 4px; border-radius: 3px;")
        self.hu_label.hide()
        self.vb.sigRangeChanged.connect(self._update_scale)
        self.set_plane_colors()

    # ---- plane -----------------------------------------------------------------------------

    def set_plane(self, plane: Plane, geometry=None) -> None:
        """The plane (shape, spacing, orientation) of the next set_volume."""
        self.plane, self.geometry = plane, geometry
        for key, letter in plane.edge_letters().items():
            self._markers[key].setText(letter)
        self.set_plane_colors()
        self._place_overlays()

    def set_plane_colors(self) -> None:
        axes = (0, 1, 2) if self.plane is None else self.plane.axes
        for line, axis in ((self.link_h, axes[1]), (self.link_v, axes[2])):
            line.set_color(AXIS_COLOR[axis])

    @property
    def n_slices(self) -> int:
        if self.hu is None:
            return 0
        return self.plane.n_slices if self.plane is not None else int(self.hu.shape[0])

    def _pixel_mm(self, spacing_yx):
        return self.plane.pixel_mm if self.plane is not None else spacing_yx

    def _image_shape(self):
        return self.plane.image_shape if self.plane is not None else self.hu.shape[1:]

    def _ct_image(self, z: int) -> np.ndarray:
        if self.plane is None or self.plane.name == AXIAL:
            return super()._ct_image(z)
        return np.ascontiguousarray(self.plane.image(self.hu, z), dtype=np.float32)

    def _label_image(self, z: int) -> np.ndarray:
        if self.plane is None or self.plane.name == AXIAL:
            return super()._label_image(z)
        return np.ascontiguousarray(self.plane.image(self.labels, z))

    def _shows_change(self, z_range) -> bool:
        if self.plane is None or self.plane.name == AXIAL:
            return super()._shows_change(z_range)
        return self.isVisible()  # every axial change crosses a coronal/sagittal slice

    def refresh_labels(self, z_range=None) -> None:
        """After a model change: repaint just the changed boxes when the model says which
        (`diffs_of_change`), else re-read the label slice."""
        if self.labels is None:
            return
        if z_range is not None and not self._shows_change(z_range):
            return
        diffs = self.diffs_of_change() if (z_range is not None and self.diffs_of_change) else None
        if diffs and self._patch_labels(diffs):
            return
        self._show_label_slice(self._label_image(self.z))

    def _show_label_slice(self, sl: np.ndarray) -> None:
        """Draw only the bounding box of the labels (plus a margin for the next dabs): an
        empty or sparsely labeled slice costs the overlay almost nothing to paint."""
        rows = np.flatnonzero(sl.any(axis=1))
        if rows.size == 0:
            r0 = c0 = 0
            crop = np.zeros((1, 1), np.uint8)
        else:
            cols = np.flatnonzero(sl.any(axis=0))
            m, (h, w) = LABEL_MARGIN, sl.shape
            r0, r1 = max(int(rows[0]) - m, 0), min(int(rows[-1]) + 1 + m, h)
            c0, c1 = max(int(cols[0]) - m, 0), min(int(cols[-1]) + 1 + m, w)
            crop = sl[r0:r1, c0:c1]
            crop = outline(crop) if self.outline_mode else np.ascontiguousarray(crop)
        self._label_origin = (r0, c0)
        self.label_item.setPos(c0, r0 * self._y_scale)
        self.label_item.setImage(crop, autoLevels=False)

    def shown_labels(self) -> np.ndarray | None:
        """The label slice as drawn, full size (the overlay itself holds only its box)."""
        img = self.label_item.image
        if img is None or self.hu is None:
            return None
        full = np.zeros(self._image_shape(), np.uint8)
        r0, c0 = self._label_origin
        h, w = img.shape
        if h * w > 1 or img.any():
            full[r0:r0 + h, c0:c0 + w] = img
        return full

    def _patch_labels(self, diffs) -> bool:
        """Copy the changed boxes into the drawn label box and repaint only them. False
        (redraw the slice) when a change falls outside the box or the fast path does not
        apply (outline mode, no picture drawn yet)."""
        item, img = self.label_item, self.label_item.image
        if (self.outline_mode or self.plane is None or img is None or item.qimage is None
                or self.labels is None):
            return False
        # the QImage must draw from this very buffer (pyqtgraph's Indexed8 path wraps it)
        if np.frombuffer(item.qimage.constBits(), np.uint8).ctypes.data != img.ctypes.data:
            return False
        n, ra, ca = self.plane.axes
        shared = np.shares_memory(img, self.labels)
        height = self._image_shape()[0]
        br, bc = self._label_origin
        bh, bw = img.shape
        boxes = []
        for d in diffs:
            h, w = d.mask.shape
            lo, hi = (d.z, d.y0, d.x0), (d.z + 1, d.y0 + h, d.x0 + w)
            if not lo[n] <= self.z < hi[n]:
                continue
            r0, r1, c0, c1 = lo[ra], hi[ra], lo[ca], hi[ca]
            if self.plane.flip_rows:
                r0, r1 = height - r1, height - r0
            if not (br <= r0 and r1 <= br + bh and bc <= c0 and c1 <= bc + bw):
                return False
            boxes.append((r0, r1, c0, c1))
        rect = QtCore.QRectF()
        source = None
        for r0, r1, c0, c1 in boxes:
            if not shared:
                if source is None:
                    source = self.plane.image(self.labels, self.z)
                img[r0 - br:r1 - br, c0 - bc:c1 - bc] = source[r0:r1, c0:c1]
            rect = rect.united(QtCore.QRectF(c0 - bc, r0 - br, c1 - c0, r1 - r0))
        if not rect.isEmpty():
            item.update(rect)
        return True

    def set_slice(self, z: int, force: bool = False) -> None:
        before = self.z
        super().set_slice(z, force)
        if self.z != before or force:
            self._draw_measurements()

    def set_volume(self, hu, labels, spacing_yx, z=None) -> None:
        super().set_volume(hu, labels, spacing_yx, z)
        self._update_scale()

    def show_preview(self, ct: np.ndarray, pixel_mm, text: str) -> None:
        """Paint one CT slice before the exam is loaded (no labels, no tools yet)."""
        dy, dx = pixel_mm
        ys = float(dy / dx) if dx > 0 else 1.0
        tr = QtGui.QTransform.fromScale(1.0, ys)
        self.ct_item.setTransform(tr)
        self.ct_item.setImage(np.asarray(ct, np.float32), autoLevels=False,
                              levels=self.levels)
        self.label_item.clear()
        self.placeholder.hide()
        self._corners["bl"].setText(f"<span style='color:#8a939d'>{text}</span>")
        ny, nx = ct.shape
        self.vb.setRange(QtCore.QRectF(0, 0, nx, ny * ys), padding=0.01)
        self._place_overlays()

    def clear(self) -> None:
        super().clear()
        self._link_point = None
        self._place_links()
        self.hu_label.hide()
        self.scale.set_scale(0.0)
        self.cancel_measure()

    # ---- overlays ----------------------------------------------------------------------------

    def _update_corner_text(self) -> None:
        if self.hu is None:
            return
        name = self.preset.capitalize() if self.preset else "Custom"
        title = PLANE_TITLE.get(self.plane_name, "")
        pos = ""
        if self.plane is not None:
            pos = f"  ·  {self.plane.position_text(self.z, self.geometry)}"
        color = AXIS_COLOR[self.plane.axes[0]] if self.plane is not None else "#c9d1d9"
        text = f"<span style='color:{color}'>{title}</span> {self.z + 1} / {self.n_slices}{pos}"
        if not self.compact:  # the reslices leave W/L to the axial view and the status bar
            text += (f"<br>W {self.width:.0f}  L {self.center:.0f}  "
                     f"<span style='color:#8a939d'>({name})</span>")
        self._corners["bl"].setText(text)
        self._place_overlays()

    @property
    def compact(self) -> bool:
        """Coronal and sagittal views: fewer corner texts (they sit beside the axial one)."""
        return self.plane_name != AXIAL

    def set_bottom_right(self, text: str) -> None:
        if not self.compact:
            super().set_bottom_right(text)

    def _update_scale(self, *_) -> None:
        self.hu_label.hide()  # zoom, pan or resize: the readout's place is stale
        self._place_links()
        if self.hu is None or self.plane is None:
            return
        units_per_px = self.vb.viewPixelSize()[0]  # image columns per screen pixel
        self.scale.set_scale(units_per_px * self.plane.pixel_mm[1])

    def _place_overlays(self) -> None:
        super()._place_overlays()
        if not hasattr(self, "scale"):
            return
        self._place_links()
        w, h = self.canvas.width(), self.canvas.height()
        c = self._corners
        br = c["br"]
        self.scale.move(w - self.scale.width() - 8, h - br.height() - self.scale.height())
        if w >= 900:
            return
        # narrow views (the MPR layouts): stack the corner texts and keep the edge letters
        # clear of them
        bl = c["bl"]
        if br.text() and bl.width() + br.width() > w:
            br.move(br.x(), h - bl.height() - br.height() + 6)
        self.scale.move(w - self.scale.width() - 8, br.y() - self.scale.height())
        top, bottom = self._markers["top"], self._markers["bottom"]
        if c["tl"].text() or c["tr"].text():
            top.move(top.x(), max(c["tl"].height(), c["tr"].height()) - 4)
        low = min(bl.y(), br.y()) if br.text() else bl.y()
        bottom.move(bottom.x(), low - bottom.height() + 4)

    def set_linked_point(self, row: float | None, col: float | None = None) -> None:
        """Draw the linked crosshair through display pixel (row, col); None hides it."""
        self._link_point = None if (row is None or self.hu is None) else (row, col)
        self._place_links()

    def _place_links(self) -> None:
        """The crosshair lines are 1-pixel opaque widgets over the viewport, not scene items:
        moving one repaints only the strip it leaves, where a scene line would repaint
        both strips through the scaled CT (measured: 0.1 vs 8-12 ms a move)."""
        if self._link_point is None:
            self.link_h.hide()
            self.link_v.hide()
            return
        row, col = self._link_point
        self.link_h.value_, self.link_v.value_ = (row + 0.5) * self._y_scale, col + 0.5
        p = self.canvas.mapFromScene(
            self.vb.mapViewToScene(QtCore.QPointF(self.link_v.value_, self.link_h.value_)))
        vp = self.canvas.viewport()
        self.link_h.setGeometry(0, p.y(), vp.width(), 1)
        self.link_v.setGeometry(p.x(), 0, 1, vp.height())
        self.link_h.show()
        self.link_v.show()

    def _track_cursor(self, row: float, col: float) -> None:
        super()._track_cursor(row, col)
        pixel = getattr(self, "_cursor_pixel", (-1, -1))
        if pixel[0] < 0 or self.hu is None:
            self.hu_label.hide()
            return
        plane = self.plane
        value = (self.hu[self.z, pixel[0], pixel[1]] if plane is None
                 else plane.image(self.hu, self.z)[pixel[0], pixel[1]])
        self.hu_label.setText(f"{int(value)} HU")
        self.hu_label.adjustSize()
        p = self.pixel_to_widget(pixel[0], pixel[1])
        self.hu_label.move(p.x() + 14, p.y() + 12)
        self.hu_label.show()

    def _leave(self) -> None:
        super()._leave()
        self.hu_label.hide()

    # ---- view tools: crosshair and measurements --------------------------------------------

    def set_view_tool(self, tool: str | None) -> None:
        if tool is not None and tool not in VIEW_TOOLS:
            raise ValueError(f"unknown view tool {tool!r}")
        self.cancel_measure()
        self.view_tool = tool
        self.canvas.setCursor(Qt.CursorShape.CrossCursor)
        self._update_cursor_item()

    def _update_cursor_item(self) -> None:
        super()._update_cursor_item()
        if getattr(self, "view_tool", None) is not None:
            self.cursor_item.setVisible(False)

    def _press(self, ev: QtGui.QMouseEvent) -> None:
        left = ev.button() == Qt.MouseButton.LeftButton
        if self.hu is not None and left and not self._space_down:
            row, col = self.widget_to_pixel(ev.position())
            ctrl = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
            if ctrl or self.view_tool == "crosshair":
                self.canvas.setFocus()
                self._crosshair_drag = True
                if self._inside(row, col):
                    self.crosshair_set.emit(self.z, row, col)
                ev.accept()
                return
            if self.view_tool in ("ruler", "ellipse", "freehand"):
                self.canvas.setFocus()
                if self._inside(row, col):
                    self._measure_drag = [(row, col)]
                ev.accept()
                return
        super()._press(ev)

    def _move(self, ev: QtGui.QMouseEvent) -> None:
        if self.hu is not None and (self._crosshair_drag or self._measure_drag is not None):
            row, col = self.widget_to_pixel(ev.position())
            self._track_cursor(row, col)
            ny, nx = self._image_shape()
            row, col = float(np.clip(row, 0, ny - 1)), float(np.clip(col, 0, nx - 1))
            if self._crosshair_drag:
                self.crosshair_set.emit(self.z, row, col)
            else:
                if self.view_tool == "freehand":
                    self._measure_drag.append((row, col))
                else:
                    self._measure_drag[1:] = [(row, col)]
                self._draw_draft()
            ev.accept()
            return
        super()._move(ev)

    def _release(self, ev: QtGui.QMouseEvent) -> None:
        if self._crosshair_drag:
            self._crosshair_drag = False
            ev.accept()
            return
        if self._measure_drag is not None and ev.button() == Qt.MouseButton.LeftButton:
            pts, self._measure_drag = self._measure_drag, None
            self.draft_item.setData([], [])
            if len(pts) >= 2:
                self.finish_measure(self.view_tool, pts)
            ev.accept()
            return
        super()._release(ev)

    def finish_measure(self, kind: str, pts: list[tuple[float, float]]) -> Measurement | None:
        """Compute and keep a measurement drawn on the current slice (tests call it too)."""
        if self.plane is None or self.hu is None:
            return None
        m = Measurement(kind, self.plane_name, self.z, list(pts))
        m.compute(self.plane.image(self.hu, self.z), self.plane.pixel_mm)
        self.measurements.append(m)
        self._draw_measurements()
        self.measured.emit(m)
        return m

    def cancel_measure(self) -> None:
        self._measure_drag = None
        if hasattr(self, "draft_item"):
            self.draft_item.setData([], [])

    def _curve(self, kind: str, pts) -> tuple[list[float], list[float]]:
        """View coordinates of a measurement's outline."""
        if kind == "ellipse":
            (r0, c0), (r1, c1) = pts[0], pts[-1]
            t = np.linspace(0, 2 * np.pi, 73)
            rows = (r0 + r1) / 2 + (r1 - r0) / 2 * np.sin(t)
            cols = (c0 + c1) / 2 + (c1 - c0) / 2 * np.cos(t)
            pts = list(zip(rows, cols))
        elif kind == "freehand" and len(pts) > 2:
            pts = list(pts) + [pts[0]]
        elif kind == "ruler":
            pts = [pts[0], pts[-1]]
        xs = [c + 0.5 for _, c in pts]
        ys = [(r + 0.5) * self._y_scale for r, _ in pts]
        return xs, ys

    def _draw_draft(self) -> None:
        if self._measure_drag and len(self._measure_drag) >= 2:
            self.draft_item.setData(*self._curve(self.view_tool, self._measure_drag))

    def _draw_measurements(self) -> None:
        for item in self._measure_items:
            self.vb.removeItem(item)
        self._measure_items = []
        if self.hu is None:
            return
        for m in self.measurements:
            if m.plane != self.plane_name or m.index != self.z:
                continue
            xs, ys = self._curve(m.kind, m.points)
            curve = pg.PlotCurveItem(xs, ys, pen=pg.mkPen(MEASURE_COLOR, width=2))
            curve.setZValue(27)
            # the readout goes on the side of the shape with room (inside the view)
            right_half = (min(xs) + max(xs)) / 2 > self.vb.viewRect().center().x()
            text = pg.TextItem(m.text, color=MEASURE_COLOR, anchor=(1, 1) if right_half else (0, 1),
                               fill=pg.mkBrush(0, 0, 0, 150))
            text.setZValue(28)
            text.setPos(min(xs) - 2 if right_half else max(xs) + 2, min(ys) - 1)
            for item in (curve, text):
                self.vb.addItem(item, ignoreBounds=True)
                self._measure_items.append(item)

    def redraw_measurements(self) -> None:
        self._draw_measurements()
