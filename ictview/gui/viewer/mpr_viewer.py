"""MprViewer: the axial layout (one view) and the MPR layout (axial + coronal + sagittal,
1x3 or 2x2) around the host window's axial PlaneView.

The viewer owns the coronal and sagittal views, the linked crosshair (a Qt-free
`ictview.core.mpr.Crosshair`) and the measurements. Gestures of every view go to
the host's AnnotationHost handlers as voxel coordinates with their plane, so a
stroke is one undo step, journaled, whichever view drew it. Display settings
(window, overlay, tool, brush) follow the model in all views; zoom is per view.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from ictview.core.mpr import AXIAL, CORONAL, PLANES, SAGITTAL, Crosshair, planes_for
from ictview.gui.viewer.plane_view import AXIS_COLOR, PLANE_TITLE, PlaneView

Qt = QtCore.Qt
LAYOUTS = ("axial", "mpr-1x3", "mpr-2x2")
LAYOUT_TEXT = {"axial": "Axial", "mpr-1x3": "MPR 1 × 3", "mpr-2x2": "MPR 2 × 2"}


def layout_name(name: str) -> str:
    """'mpr' is the 1x3 MPR layout."""
    name = {"mpr": "mpr-1x3", "single": "axial"}.get(name, name)
    if name not in LAYOUTS:
        raise ValueError(f"layout must be one of axial, mpr, {', '.join(LAYOUTS[1:])}")
    return name


class MprViewer(QtWidgets.QWidget):
    layout_changed = QtCore.Signal(str)
    crosshair_moved = QtCore.Signal(object)  # (z, y, x)

    def __init__(self, host, axial: PlaneView, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.host = host  # an AnnotationHost: model, report_error, gesture handlers
        self.views: dict[str, PlaneView] = {AXIAL: axial}
        for name in (CORONAL, SAGITTAL):
            self.views[name] = PlaneView(name)
        self.measurements: list = []
        for v in self.views.values():
            v.measurements = self.measurements
        self.planes: dict = {}
        self.crosshair: Crosshair | None = None
        self.layout_mode = "axial"
        self.model = None
        self.info = QtWidgets.QLabel()
        self.info.setObjectName("mprInfo")
        self.info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.info.setStyleSheet("background: #000000; color: #c9d1d9; padding: 14px;"
                                "font-size: 10pt;")
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setWordWrap(True)
        self.info.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                QtWidgets.QSizePolicy.Policy.Ignored)
        self.grid = QtWidgets.QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.setStyleSheet("MprViewer { background: #2a2f36; }")
        self._connect()
        self.set_layout("axial")

    # ---- layout ---------------------------------------------------------------------------------

    def set_layout(self, name: str) -> None:
        name = layout_name(name)
        for w in (*self.views.values(), self.info):
            self.grid.removeWidget(w)
            w.hide()
        a, c, s = self.views[AXIAL], self.views[CORONAL], self.views[SAGITTAL]
        if name == "axial":
            self.grid.addWidget(a, 0, 0)
        elif name == "mpr-1x3":
            for i, v in enumerate((a, c, s)):
                self.grid.addWidget(v, 0, i)
        else:
            self.grid.addWidget(a, 0, 0)
            self.grid.addWidget(c, 0, 1)
            self.grid.addWidget(s, 1, 0)
            self.grid.addWidget(self.info, 1, 1)
            self.info.show()
        for r in range(2):
            self.grid.setRowStretch(r, 1 if (r == 0 or name == "mpr-2x2") else 0)
        for col in range(3):
            used = {"axial": 1, "mpr-1x3": 3, "mpr-2x2": 2}[name]
            self.grid.setColumnStretch(col, 1 if col < used else 0)
        a.show()
        # the linked crosshair replaces the hover one in the MPR layouts
        hover = getattr(self.host, "actions_by_key", {}).get("crosshair")
        for v in self.views.values():
            v.set_crosshair_visible(name == "axial" and (hover is None or hover.isChecked()))
        if name != "axial":
            c.show()
            s.show()
            if self.model is not None:  # hidden views skipped the edits made meanwhile
                for v in (c, s):
                    v.set_slice(self.crosshair.index_in(self.planes[v.plane_name]))
                    v.refresh_labels()
        self.layout_mode = name
        for v in (c, s):
            v.setMinimumSize(200, 200)
        a.setMinimumSize(200 if name != "axial" else 320, 200 if name != "axial" else 320)
        self._refresh_linked(all_views=True)
        self.layout_changed.emit(name)

    @property
    def is_mpr(self) -> bool:
        return self.layout_mode != "axial"

    def toggle_mpr(self) -> None:
        self.set_layout("axial" if self.is_mpr else "mpr-1x3")

    def toggle_grid(self) -> None:
        self.set_layout("mpr-2x2" if self.layout_mode == "mpr-1x3" else "mpr-1x3")

    def visible_views(self) -> list[PlaneView]:
        names = PLANES if self.is_mpr else (AXIAL,)
        return [self.views[n] for n in names]

    # ---- binding --------------------------------------------------------------------------------

    def bind(self, model) -> None:
        """Show the model's exam in the coronal and sagittal views (the host has shown the
        axial one) and centre the crosshair on the axial slice shown."""
        self.model = model
        self.measurements.clear()
        geometry = model.geometry
        self.planes = planes_for(model.hu.shape, model.spacing, geometry)
        a = self.views[AXIAL]
        a.set_plane(self.planes[AXIAL], geometry)
        a.refresh_labels()
        a._update_corner_text()
        self.crosshair = Crosshair(model.hu.shape)
        zyx = list(self.crosshair.zyx)
        zyx[0] = a.z
        labeled = model.labels[a.z].nonzero()
        if labeled[0].size:  # start on the lesion the axial view opened on
            zyx[1], zyx[2] = int(labeled[0].mean()), int(labeled[1].mean())
        self.crosshair.set_voxel(zyx)
        for v in self.views.values():
            v.diffs_of_change = lambda m=model: m.changed_diffs
        for name in (CORONAL, SAGITTAL):
            v = self.views[name]
            v.set_plane(self.planes[name], geometry)
            v.set_volume(model.hu, model.labels, self.planes[name].pixel_mm,
                         z=self.crosshair.index_in(self.planes[name]))
            v.set_editable(not model.read_only)
            model.on_labels_changed.append(v.refresh_labels)
        self.sync_tools(model)
        self._refresh_linked(all_views=True)
        a._draw_measurements()

    def clear(self) -> None:
        self.model = None
        for v in self.views.values():
            v.diffs_of_change = None
        self.crosshair = None
        self.measurements.clear()
        for name in (CORONAL, SAGITTAL):
            self.views[name].clear()
        self.views[AXIAL].set_linked_point(None)
        self.info.setText("")

    def sync_tools(self, m) -> None:
        """Window, overlay and tool settings of the model into the coronal and sagittal views
        (the host syncs the axial one)."""
        from ictview.gui.annotate.annotation_host import apply_view_tools

        for name in (CORONAL, SAGITTAL):
            apply_view_tools(self.views[name], m)
        for v in self.views.values():
            v.set_hidden_classes(m.hidden_classes)

    def fit_all(self) -> None:
        for v in self.visible_views():
            v.fit()

    def set_view_tool(self, tool: str | None) -> None:
        for v in self.views.values():
            v.set_view_tool(tool)

    def clear_measurements(self) -> None:
        self.measurements.clear()
        for v in self.views.values():
            v.redraw_measurements()

    # ---- crosshair ------------------------------------------------------------------------------

    def set_crosshair(self, zyx) -> None:
        """Move the linked point: each view shows its slice through it."""
        if self.crosshair is None:
            return
        self.crosshair.set_voxel(zyx)
        for name, v in self.views.items():
            if name == AXIAL or self.is_mpr:
                v.set_slice(self.crosshair.index_in(self.planes[name]))
        self._refresh_linked(all_views=True)
        self.crosshair_moved.emit(self.crosshair.zyx)

    def _crosshair_set(self, name: str, index: int, row: float, col: float) -> None:
        if self.crosshair is None:
            return
        self.set_crosshair(self.planes[name].to_voxel(index, row, col))

    def _view_slice_changed(self, name: str, index: int) -> None:
        """Scrolling one view moves the crosshair along that view's normal."""
        if self.crosshair is None or not self.planes:
            return
        zyx = list(self.crosshair.zyx)
        zyx[self.planes[name].axes[0]] = index
        if tuple(zyx) != self.crosshair.zyx:
            self.crosshair.set_voxel(zyx)
            self._refresh_linked(all_views=True)
            self.crosshair_moved.emit(self.crosshair.zyx)

    def _refresh_linked(self, all_views: bool = False) -> None:
        if self.crosshair is None or not self.planes:
            return
        for name, v in self.views.items():
            if self.is_mpr:
                v.set_linked_point(*self.crosshair.point_in(self.planes[name]))
            else:
                v.set_linked_point(None)
        if self.layout_mode == "mpr-2x2":
            self._update_info()

    def _update_info(self) -> None:
        m = self.model
        if m is None or self.crosshair is None:
            return
        z, y, x = self.crosshair.zyx
        lps = self.crosshair.patient_mm(m.geometry, m.spacing)
        label = int(m.labels[z, y, x])
        name = m.class_name(label) if label else "none"
        rows = ""
        for n in PLANES:
            p, i = self.planes[n], self.crosshair.index_in(self.planes[n])
            rows += (f"<span style='color:{AXIS_COLOR[p.axes[0]]}'>■</span> {PLANE_TITLE[n]} "
                     f"{i + 1} / {p.n_slices} · {p.position_text(i, m.geometry)}<br>")
        self.info.setText(
            f"<b>CROSSHAIR</b><br><br>{rows}<br>"
            f"voxel index x {x}  y {y}  z {z} (from 0)<br>"
            f"patient (LPS) {lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f} mm<br>"
            f"HU {int(m.hu[z, y, x])} · label {name}<br><br>"
            "<span style='color:#8a939d'>Ctrl+drag or the crosshair tool [N] moves it;"
            " the wheel scrolls each view</span>"
        )

    # ---- gestures of the coronal and sagittal views -> the host, as voxels + plane ---------------

    def working_slice(self) -> tuple[str, int]:
        """(plane, index) of the slice the rater works on: in the MPR layouts the view last
        clicked or scrolled, else the axial slice shown (what 'this slice' means to a
        slice-wise tool such as Fill holes)."""
        name = self.last_plane if self.is_mpr else AXIAL
        return name, int(self.views[name].z)

    def _connect(self) -> None:
        self.last_plane = AXIAL
        self._touch = _TouchFilter(self)
        for name, v in self.views.items():
            v.canvas.viewport().installEventFilter(self._touch)
            self._touch.names[v.canvas.viewport()] = name
            v.crosshair_set.connect(lambda i, r, c, n=name: self._crosshair_set(n, i, r, c))
            v.slice_changed.connect(lambda i, n=name: self._view_slice_changed(n, i))
            v.measured.connect(self._measured)
            if name == AXIAL:
                continue  # the host wires the axial view itself (display = voxel coordinates)
            v.stroke_started.connect(lambda i, r, c, e, n=name: self._stroke(n, i, r, c, e))
            v.stroke_moved.connect(lambda i, r, c, n=name: self._stroke(n, i, r, c, None))
            v.stroke_finished.connect(self.host._stroke_finished)
            v.fill_clicked.connect(lambda i, r, c, n=name: self._fill(n, i, r, c))
            v.polygon_closed.connect(lambda i, pts, n=name: self._polygon(n, i, pts))
            v.cursor_moved.connect(lambda i, r, c, n=name: self._cursor(n, i, r, c))
            v.window_changed.connect(self.host._window_changed)

    def _voxel(self, name: str, index, row, col):
        return self.planes[name].to_voxel(index, row, col)

    def _stroke(self, name: str, index: int, row: float, col: float, erase) -> None:
        if not self.planes:
            return
        z, y, x = self._voxel(name, index, row, col)
        if erase is None:
            self.host._stroke_moved(z, y, x, plane=name)
        else:
            self.host._stroke_started(z, y, x, erase, plane=name)

    def _fill(self, name: str, index: int, row: float, col: float) -> None:
        if self.planes:
            self.host._fill_clicked(*self._voxel(name, index, row, col), plane=name)

    def _polygon(self, name: str, index: int, pts) -> None:
        if not self.planes:
            return
        plane = self.planes[name]
        h = plane.image_shape[0]
        native = [((h - 1 - r) if plane.flip_rows else r, c) for r, c in pts]
        self.host._polygon_closed(index, native, plane=name)

    def _cursor(self, name: str, index: int, row: int, col: int) -> None:
        if not self.planes:
            return
        if row < 0:
            self.host._cursor_moved(0, -1, -1)
            return
        z, y, x = (int(round(v)) for v in self._voxel(name, index, row, col))
        self.host._cursor_moved(z, y, x)

    def _measured(self, m) -> None:
        text = m.text.replace("\n", "  ")
        self.host.status.showMessage(f"{PLANE_TITLE[m.plane]} {m.index + 1}: {text}", 15000)


class _TouchFilter(QtCore.QObject):
    """Notes which view the rater last pressed a button or turned the wheel in; the events
    go on to the view unchanged."""

    KINDS = (QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.Wheel)

    def __init__(self, viewer: MprViewer):
        super().__init__(viewer)
        self.viewer = viewer
        self.names: dict = {}

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt's name)
        if ev.type() in self.KINDS and obj in self.names:
            self.viewer.last_plane = self.names[obj]
        return False
