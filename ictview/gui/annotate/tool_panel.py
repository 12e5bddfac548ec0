"""The tool panel: a thin view over an AnnotationModel's tool and display settings.

Widgets write model attributes; the model's on_state_changed / on_labels_changed
callbacks refresh the widgets (with their signals blocked, so nothing echoes back).
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core.annotation import AnnotationModel
from ictview.core.labels import LABEL_CLASSES
from ictview.gui.preferences import label_rgb

Qt = QtCore.Qt
# class shortcuts: mnemonic letters (digits 1-4 are the window presets)
CLASS_KEYS = {"EDH": "E", "SDH": "S", "SAH": "A", "IPH": "I", "IVH": "V"}
TOOL_KEYS = {"brush": "B", "eraser": "X", "fill": "F", "grow": "G", "polygon": "P"}
TOOL_TEXT = {"brush": "Brush", "eraser": "Eraser", "fill": "Fill", "grow": "3D fill",
             "polygon": "Polygon"}
TOOL_TIPS = {
    "brush": "Paint with a round brush; one drag is one undo step",
    "eraser": "Erase labels (the current class only in 'protect' mode)",
    "fill": "Flood fill: the connected region within the HU range around the click",
    "grow": "3D fill: the region connected in 3D (6 or 26 neighbours) within the HU range",
    "polygon": "Click the vertices, double-click or Enter to fill, Esc to cancel",
}


_EXPANDING = QtWidgets.QSizePolicy.Policy.Expanding
_FIXED = QtWidgets.QSizePolicy.Policy.Fixed


def swatch_icon(rgb: tuple[int, int, int], size: int = 14) -> QtGui.QIcon:
    pm = QtGui.QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(*rgb))
    p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0, 120), 1))
    p.drawRoundedRect(QtCore.QRectF(0.5, 0.5, size - 1, size - 1), 3, 3)
    p.end()
    return QtGui.QIcon(pm)


def _group(title: str) -> tuple[QtWidgets.QGroupBox, QtWidgets.QGridLayout]:
    box = QtWidgets.QGroupBox(title.upper())
    grid = QtWidgets.QGridLayout(box)
    grid.setContentsMargins(8, 10, 8, 8)
    grid.setHorizontalSpacing(8)
    grid.setVerticalSpacing(6)
    return box, grid


class ToolPanel(QtWidgets.QFrame):
    interpolate_requested = QtCore.Signal()  # the window runs it (and says what it did)
    fill_holes_requested = QtCore.Signal(bool)  # True: every slice (3D), False: this slice

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sidePanel")
        self.model: AnnotationModel | None = None

        # ---- label classes, each with its live volume -------------------------------------
        cls_box, g = _group("Label class")
        self.class_group = QtWidgets.QButtonGroup(self)
        self.class_buttons: dict[int, QtWidgets.QToolButton] = {}
        self.volume_labels: dict[str, QtWidgets.QLabel] = {}
        self.show_boxes: dict[int, QtWidgets.QCheckBox] = {}
        self.lock_boxes: dict[int, QtWidgets.QCheckBox] = {}
        for col, text in ((3, "Show"), (4, "Lock")):
            head = QtWidgets.QLabel(text)
            head.setObjectName("examMeta")
            g.addWidget(head, 0, col, Qt.AlignmentFlag.AlignHCenter)
        for row, c in enumerate(LABEL_CLASSES, start=1):
            b = QtWidgets.QToolButton()
            b.setObjectName("classButton")
            b.setCheckable(True)
            b.setIcon(swatch_icon(label_rgb(c.value)))
            b.setText(f"{c.code}   {c.name.split(' (')[0]}")
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setSizePolicy(_EXPANDING, _FIXED)
            b.setToolTip(f"{c.name} [{CLASS_KEYS[c.code]}]")
            self.class_group.addButton(b, c.value)
            self.class_buttons[c.value] = b
            key = QtWidgets.QLabel(CLASS_KEYS[c.code])
            key.setObjectName("examMeta")
            key.setAlignment(Qt.AlignmentFlag.AlignCenter)
            vol = QtWidgets.QLabel("0.00 mL")
            vol.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            vol.setMinimumWidth(64)
            self.volume_labels[c.code] = vol
            show = QtWidgets.QCheckBox()
            show.setToolTip(f"Show {c.code} in the overlay")
            lock = QtWidgets.QCheckBox()
            lock.setToolTip(f"Lock {c.code}: no tool paints over it or erases it")
            self.show_boxes[c.value], self.lock_boxes[c.value] = show, lock
            g.addWidget(b, row, 0)
            g.addWidget(key, row, 1)
            g.addWidget(vol, row, 2)
            g.addWidget(show, row, 3, Qt.AlignmentFlag.AlignHCenter)
            g.addWidget(lock, row, 4, Qt.AlignmentFlag.AlignHCenter)
        self.total_label = QtWidgets.QLabel("Total 0.00 mL")
        self.total_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.total_label.setObjectName("examMeta")
        g.addWidget(self.total_label, len(LABEL_CLASSES) + 1, 0, 1, 3)
        g.setColumnStretch(0, 1)

        # ---- tools --------------------------------------------------------------------------
        tool_box, g = _group("Tool")
        self.tool_group = QtWidgets.QButtonGroup(self)
        self.tool_buttons: dict[str, QtWidgets.QToolButton] = {}
        for i, name in enumerate(TOOL_TEXT):
            b = QtWidgets.QToolButton()
            b.setCheckable(True)
            b.setText(f"{TOOL_TEXT[name]}")
            b.setToolTip(f"{TOOL_TIPS[name]} [{TOOL_KEYS[name]}]")
            b.setSizePolicy(_EXPANDING, _FIXED)
            self.tool_group.addButton(b, i)
            self.tool_buttons[name] = b
            g.addWidget(b, i // 2, i % 2)
        # radio buttons, not a combo box: the blinded retest window has no combo boxes at all
        self.connectivity = {n: QtWidgets.QRadioButton(f"{n}") for n in (6, 26)}
        conn_group = QtWidgets.QButtonGroup(self)
        conn = QtWidgets.QHBoxLayout()
        conn.setSpacing(6)
        conn_label = QtWidgets.QLabel("3D:")
        conn_label.setObjectName("examMeta")
        conn.addWidget(conn_label)
        for n, rb in self.connectivity.items():
            rb.setToolTip("3D fill neighbours: faces only (6) or also edges and corners (26)")
            conn_group.addButton(rb, n)
            conn.addWidget(rb)
        conn.addStretch(1)
        self.connectivity_group = conn_group
        self.interpolate = QtWidgets.QPushButton("Fill between slices")
        self.interpolate.setToolTip(
            "Interpolate the current class across the empty slices between labeled ones "
            "(only unlabeled pixels change; one undo step) [Ctrl+I]"
        )
        g.addLayout(conn, 2, 1)
        g.addWidget(self.interpolate, 3, 0, 1, 2)
        # a flood fill leaves noise holes where pixels fall outside the HU range
        self.fill_holes_slice = QtWidgets.QPushButton("Fill holes: slice")
        self.fill_holes_slice.setToolTip(
            "Fill the holes of the current class in the axial slice shown: unlabeled pixels "
            "it encloses (other classes stay; one undo step)")
        self.fill_holes_3d = QtWidgets.QPushButton("Fill holes: 3D")
        self.fill_holes_3d.setToolTip(
            "Fill the holes of the current class on every slice of the exam (every enclosed "
            "pocket of unlabeled pixels; other classes stay; one undo step)")
        for b in (self.fill_holes_slice, self.fill_holes_3d):
            b.setSizePolicy(_EXPANDING, _FIXED)
        g.addWidget(self.fill_holes_slice, 4, 0)
        g.addWidget(self.fill_holes_3d, 4, 1)

        # ---- brush -------------------------------------------------------------------------
        brush_box, g = _group("Brush")
        self.radius_mm = QtWidgets.QDoubleSpinBox()
        self.radius_mm.setRange(0.1, 100.0)
        self.radius_mm.setDecimals(1)
        self.radius_mm.setSingleStep(0.5)
        self.radius_mm.setSuffix(" mm")
        self.radius_mm.setToolTip("Brush radius ([ and ] change it by one pixel)")
        self.radius_px_label = QtWidgets.QLabel("= 0.0 px")
        self.radius_px_label.setObjectName("examMeta")
        g.addWidget(QtWidgets.QLabel("Radius"), 0, 0)
        g.addWidget(self.radius_mm, 0, 1)
        g.addWidget(self.radius_px_label, 0, 2)

        self.hu_limited = QtWidgets.QCheckBox("Limit to HU range")
        self.hu_limited.setToolTip(
            "Brush and polygon paint only pixels inside the range [H]; flood fill always uses it"
        )
        self.hu_lo = QtWidgets.QSpinBox()
        self.hu_hi = QtWidgets.QSpinBox()
        for sb in (self.hu_lo, self.hu_hi):
            sb.setRange(-1024, 3071)
            sb.setSuffix(" HU")
        hu_row = QtWidgets.QHBoxLayout()
        hu_row.setSpacing(4)
        hu_row.addWidget(self.hu_lo, 1)
        dash = QtWidgets.QLabel("–")
        dash.setObjectName("examMeta")
        hu_row.addWidget(dash)
        hu_row.addWidget(self.hu_hi, 1)
        g.addWidget(self.hu_limited, 1, 0, 1, 3)
        g.addLayout(hu_row, 2, 0, 1, 3)

        self.overwrite = QtWidgets.QRadioButton("Overwrite")
        self.protect = QtWidgets.QRadioButton("Protect other classes")
        self.overwrite.setToolTip("Painting replaces any label under the brush")
        self.protect.setToolTip("Painting never changes pixels of other classes [L]")
        mode_group = QtWidgets.QButtonGroup(self)
        mode_group.addButton(self.overwrite)
        mode_group.addButton(self.protect)
        g.addWidget(self.overwrite, 3, 0, 1, 3)
        g.addWidget(self.protect, 4, 0, 1, 3)
        g.setColumnStretch(1, 1)

        # ---- display -------------------------------------------------------------------------
        disp_box, g = _group("Overlay")
        self.fill_mode = QtWidgets.QRadioButton("Fill")
        self.outline_mode = QtWidgets.QRadioButton("Outline")
        self.outline_mode.setToolTip("Show label outlines only [O]")
        disp_group = QtWidgets.QButtonGroup(self)
        disp_group.addButton(self.fill_mode)
        disp_group.addButton(self.outline_mode)
        self.labels_visible = QtWidgets.QCheckBox("Show labels")
        self.labels_visible.setToolTip("Show the label overlay [T]")
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(16)
        row.addWidget(self.labels_visible)
        row.addStretch(1)
        row.addWidget(self.fill_mode)
        row.addWidget(self.outline_mode)
        g.addLayout(row, 0, 0, 1, 3)
        self.opacity = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Overlay opacity")
        self.opacity_label = QtWidgets.QLabel("50 %")
        self.opacity_label.setMinimumWidth(40)
        self.opacity_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        g.addWidget(QtWidgets.QLabel("Opacity"), 1, 0)
        g.addWidget(self.opacity, 1, 1)
        g.addWidget(self.opacity_label, 1, 2)
        g.setColumnStretch(1, 1)

        title = QtWidgets.QLabel("ANNOTATION")
        title.setObjectName("panelTitle")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 0, 8, 8)
        lay.setSpacing(8)
        lay.addWidget(title)
        for box in (cls_box, tool_box, brush_box, disp_box):
            lay.addWidget(box)
        lay.addStretch(1)
        hint = QtWidgets.QLabel(
            "Left drag: paint (Shift: erase)\nRight drag: window / level\n"
            "Wheel: slice · Ctrl+wheel: zoom\nMiddle drag: pan · Ctrl+Z: undo"
        )
        hint.setObjectName("examMeta")
        hint.setWordWrap(True)
        lay.addWidget(hint)

        self._connect_widgets()
        self.bind(None)

    # ---- model binding ------------------------------------------------------------------------

    def refresh_colors(self) -> None:
        """Class swatches in the colours now set (Preferences)."""
        for value, b in self.class_buttons.items():
            b.setIcon(swatch_icon(label_rgb(value)))

    def bind(self, model: AnnotationModel | None) -> None:
        if self.model is not None:
            _remove(self.model.on_state_changed, self.sync)
            _remove(self.model.on_labels_changed, self._labels_changed)
        self.model = model
        if model is not None:
            model.on_state_changed.append(self.sync)
            model.on_labels_changed.append(self._labels_changed)
        self.setEnabled(model is not None)
        self.sync()
        self.update_volumes()

    def _class_set_edited(self, attr: str, boxes: dict, checked_means_in: bool) -> None:
        if self.model is None:
            return
        values = {v for v, box in boxes.items() if box.isChecked() == checked_means_in}
        setattr(self.model, attr, frozenset(values))

    def _connect_widgets(self) -> None:
        for box in self.show_boxes.values():
            box.toggled.connect(
                lambda _on: self._class_set_edited("hidden_classes", self.show_boxes, False))
        for box in self.lock_boxes.values():
            box.toggled.connect(
                lambda _on: self._class_set_edited("locked_classes", self.lock_boxes, True))
        self.connectivity_group.idClicked.connect(lambda n: self._set("grow_connectivity", n))
        self.interpolate.clicked.connect(self.interpolate_requested.emit)
        self.fill_holes_slice.clicked.connect(lambda: self.fill_holes_requested.emit(False))
        self.fill_holes_3d.clicked.connect(lambda: self.fill_holes_requested.emit(True))
        self.class_group.idClicked.connect(lambda v: self._set("label_value", v))
        names = list(TOOL_TEXT)
        self.tool_group.idClicked.connect(lambda i: self._set("tool", names[i]))
        self.radius_mm.valueChanged.connect(lambda v: self._set("brush_radius_mm", v))
        self.hu_limited.toggled.connect(lambda on: self._set("hu_limited", on))
        self.hu_lo.valueChanged.connect(self._hu_range_edited)
        self.hu_hi.valueChanged.connect(self._hu_range_edited)
        self.protect.toggled.connect(lambda on: self._set("protect_others", on))
        self.outline_mode.toggled.connect(
            lambda on: self._set("fill_mode", "outline" if on else "fill")
        )
        self.labels_visible.toggled.connect(lambda on: self._set("labels_visible", on))
        self.opacity.valueChanged.connect(lambda v: self._set("opacity", v / 100.0))

    def _set(self, attr: str, value) -> None:
        if self.model is not None:
            setattr(self.model, attr, value)

    def _hu_range_edited(self) -> None:
        lo, hi = self.hu_lo.value(), self.hu_hi.value()
        if self.model is None:
            return
        if lo > hi:  # keep the range valid while typing: move the other end along
            if self.sender() is self.hu_lo:
                hi = lo
            else:
                lo = hi
        self.model.hu_range = (lo, hi)

    def sync(self) -> None:
        """Widgets <- model (signals blocked so nothing echoes back into the model)."""
        m = self.model
        widgets = [self.radius_mm, self.hu_limited, self.hu_lo, self.hu_hi, self.overwrite,
                   self.protect, self.fill_mode, self.outline_mode, self.labels_visible,
                   self.opacity, *self.class_buttons.values(), *self.tool_buttons.values(),
                   *self.show_boxes.values(), *self.lock_boxes.values(),
                   *self.connectivity.values()]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            if m is None:
                return
            self.class_buttons[m.label_value].setChecked(True)
            self.tool_buttons[m.tool].setChecked(True)
            self.radius_mm.setValue(m.brush_radius_mm)
            ry, rx = m.brush_radii_px
            self.radius_px_label.setText(f"= {rx:.1f} px")
            self.hu_limited.setChecked(m.hu_limited)
            lo, hi = m.hu_range
            self.hu_lo.setValue(int(round(lo)))
            self.hu_hi.setValue(int(round(hi)))
            (self.protect if m.protect_others else self.overwrite).setChecked(True)
            (self.outline_mode if m.fill_mode == "outline" else self.fill_mode).setChecked(True)
            self.labels_visible.setChecked(m.labels_visible)
            self.opacity.setValue(int(round(m.opacity * 100)))
            self.opacity_label.setText(f"{int(round(m.opacity * 100))} %")
            for v, box in self.show_boxes.items():
                box.setChecked(v not in m.hidden_classes)
            for v, box in self.lock_boxes.items():
                box.setChecked(v in m.locked_classes)
            self.connectivity[m.grow_connectivity].setChecked(True)
        finally:
            for w, b in zip(widgets, blocked):
                w.blockSignals(b)

    def _labels_changed(self, _z_range) -> None:
        self.update_volumes()

    def update_volumes(self) -> None:
        vols = self.model.volumes_ml() if self.model is not None else {}
        for code, lab in self.volume_labels.items():
            v = vols.get(code, 0.0)
            lab.setText(f"{v:.2f} mL")
            if lab.property("zero") != (v == 0):  # restyle only when it flips (cheap per dab)
                lab.setProperty("zero", v == 0)
                lab.setStyleSheet("" if v > 0 else "color: #6b747e;")
        self.total_label.setText(f"Total {sum(vols.values()):.2f} mL")


def _remove(callbacks: list, fn) -> None:
    try:
        callbacks.remove(fn)
    except ValueError:
        pass
