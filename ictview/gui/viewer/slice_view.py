"""The slice view: CT slice + label overlay in a pyqtgraph ViewBox.

Two ImageItems share one ViewBox: the CT slice (float32, fixed levels from the
window, no LUT) and the labels (uint8 with a 256-entry RGBA lookup table and no
levels: pyqtgraph's Indexed8 fast path, so no RGBA array is built per stroke).

The view owns only display state (slice index, window, zoom, crosshair). Mouse
gestures become signals in pixel coordinates (row, col as floats, pixel centres
at integers); the main window turns them into model calls.

Mouse: left = tool (brush drag / fill click / polygon vertices, double-click
closes; Shift+left drag erases), right drag = window/level, middle drag or Space+left = pan,
wheel = slice, Ctrl+wheel = zoom.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

import pyqtgraph as pg
from ictview.core.labels import IGNORE, LABEL_CLASSES
from ictview.core.mpr import OPPOSITE, direction_letter  # noqa: F401  (re-exported)
from ictview.core.window import WINDOW_PRESETS, window_levels
from ictview.gui.preferences import label_rgb

Qt = QtCore.Qt
TOOLS = ("brush", "fill", "polygon")


def label_lut(hidden=()) -> np.ndarray:
    """256 x 4 RGBA table: 0 transparent, classes opaque in their colours (Preferences may
    change them; hidden ones transparent), ignore (255) grey."""
    lut = np.zeros((256, 4), np.uint8)
    for c in LABEL_CLASSES:
        lut[c.value] = (*label_rgb(c.value), 0 if c.value in hidden else 255)
    # ignore / unclassified hemorrhage of a model's proposal: a light neutral, visible on
    # grey brain without reading as any class
    lut[IGNORE] = (225, 225, 225, 210)
    return lut


def outline(labels2d: np.ndarray) -> np.ndarray:
    """Labels kept only on pixels that touch a different value (4-neighbours) or the border."""
    edge = np.zeros(labels2d.shape, bool)
    diff_y = labels2d[1:, :] != labels2d[:-1, :]
    diff_x = labels2d[:, 1:] != labels2d[:, :-1]
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    out = np.where(edge, labels2d, 0).astype(np.uint8, copy=False)
    return out


_OPPOSITE = OPPOSITE


class _Canvas(pg.GraphicsView):
    """GraphicsView that hands raw mouse/wheel events to its SliceView (pyqtgraph's own
    ViewBox mouse handling is off, so gestures are ours and deterministic)."""

    def __init__(self, owner: "SliceView"):
        super().__init__(background=pg.mkColor("#000000"))
        self._owner = owner
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._owner._press(ev)

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._owner._move(ev)

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._owner._release(ev)

    def mouseDoubleClickEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._owner._double_click(ev)

    def wheelEvent(self, ev: QtGui.QWheelEvent) -> None:  # noqa: N802
        self._owner._wheel(ev)

    def leaveEvent(self, ev: QtCore.QEvent) -> None:  # noqa: N802
        self._owner._leave()
        super().leaveEvent(ev)

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        if not self._owner._key(ev, pressed=True):
            super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        if not self._owner._key(ev, pressed=False):
            super().keyReleaseEvent(ev)

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(ev)
        owner = getattr(self, "_owner", None)  # pyqtgraph resizes during its own __init__
        if owner is not None and hasattr(owner, "_corners"):
            owner._place_overlays()


class SliceView(QtWidgets.QWidget):
    # pixel coordinates: (z, row, col); rows/cols are floats, pixel centres at integers
    stroke_started = QtCore.Signal(int, float, float, bool)  # ..., erase (Shift held)
    stroke_moved = QtCore.Signal(int, float, float)
    stroke_finished = QtCore.Signal()
    fill_clicked = QtCore.Signal(int, float, float)
    polygon_closed = QtCore.Signal(int, object)  # z, [(row, col), ...]
    cursor_moved = QtCore.Signal(int, int, int)  # z, row, col; row = col = -1 outside the image
    slice_changed = QtCore.Signal(int)
    window_changed = QtCore.Signal(float, float, str)  # center, width, preset name or ""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.hu: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.z = 0
        self.center, self.width = WINDOW_PRESETS["brain"]
        self.preset = "brain"
        self.tool = "brush"
        self.outline_mode = False
        self.opacity = 0.5
        self.brush_radius_px: tuple[float, float] = (5.0, 5.0)
        self.brush_color = QtGui.QColor(255, 255, 255)
        self.erasing = False
        self.crosshair_visible = True
        self.editable = True  # False: left-button tools do nothing (read-only labelsets)
        self._y_scale = 1.0  # dy / dx: rows are drawn this tall so the anatomy keeps its shape
        self._drag: str | None = None  # "paint", "window", "pan"
        self._drag_origin = QtCore.QPointF()
        self._drag_window = (self.center, self.width)
        self._polygon: list[tuple[float, float]] = []
        self._last_pixel: tuple[int, int] | None = None
        self._space_down = False
        self._wheel_accum = 0

        self.canvas = _Canvas(self)
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01)
        self.vb.setMouseEnabled(False, False)
        self.canvas.setCentralItem(self.vb)

        self.ct_item = pg.ImageItem(axisOrder="row-major")
        self.label_item = pg.ImageItem(axisOrder="row-major")
        self.label_item.setLookupTable(label_lut())
        self.label_item.setZValue(10)
        self.label_item.setOpacity(self.opacity)
        self.vb.addItem(self.ct_item)
        self.vb.addItem(self.label_item)

        self.cursor_item = QtWidgets.QGraphicsEllipseItem()
        self.cursor_item.setZValue(30)
        self.cursor_item.setVisible(False)
        self.vb.addItem(self.cursor_item, ignoreBounds=True)

        pen = pg.mkPen(QtGui.QColor(120, 200, 255, 110), width=1, style=Qt.PenStyle.DashLine)
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        for line in (self.h_line, self.v_line):
            line.setZValue(20)
            line.setVisible(False)
            self.vb.addItem(line, ignoreBounds=True)

        self.poly_item = pg.PlotCurveItem(pen=pg.mkPen("#ffffff", width=1.5))
        self.poly_item.setZValue(25)
        self.vb.addItem(self.poly_item, ignoreBounds=True)

        # corner annotations, as on a reading workstation
        self._corners = {}
        for key in ("tl", "tr", "bl", "br"):
            lab = QtWidgets.QLabel(self.canvas)
            lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            lab.setStyleSheet(
                "color: #c9d1d9; background: transparent; font-size: 9.5pt; padding: 6px 10px;"
            )
            align = Qt.AlignmentFlag.AlignRight if key.endswith("r") else Qt.AlignmentFlag.AlignLeft
            lab.setAlignment(align | Qt.AlignmentFlag.AlignTop)
            self._corners[key] = lab
        # orientation markers at the edges (left, right, top, bottom)
        self._markers = {}
        for key in ("left", "right", "top", "bottom"):
            lab = QtWidgets.QLabel(self.canvas)
            lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            lab.setStyleSheet(
                "color: #e0b25a; background: transparent; font-size: 11pt; font-weight: 600;"
            )
            self._markers[key] = lab
        self.placeholder = QtWidgets.QLabel("No exam open", self.canvas)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #6b747e; font-size: 12pt; background: transparent;")

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas)
        self.setMinimumSize(320, 320)
        self._update_cursor_pen()

    # ---- data -------------------------------------------------------------------------

    def set_volume(self, hu: np.ndarray, labels: np.ndarray, spacing_yx: tuple[float, float],
                   z: int | None = None) -> None:
        """Show a new exam: hu int16 (z, y, x) and labels uint8 (same shape, shared with the
        model so repaints read the edited array directly)."""
        self.hu, self.labels = hu, labels
        dy, dx = self._pixel_mm(spacing_yx)
        self._y_scale = float(dy / dx) if dx > 0 else 1.0
        tr = QtGui.QTransform.fromScale(1.0, self._y_scale)
        self.ct_item.setTransform(tr)
        self.label_item.setTransform(tr)
        self._polygon.clear()
        self.poly_item.setData([], [])
        self.placeholder.hide()
        self.z = -1
        self.set_slice(self.n_slices // 2 if z is None else z, force=True)
        self.fit()

    def clear(self) -> None:
        self.hu = self.labels = None
        self.ct_item.clear()
        self.label_item.clear()
        self.cursor_item.setVisible(False)
        self.placeholder.show()
        for lab in (*self._corners.values(), *self._markers.values()):
            lab.clear()

    @property
    def n_slices(self) -> int:
        return 0 if self.hu is None else int(self.hu.shape[0])

    def set_slice(self, z: int, force: bool = False) -> None:
        if self.hu is None:
            return
        z = int(np.clip(z, 0, self.n_slices - 1))
        if z == self.z and not force:
            return
        self.z = z
        ct = self._ct_image(z)
        self.ct_item.setImage(ct, autoLevels=False, levels=window_levels(self.center, self.width))
        self.refresh_labels()
        self._update_corner_text()
        self.slice_changed.emit(z)
        if self._last_pixel is not None:
            self.cursor_moved.emit(self.z, *self._last_pixel)

    def step_slice(self, delta: int) -> None:
        self.set_slice(self.z + delta)

    def refresh_labels(self, z_range: tuple[int, int] | None = None) -> None:
        """Re-read the label slice from the shared array (after a model change)."""
        if self.labels is None:
            return
        if z_range is not None and not self._shows_change(z_range):
            return
        sl = self._label_image(self.z)
        self.label_item.setImage(outline(sl) if self.outline_mode else sl, autoLevels=False)

    # what a plane view overrides (ictview.gui.viewer.plane_view): the axial slices here

    def _pixel_mm(self, spacing_yx: tuple[float, float]) -> tuple[float, float]:
        return spacing_yx

    def _image_shape(self) -> tuple[int, int]:
        return self.hu.shape[1:]

    def _ct_image(self, z: int) -> np.ndarray:
        return self.hu[z].astype(np.float32)  # C-contiguous float32: pyqtgraph's fast path

    def _label_image(self, z: int) -> np.ndarray:
        return self.labels[z]

    def _shows_change(self, z_range: tuple[int, int]) -> bool:
        return z_range[0] <= self.z < z_range[1]

    def shown_labels(self) -> np.ndarray | None:
        """The label slice as drawn (full size)."""
        return self.label_item.image

    def set_hidden_classes(self, hidden) -> None:
        """Classes drawn transparent (per-class show/hide)."""
        hidden = frozenset(hidden)
        if hidden != getattr(self, "_hidden", frozenset()):
            self._hidden = hidden
            self.label_item.setLookupTable(label_lut(hidden))

    def refresh_label_colors(self) -> None:
        """Redraw the labels in the class colours now set (Preferences)."""
        self.label_item.setLookupTable(label_lut(getattr(self, "_hidden", frozenset())))

    # ---- display state ----------------------------------------------------------------

    def set_window(self, center: float, width: float, preset: str = "") -> None:
        self.center, self.width = float(center), max(float(width), 1.0)
        self.preset = preset
        if self.hu is not None:
            self.ct_item.setLevels(window_levels(self.center, self.width))
        self._update_corner_text()
        self.window_changed.emit(self.center, self.width, preset)

    def set_preset(self, name: str) -> None:
        c, w = WINDOW_PRESETS[name]
        self.set_window(c, w, name)

    @property
    def levels(self) -> tuple[float, float]:
        return window_levels(self.center, self.width)

    def set_outline_mode(self, on: bool) -> None:
        self.outline_mode = bool(on)
        self.refresh_labels()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(np.clip(opacity, 0.0, 1.0))
        self.label_item.setOpacity(self.opacity)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        if self._drag == "paint":
            self._finish_paint()
        self.tool = tool
        if tool != "polygon":
            self.cancel_polygon()
        self._update_cursor_item()

    def set_brush(self, radius_px: tuple[float, float], color: QtGui.QColor, erasing: bool) -> None:
        self.brush_radius_px = (float(radius_px[0]), float(radius_px[1]))
        self.brush_color = QtGui.QColor(color)
        self.erasing = bool(erasing)
        self._update_cursor_pen()
        self._update_cursor_item()

    def set_editable(self, on: bool) -> None:
        self.editable = bool(on)
        if not on:
            self.cancel_polygon()
        self._update_cursor_item()

    def set_crosshair_visible(self, on: bool) -> None:
        self.crosshair_visible = bool(on)
        if not on:
            self.h_line.setVisible(False)
            self.v_line.setVisible(False)

    def show_crosshair_at(self, row: int, col: int) -> None:
        """Crosshair through pixel (row, col) whether or not the mouse is over this view (a
        linked view shows where the reader points in its twin); row < 0 hides it."""
        on = self.hu is not None and row >= 0 and col >= 0
        if on:
            self.h_line.setPos((row + 0.5) * self._y_scale)
            self.v_line.setPos(col + 0.5)
        self.h_line.setVisible(on)
        self.v_line.setVisible(on)

    def crosshair_at(self) -> tuple[int, int] | None:
        """The pixel the crosshair lines go through, None when they are hidden."""
        if not self.h_line.isVisible():
            return None
        return (int(round(self.h_line.value() / self._y_scale - 0.5)),
                int(round(self.v_line.value() - 0.5)))

    def set_orientation(self, row_dir, col_dir) -> None:
        """Edge letters from the slice orientation: columns grow to the right, rows down."""
        right, bottom = direction_letter(row_dir), direction_letter(col_dir)
        for key, letter in (("right", right), ("left", _OPPOSITE[right]),
                            ("bottom", bottom), ("top", _OPPOSITE[bottom])):
            self._markers[key].setText(letter)
        self._place_overlays()

    def set_info(self, top_left: str, top_right: str = "") -> None:
        self._corners["tl"].setText(top_left)
        self._corners["tr"].setText(top_right)
        self._place_overlays()

    def info(self) -> tuple[str, str]:
        """The (top left, top right) texts set by set_info."""
        return self._corners["tl"].text(), self._corners["tr"].text()

    def fit(self) -> None:
        if self.hu is None:
            return
        ny, nx = self._image_shape()
        self.vb.setRange(QtCore.QRectF(0, 0, nx, ny * self._y_scale), padding=0.01)

    def zoom(self, factor: float, center_view: QtCore.QPointF | None = None) -> None:
        """factor > 1 zooms in."""
        if center_view is None:
            center_view = self.vb.viewRect().center()
        self.vb.scaleBy((1.0 / factor, 1.0 / factor), center=center_view)

    # ---- coordinates ------------------------------------------------------------------

    def widget_to_pixel(self, pos: QtCore.QPointF) -> tuple[float, float]:
        """Canvas widget position -> (row, col) floats, pixel centres at integers."""
        p = self.vb.mapSceneToView(self.canvas.mapToScene(pos.toPoint()))
        return p.y() / self._y_scale - 0.5, p.x() - 0.5

    def pixel_to_widget(self, row: float, col: float) -> QtCore.QPoint:
        """(row, col) -> canvas widget position of that pixel's centre (tests drive this)."""
        scene = self.vb.mapViewToScene(QtCore.QPointF(col + 0.5, (row + 0.5) * self._y_scale))
        return self.canvas.mapFromScene(scene)

    def _inside(self, row: float, col: float) -> bool:
        if self.hu is None:
            return False
        ny, nx = self._image_shape()
        return -0.5 <= row < ny - 0.5 and -0.5 <= col < nx - 0.5

    # ---- mouse ------------------------------------------------------------------------

    def _press(self, ev: QtGui.QMouseEvent) -> None:
        self.canvas.setFocus()
        if self.hu is None:
            return
        pos = ev.position()
        button = ev.button()
        self._track_cursor(*self.widget_to_pixel(pos))
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._drag, self._drag_origin = "pan", pos
            self.canvas.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.RightButton:
            self._drag, self._drag_origin = "window", pos
            self._drag_window = (self.center, self.width)
        elif button == Qt.MouseButton.LeftButton and self.editable:
            row, col = self.widget_to_pixel(pos)
            if not self._inside(row, col):
                return
            if self.tool == "brush":
                self._drag = "paint"
                erase = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
                self.stroke_started.emit(self.z, row, col, erase)
            elif self.tool == "fill":
                self.fill_clicked.emit(self.z, row, col)
            elif self.tool == "polygon":
                self._polygon.append((row, col))
                self._update_polygon_item()
        ev.accept()

    def _move(self, ev: QtGui.QMouseEvent) -> None:
        if self.hu is None:
            return
        pos = ev.position()
        row, col = self.widget_to_pixel(pos)
        self._track_cursor(row, col)
        if self._drag == "paint":
            self.stroke_moved.emit(self.z, row, col)
        elif self._drag == "window":
            d = pos - self._drag_origin
            c0, w0 = self._drag_window
            # sensitivity follows the window: fine at width 80, coarse at 2800
            step = max(w0, 20.0) / 250.0
            self.set_window(c0 + d.y() * step, max(w0 + d.x() * step, 1.0))
        elif self._drag == "pan":
            a = self.vb.mapSceneToView(self.canvas.mapToScene(self._drag_origin.toPoint()))
            b = self.vb.mapSceneToView(self.canvas.mapToScene(pos.toPoint()))
            self.vb.translateBy(a - b)
            self._drag_origin = pos
        elif self.tool == "polygon" and self._polygon:
            self._update_polygon_item((row, col))
        ev.accept()

    def _release(self, ev: QtGui.QMouseEvent) -> None:
        if self._drag == "paint" and ev.button() == Qt.MouseButton.LeftButton:
            self._finish_paint()
        elif self._drag in ("window", "pan"):
            self._drag = None
            self.canvas.setCursor(Qt.CursorShape.CrossCursor)
        ev.accept()

    def _finish_paint(self) -> None:
        self._drag = None
        self.stroke_finished.emit()

    def _double_click(self, ev: QtGui.QMouseEvent) -> None:
        if self.tool == "polygon" and ev.button() == Qt.MouseButton.LeftButton:
            self.close_polygon()
        elif self.tool == "brush" and ev.button() == Qt.MouseButton.LeftButton:
            self._press(ev)  # a quick second dab is still a dab
        ev.accept()

    def close_polygon(self) -> None:
        # the double-click's own press added a duplicate last vertex
        pts = [p for i, p in enumerate(self._polygon) if i == 0 or p != self._polygon[i - 1]]
        self.cancel_polygon()
        if len(pts) >= 3:
            self.polygon_closed.emit(self.z, pts)

    def cancel_polygon(self) -> None:
        self._polygon = []
        self.poly_item.setData([], [])

    def _wheel(self, ev: QtGui.QWheelEvent) -> None:
        if self.hu is None:
            return
        delta = ev.angleDelta().y() or ev.angleDelta().x()
        if delta == 0:
            return
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            center = self.vb.mapSceneToView(self.canvas.mapToScene(ev.position().toPoint()))
            self.zoom(1.0015 ** delta, center)
        else:
            # one notch (120) = one slice; touchpads send small deltas that add up.
            # Wheel away from the user = towards the top of the head = higher slice index.
            self._wheel_accum += delta
            steps = int(self._wheel_accum / 120)
            if steps:
                self._wheel_accum -= steps * 120
                self.step_slice(steps)
        ev.accept()

    def _leave(self) -> None:
        self._last_pixel = None
        self.cursor_item.setVisible(False)
        self.h_line.setVisible(False)
        self.v_line.setVisible(False)
        self.cursor_moved.emit(self.z, -1, -1)

    def _key(self, ev: QtGui.QKeyEvent, pressed: bool) -> bool:
        """Keys the canvas handles itself (the rest are the window's shortcuts)."""
        key = ev.key()
        if key == Qt.Key.Key_Space:
            if not ev.isAutoRepeat():
                self._space_down = pressed
            return True
        if not pressed:
            return False
        if key == Qt.Key.Key_Escape:
            self.cancel_polygon()
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tool == "polygon":
            self.close_polygon()
            return True
        return False

    # ---- cursor, crosshair, polygon, corners -------------------------------------------

    def _track_cursor(self, row: float, col: float) -> None:
        inside = self._inside(row, col)
        pixel = (int(round(row)), int(round(col))) if inside else (-1, -1)
        self._last_pixel = pixel if inside else None
        if self.crosshair_visible and inside:
            # through the centre of the pixel whose HU the status bar shows
            self.h_line.setPos((pixel[0] + 0.5) * self._y_scale)
            self.v_line.setPos(pixel[1] + 0.5)
        self.h_line.setVisible(self.crosshair_visible and inside)
        self.v_line.setVisible(self.crosshair_visible and inside)
        self._cursor_pixel = pixel
        self._update_cursor_item()
        self.cursor_moved.emit(self.z, *pixel)

    def _update_cursor_pen(self) -> None:
        color = QtGui.QColor("#ffffff") if self.erasing else QtGui.QColor(self.brush_color)
        pen = QtGui.QPen(color, 1.5)
        pen.setCosmetic(True)
        if self.erasing:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.cursor_item.setPen(pen)

    def _update_cursor_item(self) -> None:
        pixel = getattr(self, "_cursor_pixel", (-1, -1))
        show = self.editable and self.tool == "brush" and pixel[0] >= 0 and self.hu is not None
        self.cursor_item.setVisible(show)
        if not show:
            return
        ry, rx = self.brush_radius_px
        ry, rx = max(ry, 0.5), max(rx, 0.5)
        # centred on the pixel the dab will be centred on (the model rounds to a pixel)
        cy, cx = (pixel[0] + 0.5) * self._y_scale, pixel[1] + 0.5
        ry_v = (ry + 0.5) * self._y_scale
        self.cursor_item.setRect(QtCore.QRectF(cx - rx - 0.5, cy - ry_v, 2 * rx + 1, 2 * ry_v))

    def _update_polygon_item(self, hover: tuple[float, float] | None = None) -> None:
        pts = list(self._polygon) + ([hover] if hover else [])
        if len(pts) > 2:
            pts.append(pts[0])
        xs = [c + 0.5 for _, c in pts]
        ys = [(r + 0.5) * self._y_scale for r, _ in pts]
        self.poly_item.setData(xs, ys)

    def _update_corner_text(self) -> None:
        if self.hu is None:
            return
        name = self.preset.capitalize() if self.preset else "Custom"
        self._corners["bl"].setText(
            f"Slice {self.z + 1} / {self.n_slices}<br>"
            f"W {self.width:.0f}  L {self.center:.0f}  <span style='color:#8a939d'>({name})</span>"
        )
        self._place_overlays()

    def set_bottom_right(self, text: str) -> None:
        self._corners["br"].setText(text)
        self._place_overlays()

    def _place_overlays(self) -> None:
        w, h = self.canvas.width(), self.canvas.height()
        for key, lab in self._corners.items():
            lab.adjustSize()
            x = 0 if key.endswith("l") else w - lab.width()
            y = 0 if key.startswith("t") else h - lab.height()
            lab.move(max(x, 0), max(y, 0))
        for key, lab in self._markers.items():
            lab.adjustSize()
            if key in ("left", "right"):
                x = 8 if key == "left" else w - lab.width() - 8
                lab.move(x, (h - lab.height()) // 2)
            else:
                y = 6 if key == "top" else h - lab.height() - 6
                lab.move((w - lab.width()) // 2, y)
        self.placeholder.setGeometry(0, 0, w, h)
