"""Edit ▸ Preferences… and Help ▸ Keyboard shortcuts (F1) of the main window.

The dialog edits a copy of the preferences (core/prefs.py); OK or Apply hands them to
ictview.gui.preferences, which saves nothing by itself: the dialog saves the file, and every
open window follows (keymap, label colours, review palette, preset values). Default layout
and preset take effect when the app starts or an exam is first opened.
"""

from __future__ import annotations

import html
import re

from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core import overlay as ov
from ictview.core import prefs as P
from ictview.core.labels import BY_CODE, LABEL_CLASSES
from ictview.core.window import BUILTIN_PRESETS, WINDOW_PRESETS
from ictview.errors import IctviewError
from ictview.gui import preferences
from ictview.gui.annotate.tool_panel import swatch_icon

Qt = QtCore.Qt
PORTABLE = QtGui.QKeySequence.SequenceFormat.PortableText
ERROR_STYLE = "color:#e07a6a"
_TIP_KEYS = re.compile(r"\s*\[[^\]]*\]$")  # "... [Ctrl+L]" at the end of a tooltip


def action_text(a: QtGui.QAction) -> str:
    return a.text().replace("&&", "\0").replace("&", "").replace("\0", "&")


def keymap_defaults(actions: dict[str, QtGui.QAction]) -> dict[str, P.ActionInfo]:
    return {k: P.ActionInfo(action_text(a), tuple(s.toString(PORTABLE) for s in a.shortcuts()
                                                  if not s.isEmpty()))
            for k, a in actions.items()}


def qt_key(seq: str) -> str:
    """A key as Qt spells it ('' when Qt does not know it)."""
    return QtGui.QKeySequence(seq).toString(PORTABLE)


def keys_text(keys) -> str:
    return "  /  ".join(keys) if keys else "—"


class _Binding(QtCore.QObject):
    """The main window's side of the preferences (kept as `win.prefs_binding`)."""

    def __init__(self, win):
        super().__init__(win)
        self.win = win
        self.keymap = P.Keymap(keymap_defaults(win.actions_by_key))
        self.problems: list[str] = []
        preferences.listen(self)

    def preferences_changed(self, prefs: P.Preferences) -> None:
        win = self.win
        km = P.Keymap(self.keymap.defaults)
        bad = [a for a, ks in prefs.keymap.items() for k in ks if not qt_key(k)]
        self.problems = [f"{a}: Qt does not know the key in {list(prefs.keymap[a])}"
                         for a in dict.fromkeys(bad)]
        self.problems += km.apply_overrides({a: ks for a, ks in prefs.keymap.items()
                                             if a not in bad})
        self.keymap = km
        for key, a in win.actions_by_key.items():
            a.setShortcuts([QtGui.QKeySequence(k) for k in km.keys(key)])
            tip = a.toolTip()
            if _TIP_KEYS.search(tip):
                shown = km.keys(key)
                a.setToolTip(_TIP_KEYS.sub(f" [{shown[0]}]" if shown else "", tip))
        for name, (c, w) in WINDOW_PRESETS.items():
            a = win.actions_by_key.get(f"preset_{name}")
            if a is not None:
                a.setText(f"{name.capitalize()}  (W {w:g} / L {c:g})")
                shown = km.keys(f"preset_{name}")
                a.setToolTip(a.text() + (f"  [{shown[0]}]" if shown else ""))
                a.setIconText(f"{name.capitalize()}  {shown[0]}" if shown else name.capitalize())
        for v in win.viewer.views.values():
            v.refresh_label_colors()
        win.tool_panel.refresh_colors()
        if win.model is not None:
            win._sync_from_model()  # brush cursor and class readout colours
        if self.problems:
            win.status.showMessage(f"{preferences.settings_file()}: "
                                   + "; ".join(self.problems), 15000)


def install_preferences(win) -> None:
    """Add Edit ▸ Preferences… and Help ▸ Keyboard shortcuts, take the default keymap from
    the window's actions (all of them are built by now) and apply the current preferences."""
    A = win._action
    A("preferences", "&Preferences…", lambda: open_preferences(win),
      QtGui.QKeySequence.StandardKey.Preferences
      if QtGui.QKeySequence.keyBindings(QtGui.QKeySequence.StandardKey.Preferences)
      else "Ctrl+,")
    A("cheat_sheet", "&Keyboard shortcuts", lambda: toggle_cheat_sheet(win), "F1")
    mb = win.menuBar()
    for a in mb.actions():
        if a.text() == "&Edit":
            a.menu().addSeparator()
            a.menu().addAction(win.actions_by_key["preferences"])
    mb.addMenu("&Help").addAction(win.actions_by_key["cheat_sheet"])
    win.prefs_binding = _Binding(win)
    win.cheat_sheet = None
    prefs = preferences.current()
    win.prefs_binding.preferences_changed(prefs)
    win.viewer.set_layout(prefs.default_layout)

    def first_exam(_exam: str) -> None:
        # the rater's window carries over between exams; the default is where a session starts
        if "window" not in win._carried and win.model is not None:
            win.set_preset(preferences.current().default_preset)

    win.exam_opened.connect(first_exam)


def open_preferences(win):
    dlg = PreferencesDialog(win, win.prefs_binding.keymap)
    if getattr(win, "headless", False):
        return dlg
    dlg.exec()
    dlg.deleteLater()
    return None


# ---- the cheat sheet (F1) -----------------------------------------------------------------


def cheat_sheet_html(win) -> str:
    """Every bound action by menu, with its keys (what is bound now, not the defaults)."""
    km = win.prefs_binding.keymap
    by_action = {id(a): k for k, a in win.actions_by_key.items()}
    seen: set[str] = set()
    sections = []

    def walk(menu: QtWidgets.QMenu, title: str) -> None:
        rows = []
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu(), f"{title} ▸ {action_text(a.menu().menuAction())}")
                continue
            key = by_action.get(id(a))
            if key is None or key in seen or not km.keys(key):
                continue
            seen.add(key)
            rows.append((km.text(key), km.keys(key)))
        if rows:
            sections.append((title, rows))

    for a in win.menuBar().actions():
        if a.menu() is not None:
            walk(a.menu(), action_text(a))
    rest = [(km.text(k), km.keys(k)) for k in km.actions() if k not in seen and km.keys(k)]
    if rest:
        sections.append(("Viewer (no menu)", rest))
    out = []
    for title, rows in sections:
        out.append(f"<h3>{html.escape(title)}</h3><table cellspacing='0' cellpadding='2'>")
        for text, keys in rows:
            k = " / ".join(f"<b><code>{html.escape(x)}</code></b>" for x in keys)
            out.append(f"<tr><td width='120'>{k}</td><td>{html.escape(text)}</td></tr>")
        out.append("</table>")
    return "".join(out)


class CheatSheet(QtWidgets.QDialog):
    def __init__(self, win):
        super().__init__(win)
        self.setWindowTitle("Keyboard shortcuts")
        self.browser = QtWidgets.QTextBrowser()
        self.browser.setHtml(cheat_sheet_html(win))
        hint = QtWidgets.QLabel("Change them in Edit ▸ Preferences… ▸ Keyboard. "
                                "F1 or Esc closes.")
        hint.setObjectName("examMeta")
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.browser, 1)
        lay.addWidget(hint)
        close = QtGui.QShortcut(QtGui.QKeySequence("F1"), self)
        close.activated.connect(self.close)
        self.resize(560, 760)


def toggle_cheat_sheet(win) -> CheatSheet:
    sheet = win.cheat_sheet
    if sheet is not None and sheet.isVisible():
        sheet.close()
        return sheet
    if sheet is not None:
        sheet.deleteLater()
    win.cheat_sheet = sheet = CheatSheet(win)
    sheet.show()
    return sheet


# ---- the dialog ---------------------------------------------------------------------------


class PreferencesDialog(QtWidgets.QDialog):
    def __init__(self, parent, keymap: P.Keymap):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.prefs = preferences.current()
        self.keymap = P.Keymap(keymap.defaults)
        self.keymap.apply_overrides(keymap.overrides())
        self.colors = {c.code: self.prefs.label_rgb(c.code) for c in LABEL_CLASSES}
        tabs = QtWidgets.QTabWidget()
        tabs.addTab(self._keys_tab(), "Keyboard")
        tabs.addTab(self._colours_tab(), "Colours")
        tabs.addTab(self._viewer_tab(), "Viewer")
        self.tabs = tabs
        where = QtWidgets.QLabel(
            f"Settings file: {preferences.settings_file()} (OK and Apply save it)")
        where.setObjectName("examMeta")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_problem = QtWidgets.QLabel(
            f"<span style='{ERROR_STYLE}'>{html.escape(preferences._state.problem)}</span>")
        self.file_problem.setWordWrap(True)
        self.file_problem.setVisible(preferences._state.damaged)
        SB = QtWidgets.QDialogButtonBox.StandardButton
        self.buttons = QtWidgets.QDialogButtonBox(SB.Ok | SB.Apply | SB.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(SB.Apply).clicked.connect(self.apply)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(tabs, 1)
        lay.addWidget(self.file_problem)
        lay.addWidget(where)
        lay.addWidget(self.buttons)
        self.resize(760, 720)

    # ---- keyboard --------------------------------------------------------------------------

    def _keys_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter actions or keys…")
        self.filter.textChanged.connect(self._filter_rows)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut", "Default"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._row_chosen)
        self.key_edit = QtWidgets.QKeySequenceEdit()
        self.key_edit.setMaximumSequenceLength(1)  # one key: chords are rare and surprising
        self.assign = QtWidgets.QPushButton("Assign")
        self.assign.setToolTip("This key replaces the action's shortcuts")
        self.add_key = QtWidgets.QPushButton("Add")
        self.add_key.setToolTip("This key as one more shortcut of the action")
        self.clear_keys = QtWidgets.QPushButton("Clear")
        self.default_keys = QtWidgets.QPushButton("Default")
        self.assign.clicked.connect(lambda: self._edit("assign"))
        self.add_key.clicked.connect(lambda: self._edit("add"))
        self.clear_keys.clicked.connect(lambda: self._edit("clear"))
        self.default_keys.clicked.connect(lambda: self._edit("default"))
        self.key_message = QtWidgets.QLabel("Choose an action, press the new key in the box, "
                                            "then Assign.")
        self.key_message.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("New key"))
        row.addWidget(self.key_edit, 1)
        for b in (self.assign, self.add_key, self.clear_keys, self.default_keys):
            row.addWidget(b)
        lay = QtWidgets.QVBoxLayout(w)
        lay.addWidget(self.filter)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        lay.addWidget(self.key_message)
        self._fill_table()
        return w

    def _fill_table(self) -> None:
        km = self.keymap
        actions = sorted(km.actions(), key=lambda a: km.text(a).lower())
        self.table.setRowCount(len(actions))
        for i, a in enumerate(actions):
            name = QtWidgets.QTableWidgetItem(km.text(a))
            name.setData(Qt.ItemDataRole.UserRole, a)
            name.setToolTip(a)
            cur = QtWidgets.QTableWidgetItem(keys_text(km.keys(a)))
            changed = km.keys(a) != km.defaults[a].keys
            if changed:
                f = cur.font()
                f.setBold(True)
                cur.setFont(f)
            self.table.setItem(i, 0, name)
            self.table.setItem(i, 1, cur)
            self.table.setItem(i, 2, QtWidgets.QTableWidgetItem(keys_text(km.defaults[a].keys)))
        self._filter_rows(self.filter.text())

    def _filter_rows(self, text: str) -> None:
        t = text.strip().lower()
        for i in range(self.table.rowCount()):
            hay = " ".join(self.table.item(i, c).text().lower() for c in range(3))
            self.table.setRowHidden(i, bool(t) and t not in hay)

    def selected_action(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def select_action(self, action: str) -> None:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).data(Qt.ItemDataRole.UserRole) == action:
                self.table.selectRow(i)
                return
        raise KeyError(action)

    def _row_chosen(self) -> None:
        a = self.selected_action()
        if a is not None:
            keys = self.keymap.keys(a)
            self.key_edit.setKeySequence(QtGui.QKeySequence(keys[0] if keys else ""))

    def bind(self, action: str, keys: list[str]) -> bool:
        """Give `action` these keys (refused, with the reason shown, on a conflict)."""
        try:
            bad = [k for k in keys if not qt_key(k)]
            if bad:
                raise IctviewError(f"'{bad[0]}' is not a key")
            self.keymap.bind(action, [qt_key(k) for k in keys])
        except (IctviewError, ValueError) as e:
            self.key_message.setText(f"<span style='{ERROR_STYLE}'>{html.escape(str(e))}</span>")
            return False
        keys_now = keys_text(self.keymap.keys(action))
        self.key_message.setText(f"{html.escape(self.keymap.text(action))}: {keys_now}")
        self._fill_table()
        self.select_action(action)
        return True

    def _edit(self, how: str) -> None:
        a = self.selected_action()
        if a is None:
            return
        seq = self.key_edit.keySequence().toString(PORTABLE)
        if how in ("assign", "add") and not seq:
            self.key_message.setText("Press a key in the box first.")
            return
        keys = {"assign": [seq], "add": [*self.keymap.keys(a), seq], "clear": [],
                "default": list(self.keymap.defaults[a].keys)}[how]
        self.bind(a, keys)

    # ---- colours ---------------------------------------------------------------------------

    def _colours_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        box = QtWidgets.QGroupBox("LABEL CLASSES")
        g = QtWidgets.QGridLayout(box)
        self.color_buttons: dict[str, QtWidgets.QPushButton] = {}
        for i, c in enumerate(LABEL_CLASSES):
            b = QtWidgets.QPushButton(f"  {c.code}   {c.name}")
            b.setStyleSheet("text-align: left;")
            b.clicked.connect(lambda _=False, code=c.code: self._choose_color(code))
            d = QtWidgets.QPushButton("Default")
            d.clicked.connect(lambda _=False, code=c.code: self.set_label_color(
                code, BY_CODE[code].color))
            g.addWidget(b, i, 0)
            g.addWidget(d, i, 1)
            self.color_buttons[c.code] = b
        g.setColumnStretch(0, 1)
        self._paint_color_buttons()

        pal = QtWidgets.QGroupBox("REVIEW AND COMPARE (REFERENCE / PREDICTION / BOTH)")
        pl = QtWidgets.QGridLayout(pal)
        self.palette_buttons: dict[str, QtWidgets.QRadioButton] = {}
        for i, name in enumerate(ov.REVIEW_PALETTES):
            r = QtWidgets.QRadioButton(ov.PALETTE_TEXT[name])
            r.setChecked(name == self.prefs.review_palette)
            self.palette_buttons[name] = r
            pl.addWidget(r, i, 0)
            swatches = QtWidgets.QHBoxLayout()
            for rgb, text in zip(ov.REVIEW_PALETTES[name], ("reference", "prediction", "both")):
                lab = QtWidgets.QLabel()
                lab.setPixmap(swatch_icon(rgb, 16).pixmap(16, 16))
                lab.setToolTip(text)
                swatches.addWidget(lab)
            swatches.addStretch(1)
            pl.addLayout(swatches, i, 1)
        note = QtWidgets.QLabel("Blue / orange / white stay distinct with red-green colour "
                                "vision deficiency (about 1 man in 12); it applies to the "
                                "review and compare views and their legends.")
        note.setObjectName("examMeta")
        note.setWordWrap(True)
        pl.addWidget(note, len(ov.REVIEW_PALETTES), 0, 1, 2)
        lay = QtWidgets.QVBoxLayout(w)
        lay.addWidget(box)
        lay.addWidget(pal)
        lay.addStretch(1)
        return w

    def _paint_color_buttons(self) -> None:
        for code, b in self.color_buttons.items():
            b.setIcon(swatch_icon(self.colors[code], 16))
            changed = self.colors[code] != BY_CODE[code].color
            b.setToolTip("#%02x%02x%02x" % self.colors[code] + ("  (changed)" if changed else ""))

    def set_label_color(self, code: str, rgb) -> None:
        self.colors[code] = tuple(int(v) for v in rgb)
        self._paint_color_buttons()

    def _choose_color(self, code: str) -> None:
        c = QtWidgets.QColorDialog.getColor(QtGui.QColor(*self.colors[code]), self,
                                            f"Colour of {code}")
        if c.isValid():
            self.set_label_color(code, (c.red(), c.green(), c.blue()))

    # ---- viewer ----------------------------------------------------------------------------

    def _viewer_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout()
        self.layout_combo = QtWidgets.QComboBox()
        for name in P.LAYOUTS:
            self.layout_combo.addItem(P.LAYOUT_TEXT[name], name)
        self.layout_combo.setCurrentIndex(P.LAYOUTS.index(self.prefs.default_layout))
        self.preset_combo = QtWidgets.QComboBox()
        for name in BUILTIN_PRESETS:
            self.preset_combo.addItem(name.capitalize(), name)
        self.preset_combo.setCurrentIndex(list(BUILTIN_PRESETS).index(self.prefs.default_preset))
        form.addRow("Layout at start", self.layout_combo)
        form.addRow("Window of the first exam", self.preset_combo)
        box = QtWidgets.QGroupBox("WINDOW PRESETS (HU)")
        g = QtWidgets.QGridLayout(box)
        for col, text in enumerate(("", "Level (center)", "Width", "")):
            g.addWidget(QtWidgets.QLabel(text), 0, col)
        self.preset_spins: dict[str, tuple[QtWidgets.QSpinBox, QtWidgets.QSpinBox]] = {}
        values = self.prefs.preset_values()
        for i, name in enumerate(BUILTIN_PRESETS, start=1):
            c, wd = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
            c.setRange(-2000, 5000)
            wd.setRange(1, 8000)
            c.setValue(int(round(values[name][0])))
            wd.setValue(int(round(values[name][1])))
            d = QtWidgets.QPushButton("Default")
            d.clicked.connect(lambda _=False, n=name, cs=c, ws=wd: (
                cs.setValue(int(BUILTIN_PRESETS[n][0])), ws.setValue(int(BUILTIN_PRESETS[n][1]))))
            g.addWidget(QtWidgets.QLabel(f"{i}  {name.capitalize()}"), i, 0)
            g.addWidget(c, i, 1)
            g.addWidget(wd, i, 2)
            g.addWidget(d, i, 3)
            self.preset_spins[name] = (c, wd)
        note = QtWidgets.QLabel("The layout and the first exam's window apply the next time "
                                "ictview starts; preset values apply at once.")
        note.setObjectName("examMeta")
        note.setWordWrap(True)
        lay = QtWidgets.QVBoxLayout(w)
        lay.addLayout(form)
        lay.addWidget(box)
        lay.addWidget(note)
        lay.addStretch(1)
        return w

    # ---- result ----------------------------------------------------------------------------

    def chosen(self) -> P.Preferences:
        palette = next(n for n, r in self.palette_buttons.items() if r.isChecked())
        presets = {n: (float(c.value()), float(w.value()))
                   for n, (c, w) in self.preset_spins.items()}
        return P.Preferences(
            keymap={a: tuple(k) for a, k in self.keymap.overrides().items()},
            label_colors={c: rgb for c, rgb in self.colors.items() if rgb != BY_CODE[c].color},
            review_palette=palette,
            default_layout=self.layout_combo.currentData(),
            default_preset=self.preset_combo.currentData(),
            window_presets={n: cw for n, cw in presets.items()
                            if cw != tuple(map(float, BUILTIN_PRESETS[n]))},
        )

    def apply(self) -> bool:
        """Use and save what the dialog shows. False (with the reason shown) if saving failed:
        the preferences still apply to this session."""
        preferences.set_current(self.chosen())
        try:
            path = preferences.save()
        except IctviewError as e:
            self.file_problem.setText(f"<span style='{ERROR_STYLE}'>{html.escape(str(e))}</span>")
            self.file_problem.setVisible(True)
            return False
        self.file_problem.setVisible(False)
        self.key_message.setText(f"Saved to {path}")
        return True

    def accept(self) -> None:
        if self.apply():
            super().accept()
